"""The Database page's table model: every image the library tracks that matches the filter.

`LibraryTableModel` asks SQLite for the ordered ids of the matching rows (sorting is SQL's: a
click on a header re-queries), then fetches the rows themselves lazily in chunks through Qt's
canFetchMore/fetchMore as the table scrolls.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor

from civitgrab_desktop.core.library.filters import ImageFilter
from civitgrab_desktop.gui.gallery.query import NSFW_COLOUR, nsfw_label
from civitgrab_desktop.gui.util import spawn

CHUNK = 500


@dataclass(frozen=True)
class Column:
    key: str  # a BROWSE_COLUMNS name (or "converted")
    title: str
    sort: str  # a key of core.library.browsing.BROWSE_ORDERS
    width: int
    tip: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("id", "Id", "id", 84, "CivitAI image id"),
    Column("type", "Type", "type", 56),
    Column("username", "User", "username", 108),
    Column("model_version_name", "Model version", "model_version_name", 118),
    Column("nsfw_level", "NSFW", "nsfw_level", 58, "NSFW level: PG, PG-13, R, X, XXX"),
    Column("downloaded_at", "Downloaded", "downloaded_at", 140),
    Column("path", "Path", "path", 210),
    Column("tag_state", "Tags", "tag_state", 58, "never, done or failed"),
    Column("tags_count", "Tag count", "tags_count", 74),
    Column("converted", "Converted", "cv_state", 78),
    Column("webp_path", "WebP path", "webp_path", 240),
)

class LibraryTableModel(QAbstractTableModel):
    refreshed = Signal(int)  # total matching rows
    failed = Signal(str)

    def __init__(self, reader_provider, parent=None):
        super().__init__(parent)
        self._reader_provider = reader_provider
        self._ids: list[int] = []
        self._rows: list[dict[str, Any]] = []
        self._fetch_task: asyncio.Task | None = None
        self._fetch_generation = -1
        self._generation = 0
        self.filter = ImageFilter()
        self.sort_column = 0
        self.sort_order = Qt.SortOrder.AscendingOrder
        self.last_query_s = 0.0
        self.queried = False

    # -- Qt ---------------------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        column = COLUMNS[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.title
        if role == Qt.ItemDataRole.ToolTipRole and column.tip:
            return column.tip
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.display(row, column.key)
        if role == Qt.ItemDataRole.ToolTipRole and column.key in ("path", "webp_path", "model_version_name"):
            return row.get(column.key) or None
        if role == Qt.ItemDataRole.TextAlignmentRole and column.key in ("id", "tags_count"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column.key == "nsfw_level":
                return QColor(NSFW_COLOUR.get(int(row.get("nsfw_level") or 0), "#6b7080"))
            if column.key == "tag_state" and row.get("tag_state") == "failed":
                return QColor("#c93636")
        if role == Qt.ItemDataRole.UserRole:
            return row["id"]
        return None

    @staticmethod
    def display(row: dict[str, Any], key: str) -> str:
        if key == "nsfw_level":
            return nsfw_label(row.get("nsfw_level"))
        if key == "converted":
            return {"done": "yes", "failed": "failed", "skipped": "skipped"}.get(row.get("cv_state"), "no")
        if key == "downloaded_at":
            value = row.get("downloaded_at")
            return value.replace("T", " ")[:19] if value else ("" if row.get("dl_state") == "done" else row.get("dl_state", ""))
        value = row.get(key)
        return "" if value is None else str(value)

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        return not parent.isValid() and len(self._rows) < len(self._ids)

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> None:  # noqa: N802
        if parent.isValid() or self._fetching or len(self._rows) >= len(self._ids):
            return
        self._start_fetch()

    @property
    def _fetching(self) -> bool:
        """A chunk of the current query is being read (one at a time: two would both append
        the same rows)."""
        task = self._fetch_task
        return task is not None and not task.done() and self._fetch_generation == self._generation

    def _start_fetch(self) -> asyncio.Task:
        self._fetch_generation = self._generation
        self._fetch_task = spawn(self._fetch_chunk(self._generation), name="table-fetch")
        return self._fetch_task

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(COLUMNS):
            return
        if column == self.sort_column and order == self.sort_order and self._ids:
            return
        self.sort_column = column
        self.sort_order = order
        if self.queried:  # before the first query (the page not shown yet) only remember it
            spawn(self._refresh_quietly(), name="table-sort")

    # -- queries ----------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self._ids)

    def ids_for(self, image_filter: ImageFilter) -> list[int] | None:
        """The ordered ids the table holds, when they are the answer to `image_filter`."""
        return list(self._ids) if self.queried and self.filter == image_filter else None

    def id_at(self, row: int) -> int | None:
        return self._rows[row]["id"] if 0 <= row < len(self._rows) else None

    def row_data(self, row: int) -> dict[str, Any] | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    async def _refresh_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self.refresh()

    async def refresh(self, image_filter: ImageFilter | None = None) -> int:
        """Query the ordered ids, then the first chunk of rows."""
        if image_filter is not None:
            self.filter = image_filter
        self.queried = True
        self._generation += 1
        generation = self._generation
        started = time.perf_counter()
        column = COLUMNS[self.sort_column]
        try:
            reader = await self._reader_provider()
            ids = await reader.browse_ids(
                self.filter, order_by=column.sort, descending=self.sort_order == Qt.SortOrder.DescendingOrder
            )
        except Exception as exc:
            if generation == self._generation:
                self.failed.emit(f"Could not read the library: {exc}")
            raise
        if generation != self._generation:
            return len(self._ids)
        self.beginResetModel()
        self._ids = ids
        self._rows = []
        self.endResetModel()
        if ids:
            await asyncio.shield(self._start_fetch())
        self.last_query_s = time.perf_counter() - started
        self.refreshed.emit(len(ids))
        return len(ids)

    async def _fetch_chunk(self, generation: int) -> None:
        try:
            start = len(self._rows)
            ids = self._ids[start : start + CHUNK]
            reader = await self._reader_provider()
            rows = await reader.browse_rows(ids)
        except Exception as exc:
            self.failed.emit(f"Could not read the library: {exc}")
            return
        if generation != self._generation or len(self._rows) != start:
            return  # a new query, or these rows were appended meanwhile
        by_id = {r["id"]: r for r in rows}
        # rows deleted meanwhile keep their place as a bare id (the next refresh drops them)
        rows = [by_id.get(i, {"id": i, "dl_state": "deleted"}) for i in ids]
        if rows:
            self.beginInsertRows(QModelIndex(), start, start + len(rows) - 1)
            self._rows.extend(rows)
            self.endInsertRows()

    async def fetch_all_until(self, row: int) -> None:
        """Load rows up to `row` (tests, keyboard End)."""
        while len(self._rows) <= row and len(self._rows) < len(self._ids):
            task = self._fetch_task if self._fetching else self._start_fetch()
            await asyncio.shield(task)
