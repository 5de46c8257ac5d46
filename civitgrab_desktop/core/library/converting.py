"""WebP conversion: claiming images to convert and recording what the converter did."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from civitgrab_desktop.core.library.clock import utc_now_iso
from civitgrab_desktop.core.library.filters import ImageFilter
from civitgrab_desktop.core.library.rows import ConversionRow, ImageRow
from civitgrab_desktop.core.library.store_base import StoreBase, UnknownImageError

CONVERSION_FIELDS = (
    "webp_path",
    "quality",
    "lossless",
    "src_phash",
    "webp_phash",
    "distance",
    "src_bytes",
    "webp_bytes",
    "original_removed",
)


def _conversion_fields(result: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """The conversion fields from a ConversionResult-like object or mapping, then keywords."""
    values: dict[str, Any] = {}
    for name in CONVERSION_FIELDS:
        if isinstance(result, Mapping):
            values[name] = result.get(name)
        elif result is not None:
            values[name] = getattr(result, name, None)
        else:
            values[name] = None
    unknown = set(overrides) - set(CONVERSION_FIELDS)
    if unknown:
        raise TypeError(f"unknown conversion fields: {', '.join(sorted(unknown))}")
    values.update(overrides)
    if not values["webp_path"]:
        raise ValueError("record_conversion needs a webp_path")
    values["webp_path"] = str(values["webp_path"])
    values["lossless"] = bool(values["lossless"])
    values["original_removed"] = bool(values["original_removed"])
    return values


class ConvertingOps(StoreBase):
    def claim_for_convert(
        self,
        owner: str,
        limit: int,
        *,
        only_tagged: bool = False,
        username: str | None = None,
        model_version_name: str | None = None,
        source: tuple[str, str] | None = None,
        nsfw: str | None = None,
        pg13_is_nsfw: bool = False,
        include_videos: bool = True,
        retry_failed: bool = True,
        image_ids: Sequence[int] | None = None,
    ) -> list[ImageRow]:
        """Atomically claim up to `limit` downloaded images not converted yet (never, or failed
        before this owner's first claim) that match the filters. `nsfw` is 'sfw', 'nsfw' or None;
        `image_ids` limits the claim to those images ("convert now" in the gallery)."""
        session_start = self._session_start(owner)
        image_filter = ImageFilter(
            ids=list(image_ids) if image_ids is not None else None,
            only_tagged=only_tagged,
            username=username,
            model_version_name=model_version_name,
            source=source,
            nsfw=nsfw,
            pg13_is_nsfw=pg13_is_nsfw,
            include_videos=include_videos,
        )
        where, params = image_filter.to_sql()
        due = "cv_state = 'never'"
        if retry_failed:
            # The IN list lets SQLite walk the (dl_state, cv_state) index.
            due = (
                "cv_state IN ('never', 'failed') AND (cv_state = 'never'"
                " OR (cv_state = 'failed' AND (cv_claimed_at IS NULL OR cv_claimed_at < ?)))"
            )
            params = [session_start, *params]
        return self._claim_images("cv", owner, limit, f"{due} AND {where}", params)

    def record_conversion(
        self,
        image_id: int,
        owner: str,
        result: Any = None,
        *,
        moved_paths: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> None:
        """Record a finished conversion. Fields (see CONVERSION_FIELDS) come from `result` (a
        ConversionResult or a dict) and/or keywords. When the original was removed, the image's
        path and every source path that pointed at the original become `webp_path`;
        `moved_paths` ({old: new}) updates further source paths the converter moved."""
        values = _conversion_fields(result, fields)
        now = utc_now_iso()
        iid = int(image_id)

        def work(c: sqlite3.Connection) -> None:
            row = c.execute("SELECT path FROM images WHERE id = ?", (iid,)).fetchone()
            if row is None:
                raise UnknownImageError(iid)
            c.execute(
                """INSERT OR REPLACE INTO conversions (image_id, webp_path, quality, lossless, src_phash, webp_phash,
                       distance, src_bytes, webp_bytes, original_removed, converted_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (iid, *(values[name] for name in CONVERSION_FIELDS), now),
            )
            c.execute(
                """UPDATE images SET cv_state = 'done', cv_error = NULL,
                          cv_owner = CASE WHEN cv_owner = ? THEN NULL ELSE cv_owner END
                   WHERE id = ?""",
                (owner, iid),
            )
            if values["original_removed"] and row["path"]:
                old = row["path"]
                c.execute("UPDATE images SET path = ? WHERE id = ?", (values["webp_path"], iid))
                c.execute(
                    "UPDATE sources SET path = ? WHERE image_id = ? AND path = ?",
                    (values["webp_path"], iid, old),
                )
            for old, new in (moved_paths or {}).items():
                c.execute(
                    "UPDATE sources SET path = ? WHERE image_id = ? AND path = ?", (str(new), iid, str(old))
                )

        self.run_write(work)

    def mark_convert_failed(self, image_id: int, owner: str, error: str) -> None:
        self._finish_convert(image_id, owner, "failed", error)

    def mark_convert_skipped(self, image_id: int, owner: str, reason: str) -> None:
        """Not convertible on purpose (a video, already WebP, too large...): never claimed again."""
        self._finish_convert(image_id, owner, "skipped", reason)

    def _finish_convert(self, image_id: int, owner: str, state: str, message: str) -> None:
        self.run_write(
            lambda c: c.execute(
                """UPDATE images SET cv_state = ?, cv_error = ?, cv_owner = NULL
                   WHERE id = ? AND cv_state != 'done' AND (cv_owner IS NULL OR cv_owner = ?)""",
                (state, str(message), int(image_id), owner),
            )
        )

    def conversion_of(self, image_id: int) -> ConversionRow | None:
        row = self._one("SELECT * FROM conversions WHERE image_id = ?", (int(image_id),))
        return ConversionRow.from_row(row) if row else None
