"""Reading images back: one, several, filtered pages and streams, counts and totals."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from civitgrab_desktop.core.library.filters import ImageFilter, order_clause
from civitgrab_desktop.core.library.rows import ImageRow
from civitgrab_desktop.core.library.store_base import StoreBase

FilterArg = ImageFilter | Mapping[str, Any] | None


def _merge(filter: FilterArg, extra: dict[str, Any]) -> ImageFilter:
    """A filter from an ImageFilter/dict plus keyword filters (keywords win)."""
    base = ImageFilter.coerce(filter)
    if not extra:
        return base
    return ImageFilter(**{**base.__dict__, **extra})


class BrowsingOps(StoreBase):
    def image(self, image_id: int) -> ImageRow | None:
        row = self._one("SELECT * FROM images WHERE id = ?", (int(image_id),))
        return ImageRow.from_row(row) if row else None

    def images_by_ids(self, ids: Iterable[int]) -> list[ImageRow]:
        """The rows of `ids` that exist, in the order given."""
        wanted = [int(i) for i in ids]
        rows = self._all(
            "SELECT * FROM images WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(wanted),)
        )
        by_id = {row["id"]: ImageRow.from_row(row) for row in rows}
        return [by_id[i] for i in dict.fromkeys(wanted) if i in by_id]

    def list_images(
        self,
        filter: FilterArg = None,
        *,
        order_by: str = "id",
        descending: bool = False,
        limit: int | None = 200,
        offset: int = 0,
        **filters: Any,
    ) -> list[ImageRow]:
        """One page of images matching the filter (ImageFilter fields as keywords also work)."""
        where, params = _merge(filter, filters).to_sql()
        sql = f"SELECT * FROM images WHERE {where} {order_clause(order_by, descending)} LIMIT ? OFFSET ?"
        rows = self._all(sql, [*params, -1 if limit is None else int(limit), int(offset)])
        return [ImageRow.from_row(row) for row in rows]

    def image_ids(
        self, filter: FilterArg = None, *, order_by: str = "id", descending: bool = False, **filters: Any
    ) -> list[int]:
        """Just the ids of every matching image (cheap enough for a gallery's full result set)."""
        where, params = _merge(filter, filters).to_sql()
        rows = self._all(f"SELECT id FROM images WHERE {where} {order_clause(order_by, descending)}", params)
        return [row[0] for row in rows]

    def count_images(self, filter: FilterArg = None, **filters: Any) -> int:
        where, params = _merge(filter, filters).to_sql()
        return self._one(f"SELECT COUNT(*) FROM images WHERE {where}", params)[0]

    def iter_images(
        self,
        filter: FilterArg = None,
        *,
        order_by: str = "id",
        descending: bool = False,
        batch_size: int = 500,
        **filters: Any,
    ) -> Iterator[ImageRow]:
        """Stream matching images without loading them all. In id order it reads short batches
        (keyset paging), so no read transaction stays open between batches."""
        image_filter = _merge(filter, filters)
        where, params = image_filter.to_sql()
        if order_by != "id":
            cursor = self.connection.execute(
                f"SELECT * FROM images WHERE {where} {order_clause(order_by, descending)}", params
            )
            try:
                while batch := cursor.fetchmany(batch_size):
                    yield from (ImageRow.from_row(row) for row in batch)
            finally:
                cursor.close()
            return
        last = None
        op = "<" if descending else ">"
        while True:
            keyset = f" AND images.id {op} ?" if last is not None else ""
            sql = f"SELECT * FROM images WHERE {where}{keyset} {order_clause('id', descending)} LIMIT ?"
            batch = self._all(sql, [*params, *([last] if last is not None else []), batch_size])
            if not batch:
                return
            yield from (ImageRow.from_row(row) for row in batch)
            last = batch[-1]["id"]

    def version_ids_of_user(self, username: str) -> list[int]:
        """Model version ids seen on a user's images, most used first (deep-scan pass 5)."""
        rows = self._all(
            """SELECT CAST(v.value AS INTEGER) AS vid, COUNT(*) AS n
               FROM images, json_each(CASE WHEN json_valid(images.model_version_ids)
                                         THEN images.model_version_ids ELSE '[]' END) AS v
               WHERE images.username = ? COLLATE NOCASE
               GROUP BY vid ORDER BY n DESC, vid""",
            (username,),
        )
        return [row["vid"] for row in rows if row["vid"]]

    def stats(self) -> dict[str, Any]:
        """Counts by download / tag / convert state, sizes, and a few totals."""

        def by(column: str) -> dict[str, int]:
            rows = self._all(f"SELECT {column}, COUNT(*) FROM images GROUP BY {column}")
            return {row[0]: row[1] for row in rows}

        totals = self._one(
            """SELECT COUNT(*),
                      COALESCE(SUM(CASE WHEN dl_state = 'done' THEN bytes END), 0),
                      COALESCE(SUM(type = 'video'), 0),
                      COALESCE(SUM(gone_at IS NOT NULL), 0)
               FROM images"""
        )
        conv = self._one(
            "SELECT COUNT(*), COALESCE(SUM(src_bytes), 0), COALESCE(SUM(webp_bytes), 0) FROM conversions"
        )
        return {
            "images": totals[0],
            "videos": totals[2],
            "gone": totals[3],
            "bytes": totals[1],
            "dl_state": by("dl_state"),
            "tag_state": by("tag_state"),
            "cv_state": by("cv_state"),
            "conversions": conv[0],
            "converted_src_bytes": conv[1],
            "webp_bytes": conv[2],
            "sources": self._one("SELECT COUNT(*) FROM sources")[0],
            "tags": self._one("SELECT COUNT(*) FROM tags")[0],
            "jobs_running": self._one("SELECT COUNT(*) FROM jobs WHERE state = 'running'")[0],
        }
