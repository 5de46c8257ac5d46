"""The Database page: every image the library tracks, as a table.

`LibraryTableModel` asks SQLite for the ordered ids of the matching rows (sorting is SQL's: a
click on a header re-queries), then fetches the rows themselves lazily in chunks through Qt's
canFetchMore/fetchMore as the table scrolls. The filter bar is the gallery's. "Export to CSV"
writes what is shown (the same filters; the columns of `civitgrab-cli export-csv`), and a
double-click opens the image in the gallery's detail pane. Column widths, order and the sort
persist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QByteArray, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHeaderView,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QTableView,
    QWidget,
)

from civitgrab_desktop.core.library.csv_export import export_csv
from civitgrab_desktop.core.library.filters import ImageFilter
from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.gallery.filter_bar import FilterBar
from civitgrab_desktop.gui.gallery.query import NSFW_COLOUR, GalleryQuery, nsfw_label
from civitgrab_desktop.gui.util import plural, spawn
from civitgrab_desktop.gui.widgets.page import Page

LOG = logging.getLogger(__name__)

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

DL_STATES = (
    (None, "All rows"),
    ("done", "Downloaded"),
    ("pending", "Not downloaded"),
    ("failed", "Download failed"),
)


class RowDelegate(QStyledItemDelegate):
    """Selected rows in the dark theme: the soft accent with the normal text colour (white on the
    dark theme's bright accent reads poorly, ~3:1), as the sidebar does. The palette is read
    at paint time, so a theme switch applies at once."""

    def initStyleOption(self, option, index) -> None:  # noqa: N802
        super().initStyleOption(option, index)
        if not option.state & QStyle.StateFlag.State_Selected:
            return
        palette = option.palette
        if palette.color(QPalette.ColorRole.Window).lightness() >= 128:
            return
        accent = palette.color(QPalette.ColorRole.Highlight)
        base = palette.color(QPalette.ColorRole.Base)
        soft = QColor(
            round(base.red() * 0.55 + accent.red() * 0.45),
            round(base.green() * 0.55 + accent.green() * 0.45),
            round(base.blue() * 0.55 + accent.blue() * 0.45),
        )
        palette.setColor(QPalette.ColorRole.Highlight, soft)
        palette.setColor(QPalette.ColorRole.HighlightedText, palette.color(QPalette.ColorRole.Text))
        option.palette = palette


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


class DatabasePage(Page):
    key = "database"
    title = "Database"
    subtitle = ""
    icon_name = "database"

    exported = Signal(str, int)  # path, rows

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        self.header.hide()
        self.root.setContentsMargins(14, 12, 14, 6)
        self.root.setSpacing(8)
        self._started = False
        self.query = GalleryQuery()
        self.dl_state: str | None = None

        self.filter_bar = FilterBar()
        self.state = QComboBox()
        self.state.setToolTip("Download state")
        for value, label in DL_STATES:
            self.state.addItem(label, value)
        self.state.currentIndexChanged.connect(self._on_state)
        self.filter_bar.add_trailing(self.state)
        self.export_button = QPushButton("Export to CSV…")
        icons.set_icon(self.export_button, "download")
        self.export_button.setToolTip("Write the rows shown (same filters) as CSV, like `civitgrab-cli export-csv`")
        self.export_button.clicked.connect(self.choose_export_path)
        self.filter_bar.add_trailing(self.export_button)
        self.filter_bar.changed.connect(self._on_query)
        self.root.addWidget(self.filter_bar)

        self.model = LibraryTableModel(ctx.reader, self)
        self.model.refreshed.connect(self._on_refreshed)
        self.model.failed.connect(lambda text: self.ctx.statusMessage.emit(text, 8000))
        self.table = QTableView()
        self.table.setObjectName("LibraryTable")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setItemDelegate(RowDelegate(self.table))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.table.horizontalHeader()
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        for i, column in enumerate(COLUMNS):
            header.resizeSection(i, column.width)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self.root.addWidget(self.table, 1)
        self._dialog: QFileDialog | None = None
        ctx.jobs.jobFinished.connect(lambda _h: self._refresh_if_visible())

    # -- Page -------------------------------------------------------------------------------------

    def search_widget(self) -> QWidget:
        return self.filter_bar.search

    def activated(self) -> None:
        self._started = True
        spawn(self.refresh(), name="database-refresh")

    def save_state(self) -> dict[str, Any]:
        return {
            "header": bytes(self.table.horizontalHeader().saveState().toBase64()).decode("ascii"),
            "sort": [self.model.sort_column, int(self.model.sort_order.value)],
            "query": self.filter_bar.query().to_state(),
            "dl_state": self.dl_state,
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        header = state.get("header")
        if isinstance(header, str):
            self.table.horizontalHeader().restoreState(QByteArray.fromBase64(header.encode("ascii")))
        sort = state.get("sort")
        if isinstance(sort, list) and len(sort) == 2 and 0 <= int(sort[0]) < len(COLUMNS):
            self.model.sort_column = int(sort[0])
            self.model.sort_order = Qt.SortOrder(int(sort[1]))
            self.table.horizontalHeader().setSortIndicator(self.model.sort_column, self.model.sort_order)
        self.query = GalleryQuery.from_state(state.get("query"))
        self.filter_bar.set_query(self.query, notify=False)
        dl_state = state.get("dl_state")
        if dl_state in {v for v, _ in DL_STATES}:
            self.dl_state = dl_state
            self.state.blockSignals(True)
            self.state.setCurrentIndex([v for v, _ in DL_STATES].index(dl_state))
            self.state.blockSignals(False)

    # -- data -------------------------------------------------------------------------------------

    async def current_filter(self) -> ImageFilter:
        fts = await self.ctx.has_fts()
        base = {"dl_state": self.dl_state} if self.dl_state else {}
        return self.query.to_filter(fts=fts, **base)

    async def refresh(self) -> int:
        return await self.model.refresh(await self.current_filter())

    def _refresh_if_visible(self) -> None:
        if self._started and self.isVisible():
            spawn(self.refresh(), name="database-refresh")

    def _on_query(self, query: GalleryQuery) -> None:
        self.query = query
        spawn(self.refresh(), name="database-filter")

    def _on_state(self, index: int) -> None:
        self.dl_state = self.state.itemData(index)
        spawn(self.refresh(), name="database-state")

    def _on_refreshed(self, total: int) -> None:
        self.filter_bar.set_count(f"{plural(total, 'row')} · {self.model.last_query_s * 1000:.0f} ms")
        self.export_button.setEnabled(total > 0)

    # -- export -----------------------------------------------------------------------------------

    def choose_export_path(self) -> QFileDialog:
        folder = Path(self.ctx.default_output_dir())
        dialog = QFileDialog(self, "Export the shown rows to CSV", str(folder / "civitgrab-library.csv"),
                             "CSV files (*.csv)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("csv")
        dialog.fileSelected.connect(lambda path: spawn(self.export(path), name="database-export"))
        dialog.finished.connect(dialog.deleteLater)
        self._dialog = dialog
        dialog.open()
        return dialog

    async def export(self, path: str) -> int:
        """Write the rows shown (the current filters, in the table's sort order) to `path`;
        returns the row count."""
        image_filter = await self.current_filter()
        # the table's ids when they answer this filter; otherwise (not queried yet) the filter's
        shown = self.model.ids_for(image_filter)
        reader = await self.ctx.reader()
        started = time.perf_counter()
        try:
            count = await reader.run(_export, str(path), image_filter, shown)
        except Exception as exc:
            self.ctx.statusMessage.emit(f"Export failed: {exc}", 10000)
            raise
        LOG.info("exported %d rows to %s in %.2f s", count, path, time.perf_counter() - started)
        self.ctx.statusMessage.emit(f"Exported {plural(count, 'row')} to {path}", 8000)
        self.exported.emit(str(path), count)
        return count

    # -- opening ----------------------------------------------------------------------------------

    def _on_double_clicked(self, index: QModelIndex) -> None:
        image_id = self.model.id_at(index.row())
        if image_id is not None:
            spawn(self.open_in_gallery(image_id), name="database-open")

    async def open_in_gallery(self, image_id: int) -> bool:
        window = self.window()
        pages = getattr(window, "pages", {})
        gallery = pages.get("gallery")
        if gallery is None or not hasattr(gallery, "show_item"):
            return False
        if hasattr(window, "show_page"):
            window.show_page("gallery")
        await gallery.show_item(image_id)
        return True


def _export(store, path: str, image_filter: ImageFilter, ids: list[int] | None) -> int:
    return export_csv(store, path, filters=image_filter, ids=ids)


def database_page(ctx) -> DatabasePage:
    return DatabasePage(ctx)


__all__ = ["COLUMNS", "DatabasePage", "LibraryTableModel", "database_page"]
