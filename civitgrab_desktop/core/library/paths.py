"""Where an image's files are: the per-query copies (sources), which of them are linked yet, and
the rows of the classic tag-mode summary CSV."""

from __future__ import annotations

import json

from civitgrab_desktop.core.library.clock import utc_now_iso
from civitgrab_desktop.core.library.rows import SourceRow
from civitgrab_desktop.core.library.store_base import StoreBase


class PathOps(StoreBase):
    def sources_for(self, image_id: int) -> list[SourceRow]:
        rows = self._all(
            "SELECT * FROM sources WHERE image_id = ? ORDER BY found_at, target_type, target_value",
            (int(image_id),),
        )
        return [SourceRow.from_row(row) for row in rows]

    def unlinked_sources(self, image_id: int) -> list[SourceRow]:
        """Sources with a planned path that has no file yet (the download job links them)."""
        return [s for s in self.sources_for(image_id) if not s.linked and s.path]

    def mark_source_linked(self, image_id: int, target_type: str, target_value: str, path: str) -> None:
        """The file for this query now exists at `path` (creates the source row if needed)."""
        now = utc_now_iso()
        self.run_write(
            lambda c: c.execute(
                """INSERT INTO sources (image_id, target_type, target_value, path, linked, found_at)
                   VALUES (?, ?, ?, ?, 1, ?)
                   ON CONFLICT(image_id, target_type, target_value) DO UPDATE SET path = excluded.path, linked = 1""",
                (int(image_id), target_type, str(target_value), str(path), now),
            )
        )

    def tag_summary_rows(self, tag: str) -> list[dict]:
        """For the classic tag-mode summary CSV: each image found by the search tag `tag`, with
        its file for that tag, checkpoint name, URL and the other search tags that found it."""
        rows = self._all(
            """SELECT i.id AS image_id, COALESCE(s.path, i.path) AS path, i.checkpoint_name, i.url,
                      (SELECT json_group_array(o.target_value) FROM sources o
                       WHERE o.image_id = i.id AND o.target_type = 'tag' AND o.target_value != s.target_value)
                          AS other_tags
               FROM sources s JOIN images i ON i.id = s.image_id
               WHERE s.target_type = 'tag' AND s.target_value = ?
               ORDER BY i.id""",
            (str(tag),),
        )
        return [{**dict(row), "other_tags": sorted(json.loads(row["other_tags"] or "[]"))} for row in rows]
