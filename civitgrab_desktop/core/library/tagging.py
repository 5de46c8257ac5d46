"""Community tags: claiming images to tag, storing their votes, reading them back."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from civitgrab_desktop.core.library.clock import epoch_to_iso, iso_days_ago, utc_now_iso
from civitgrab_desktop.core.library.rows import ImageRow
from civitgrab_desktop.core.library.store_base import StoreBase, UnknownImageError
from civitgrab_desktop.core.model import TagVote

# The tRPC API method returns the service's canonical tag names, and so does the browser method
# when it reads the page's tRPC answer; a tag read from the rendered page (`from_page`) may carry a
# display form, which must not replace a canonical name already stored.
CANONICAL_NAME_METHODS = frozenset({"api"})


class TaggingOps(StoreBase):
    def claim_for_tags(
        self,
        owner: str,
        limit: int,
        *,
        retag: bool = False,
        max_age_days: float | None = None,
        retry_failed: bool = True,
        image_ids: Sequence[int] | None = None,
    ) -> list[ImageRow]:
        """Atomically claim up to `limit` downloaded images whose tags are due: never fetched;
        failed (`retry_failed`, failures from before this owner's first claim only); fetched
        more than `max_age_days` ago; or, with `retag`, fetched before this owner's first claim.
        Two processes never receive the same image."""
        session_start = self._session_start(owner)
        states = ["never"]
        due = ["tag_state = 'never'"]
        params: list[Any] = []
        if retry_failed:
            states.append("failed")
            due.append("(tag_state = 'failed' AND (tag_claimed_at IS NULL OR tag_claimed_at < ?))")
            params.append(session_start)
        refetch_before = None
        if max_age_days is not None:
            refetch_before = iso_days_ago(max_age_days)
        elif retag:
            refetch_before = epoch_to_iso(session_start)
        if refetch_before is not None:
            states.append("done")
            due.append("(tag_state = 'done' AND (tags_fetched_at IS NULL OR tags_fetched_at < ?))")
            params.append(refetch_before)
        # The IN list lets SQLite walk the (dl_state, tag_state) index instead of every done image.
        state_list = ", ".join(f"'{s}'" for s in states)
        due_sql = f"tag_state IN ({state_list}) AND ({' OR '.join(due)})"
        if image_ids is not None:  # "fetch tags now" in the gallery: only these
            due_sql += " AND id IN (SELECT value FROM json_each(?))"
            params.append(json.dumps([int(i) for i in image_ids]))
        return self._claim_images("tag", owner, limit, due_sql, params)

    def store_tags(self, image_id: int, owner: str, tags: Sequence[TagVote], method: str) -> None:
        """Replace the image's tags with `tags` (an empty list is a valid answer) and mark it
        tagged. Tags are upserted by id."""
        unique = list({tag.id: tag for tag in tags}.values())
        now = utc_now_iso()
        iid = int(image_id)

        def work(c: sqlite3.Connection) -> None:
            if c.execute("SELECT 1 FROM images WHERE id = ?", (iid,)).fetchone() is None:
                raise UnknownImageError(iid)
            canonical = method in CANONICAL_NAME_METHODS
            c.executemany(
                """INSERT INTO tags (id, name, type, nsfw_level) VALUES (?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET
                       name = CASE WHEN ? THEN excluded.name ELSE tags.name END,
                       type = COALESCE(excluded.type, tags.type),
                       nsfw_level = COALESCE(excluded.nsfw_level, tags.nsfw_level)""",
                [(t.id, t.name, t.type, t.nsfw_level, int(canonical or not t.from_page)) for t in unique],
            )
            c.execute("DELETE FROM image_tags WHERE image_id = ?", (iid,))
            c.executemany(
                """INSERT INTO image_tags (image_id, tag_id, score, up_votes, down_votes, automated, needs_review)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                [
                    (iid, t.id, t.score, t.up_votes, t.down_votes, int(t.automated), int(t.needs_review))
                    for t in unique
                ],
            )
            c.execute(
                """UPDATE images SET tag_state = 'done', tags_fetched_at = ?, tag_error = NULL, tag_method = ?,
                          tag_owner = CASE WHEN tag_owner = ? THEN NULL ELSE tag_owner END, tags_count = ?
                   WHERE id = ?""",
                (now, method, owner, len(unique), iid),
            )

        self.run_write(work)

    def mark_tags_failed(self, image_id: int, owner: str, error: str) -> None:
        """Record a failed fetch. Tags fetched earlier stay (a failed re-tag keeps state done)."""
        self.run_write(
            lambda c: c.execute(
                """UPDATE images SET tag_state = CASE WHEN tag_state = 'done' THEN 'done' ELSE 'failed' END,
                          tag_error = ?, tag_owner = NULL
                   WHERE id = ? AND (tag_owner IS NULL OR tag_owner = ?)""",
                (str(error), int(image_id), owner),
            )
        )

    def tags_of(self, image_id: int) -> list[dict[str, Any]]:
        """The image's tags, highest score first."""
        rows = self._all(
            """SELECT t.id, t.name, t.type, it.score, it.up_votes, it.down_votes, it.automated, it.needs_review
               FROM image_tags it JOIN tags t ON t.id = it.tag_id
               WHERE it.image_id = ? ORDER BY it.score DESC, t.name COLLATE NOCASE, t.id""",
            (int(image_id),),
        )
        return [
            {
                "id": r["id"],
                "name": r["name"],
                "type": r["type"],
                "score": r["score"],
                "up_votes": r["up_votes"],
                "down_votes": r["down_votes"],
                "automated": bool(r["automated"]),
                "needs_review": bool(r["needs_review"]),
            }
            for r in rows
        ]

    def top_tags(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most used tags in the library: [{id, name, type, count}], most used first."""
        rows = self._all(
            """SELECT t.id, t.name, t.type, COUNT(*) AS count
               FROM image_tags it JOIN tags t ON t.id = it.tag_id
               GROUP BY t.id ORDER BY count DESC, t.name COLLATE NOCASE LIMIT ?""",
            (int(limit),),
        )
        return [dict(r) for r in rows]
