"""The Database page: every image the library tracks, as a table.

The table's model is `LibraryTableModel` (database_model.py: SQL sorts, rows fetched in chunks as
the table scrolls). The filter bar is the gallery's. "Export to CSV" writes what is shown (the
same filters; the columns of `civitgrab-cli export-csv`), and a double-click opens the image in
the gallery's detail pane. Column widths, order and the sort persist.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QModelIndex, Qt, Signal
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
from civitgrab_desktop.gui.gallery.query import GalleryQuery
from civitgrab_desktop.gui.panels.database_model import COLUMNS, LibraryTableModel
from civitgrab_desktop.gui.util import plural, spawn
from civitgrab_desktop.gui.widgets.page import Page

LOG = logging.getLogger(__name__)

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


__all__ = ["DatabasePage", "database_page"]
