"""Reading images back: one, several, filtered pages and streams, counts and totals."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from civitgrab_desktop.core.library.filters import ROWID_CONDITIONS, ImageFilter, order_clause, without_fts
from civitgrab_desktop.core.library.rows import ImageRow
from civitgrab_desktop.core.library.store_base import StoreBase

FilterArg = ImageFilter | Mapping[str, Any] | None

# Sort keys of the gallery and the database view -> SQL expression over `images`.
BROWSE_ORDERS: dict[str, str] = {
    "id": "images.id",
    "created_at": "images.created_at",
    "reactions": "images.reactions",
    "downloaded_at": "images.downloaded_at",
    "nsfw_level": "images.nsfw_level",
    "type": "images.type",
    "username": "images.username COLLATE NOCASE",
    "model_version_name": "images.model_version_name COLLATE NOCASE",
    "path": "images.path",
    "tag_state": "images.tag_state",
    "tags_count": "images.tags_count",
    "cv_state": "images.cv_state",
    "webp_path": "(SELECT c.webp_path FROM conversions c WHERE c.image_id = images.id)",
}

# What a gallery card or a database row shows: the light columns (no prompt, meta or record).
BROWSE_COLUMNS: tuple[str, ...] = (
    "id", "type", "nsfw_level", "username", "model_version_name", "checkpoint_name", "base_model",
    "created_at", "reactions", "width", "height", "path", "mime", "bytes", "dl_state", "downloaded_at",
    "tag_state", "cv_state", "gone_at", "webp_path", "tags_count",
)
_BROWSE_SELECT = ", ".join("c.webp_path" if c == "webp_path" else f"i.{c}" for c in BROWSE_COLUMNS)

# For the orders an index serves: the conditions that stay direct (the columns of the index
# SQLite walks: idx_images_done_created, _done_reactions; for id, the dl_state indexes' ids are
# sorted; downloaded_at, tags_count and path walk their own one-column index). Other orders keep every
# condition direct (the rows are read to sort them anyway). Measured on 100,000 images.
ORDER_INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "created_at": ("dl_state", "created_at"),
    "reactions": ("dl_state",),
    "id": ("dl_state",),
    "downloaded_at": (),
    "tags_count": (),
    "path": (),
}

DISTINCT_COLUMNS = ("username", "model_version_name", "checkpoint_name", "base_model")


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

    # -- the gallery and the database view ---------------------------------------------------------

    def has_fts(self) -> bool:
        """True when the library has the full-text index (migration 2 on an SQLite with FTS5)."""
        return self._one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'images_fts'") is not None

    def browse_ids(
        self, filter: FilterArg = None, *, order_by: str = "id", descending: bool = False, **filters: Any
    ) -> list[int]:
        """The ids of every matching image in the order asked (any key of BROWSE_ORDERS, ties
        broken by id), computed by SQLite. A `text` search falls back to LIKE without FTS5."""
        image_filter = _merge(filter, filters)
        if image_filter.text and not self.has_fts():
            image_filter = without_fts(image_filter)
        if order_by not in BROWSE_ORDERS:
            raise ValueError(f"cannot order images by {order_by!r}; choose one of {', '.join(BROWSE_ORDERS)}")
        # Conditions on the ordering index's own columns stay direct (SQLite walks that covering
        # index in order); every other indexed condition becomes a rowid subquery answered by its
        # column's index, so no candidate row is read from the table (see ImageFilter.to_sql).
        direct = ORDER_INDEX_COLUMNS.get(order_by, ROWID_CONDITIONS)
        where, params = image_filter.to_sql(via_rowid=[c for c in ROWID_CONDITIONS if c not in direct])
        direction = "DESC" if descending else "ASC"
        order = f"{BROWSE_ORDERS[order_by]} {direction}"
        if order_by != "id":
            order += f", images.id {direction}"
        source = "images"
        if order_by == "downloaded_at" and self._has_index("idx_images_downloaded"):
            # no (dl_state, downloaded_at) index: left alone, SQLite reads every row to sort them
            source = "images INDEXED BY idx_images_downloaded"
        sql = f"SELECT images.id FROM {source} WHERE {where} ORDER BY {order}"

        def work(c) -> list[int]:
            cursor = c.cursor()
            cursor.row_factory = None  # plain tuples: 100,000 ids in a few tens of ms
            try:
                return [row[0] for row in cursor.execute(sql, params)]
            finally:
                cursor.close()

        return self.run_read(work)

    def _has_index(self, name: str) -> bool:
        cache = self.__dict__.setdefault("_index_cache", {})
        if name not in cache:
            cache[name] = self._one("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)) is not None
        return cache[name]

    def browse_rows(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """The light columns of `ids` (BROWSE_COLUMNS, with the WebP path and the number of tags),
        in the order given; ids no longer in the library are left out."""
        wanted = [int(i) for i in ids]
        rows = self._all(
            f"""SELECT {_BROWSE_SELECT} FROM images i LEFT JOIN conversions c ON c.image_id = i.id
                WHERE i.id IN (SELECT value FROM json_each(?))""",
            (json.dumps(wanted),),
        )
        by_id = {row["id"]: dict(zip(BROWSE_COLUMNS, tuple(row), strict=True)) for row in rows}
        return [by_id[i] for i in dict.fromkeys(wanted) if i in by_id]

    def distinct_values(self, column: str, limit: int = 1000) -> list[tuple[str, int]]:
        """[(value, images)] of a name column, most used first (for the filter completers)."""
        if column not in DISTINCT_COLUMNS:
            raise ValueError(f"no distinct values for {column!r}; choose one of {', '.join(DISTINCT_COLUMNS)}")
        rows = self._all(
            f"""SELECT {column}, COUNT(*) AS n FROM images
                WHERE {column} IS NOT NULL AND {column} != ''
                GROUP BY {column} ORDER BY n DESC, {column} LIMIT ?""",
            (int(limit),),
        )
        return [(row[0], row[1]) for row in rows]

    def library_signature(self) -> tuple[Any, ...]:
        """Cheap (index-only) numbers that change when downloads, tags, conversions or deletions
        change what the gallery shows; equal signatures mean nothing to refresh."""
        row = self._one(
            """SELECT (SELECT COUNT(*) FROM images WHERE dl_state = 'done'),
                      (SELECT MAX(downloaded_at) FROM images),
                      (SELECT COUNT(*) FROM images WHERE dl_state = 'done' AND tag_state = 'done'),
                      (SELECT COUNT(*) FROM images WHERE dl_state = 'done' AND cv_state = 'done'),
                      (SELECT COUNT(*) FROM images)"""
        )
        return tuple(row)

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
