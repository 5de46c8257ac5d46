"""Download claims: at most one live owner downloads an image, across every process."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable

from civitgrab_desktop.core.library.clock import utc_now_iso
from civitgrab_desktop.core.library.rows import SourceRow
from civitgrab_desktop.core.library.store_base import StoreBase


class DownloadOps(StoreBase):
    def claim_download(self, image_id: int, owner: str, force: bool = False) -> bool:
        """Take the download of `image_id` for `owner`. False when it is already downloaded
        (unless `force`), claimed by an owner that may still be working, or unknown."""
        # One row by its key: a third of the batch form's cost (no json_each, no temp table).
        return bool(self._claim_where("id = ?", int(image_id), owner, force))

    def claim_downloads(self, ids: Iterable[int], owner: str, force: bool = False) -> set[int]:
        """Batch form of `claim_download`: the subset of `ids` now claimed by `owner`."""
        id_list = json.dumps([int(i) for i in ids])
        return self._claim_where("id IN (SELECT value FROM json_each(?))", id_list, owner, force)

    def _claim_where(self, which: str, value: object, owner: str, force: bool) -> set[int]:
        def work(c: sqlite3.Connection) -> set[int]:
            free, free_params = self._claim_free_sql("dl", owner)
            rows = c.execute(
                f"""UPDATE images SET dl_owner = ?, dl_claimed_at = ?, dl_attempts = dl_attempts + 1
                    WHERE {which} AND (? OR dl_state != 'done') AND {free}
                    RETURNING id""",
                [owner, time.time(), value, 1 if force else 0, *free_params],
            ).fetchall()
            return {row[0] for row in rows}

        return self.run_write(work)

    def mark_downloaded(
        self,
        image_id: int,
        owner: str,
        path: str,
        mime: str | None,
        bytes: int | None,
        sha256: str | None,
        quality: str | None,
        *,
        source: tuple[str, str] | None = None,
    ) -> list[SourceRow]:
        """The file is on disk at `path`: done, claim and error cleared, and the source that
        planned this path (or `source`, the query that downloaded it) is linked. Recorded even if
        the claim was lost meanwhile (the file is the fact). Returns the sources still waiting
        for a link, so the caller can link them without another round trip."""
        now = utc_now_iso()
        path = str(path)

        def work(c: sqlite3.Connection) -> None:
            c.execute(
                """UPDATE images SET dl_state = 'done', path = ?, mime = ?, bytes = ?, sha256 = ?, quality = ?,
                          downloaded_at = ?, dl_error = NULL,
                          dl_owner = CASE WHEN dl_owner = ? THEN NULL ELSE dl_owner END
                   WHERE id = ?""",
                (path, mime, bytes, sha256, quality, now, owner, int(image_id)),
            )
            c.execute("UPDATE sources SET linked = 1 WHERE image_id = ? AND path = ?", (int(image_id), path))
            if source is not None:
                c.execute(
                    """INSERT INTO sources (image_id, target_type, target_value, path, linked, found_at)
                       VALUES (?, ?, ?, ?, 1, ?)
                       ON CONFLICT(image_id, target_type, target_value) DO UPDATE SET path = excluded.path, linked = 1""",
                    (int(image_id), source[0], str(source[1]), path, now),
                )

        self.run_write(work)
        return self.unlinked_sources(image_id)

    def mark_download_failed(self, image_id: int, owner: str, error: str) -> None:
        """Record a failed attempt, unless another owner took over or the image got downloaded."""
        self.run_write(
            lambda c: c.execute(
                """UPDATE images SET dl_state = 'failed', dl_error = ?, dl_owner = NULL
                   WHERE id = ? AND dl_state != 'done' AND (dl_owner IS NULL OR dl_owner = ?)""",
                (str(error), int(image_id), owner),
            )
        )
