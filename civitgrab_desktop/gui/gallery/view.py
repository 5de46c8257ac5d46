"""The grid: a QListView laid out as wrapping rows of uniform cards.

Why ListMode + wrapping rather than IconMode: with 100,000 items Qt's IconMode lays out (and
re-lays out on every filter change and resize) each item on the GUI thread, measured at ~350 ms
per reset and ~120 ms per resize here, and its batched layout never finished. ListMode with
LeftToRight flow, wrapping, a grid size and uniform item sizes draws the same grid of icons;
its layout still visits every row, in C++ (~15 ms for 100,000, given the model's C++ row count:
see model.py).

Besides the grid it: tells the model and the thumbnail loader which rows are on screen (they
load what is visible first and drop what scrolled away), starts/stops the hover preview of
video cards, and maps keys: Enter opens the detail pane, Space the quick preview, Delete asks
to delete. Cards drag out as file URLs (copy), never move inside the view.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QFrame, QListView

from civitgrab_desktop.gui.gallery.delegate import GalleryDelegate
from civitgrab_desktop.gui.gallery.model import PAGE_SIZE, GalleryModel
from civitgrab_desktop.gui.gallery.thumbnails import ThumbnailLoader
from civitgrab_desktop.gui.gallery.video import HoverPreview

HOVER_DELAY_MS = 180
PREFETCH_SCREENS = 1


class GalleryView(QListView):
    activatedItem = Signal(int)  # Enter / double-click: the image id
    previewRequested = Signal(int)  # Space
    deleteRequested = Signal()  # Delete
    currentIdChanged = Signal(int)
    contextMenuAt = Signal(QPoint)  # global position

    def __init__(self, model: GalleryModel, loader: ThumbnailLoader, preview: HoverPreview, parent=None):
        super().__init__(parent)
        self.gallery_model = model
        self.loader = loader
        self.preview = preview
        self.delegate_ = GalleryDelegate(loader, preview, self)
        self.setObjectName("GalleryGrid")
        self.setModel(model)
        self.setItemDelegate(self.delegate_)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        # One pass: ~15 ms for 100,000 cards (the model's row count is C++), and the scroll
        # range is right at once (batched, it grows while the user drags the scroll bar).
        self.setLayoutMode(QListView.LayoutMode.SinglePass)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)  # no relayout loops
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionRectVisible(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setMouseTracking(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setSpacing(0)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(lambda pos: self.contextMenuAt.emit(self.viewport().mapToGlobal(pos)))
        self.setAccessibleName("Gallery")

        self._hover_row = -1
        self._hover_timer = QTimer(self)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.setInterval(HOVER_DELAY_MS)
        self._hover_timer.timeout.connect(self._start_hover)
        self._visible_timer = QTimer(self)
        self._visible_timer.setSingleShot(True)
        self._visible_timer.setInterval(30)
        self._visible_timer.timeout.connect(self._update_visible)
        self.set_thumb_size(176)

        loader.ready.connect(self._on_thumbnail)
        loader.failed.connect(lambda image_id, _reason: self._on_thumbnail(image_id))
        preview.frameReady.connect(self._on_thumbnail)
        preview.stopped.connect(self._on_thumbnail)
        model.modelReset.connect(self._schedule_visible)
        model.pageLoaded.connect(lambda _p: self._schedule_visible())
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.doubleClicked.connect(self._on_double_clicked)

    # -- size -------------------------------------------------------------------------------------

    def set_thumb_size(self, size: int) -> None:
        self.delegate_.set_thumb_size(size)
        self._fit_grid()
        self.verticalScrollBar().setSingleStep(max(20, size // 3))
        self._schedule_visible()

    def _fit_grid(self) -> None:
        """Cells share the row's width (cards stay their size, centred): no ragged right edge."""
        cell = self.delegate_.cell_size()
        width = self.viewport().width()
        if width > cell.width():
            columns = max(1, width // cell.width())
            cell.setWidth(width // columns)
        if cell != self.gridSize():
            self.setGridSize(cell)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_grid()
        self._schedule_visible()

    def thumb_size(self) -> int:
        return self.delegate_.thumb_size

    # -- what is on screen ------------------------------------------------------------------------

    def visible_rows(self) -> tuple[int, int]:
        """(first, last) rows at least partly on screen; (0, -1) when empty."""
        count = self.gallery_model.rowCount()
        if count == 0:
            return 0, -1
        cell = self.gridSize()
        per_row = max(1, self.viewport().width() // max(1, cell.width()))
        top = self.verticalScrollBar().value()
        first_line = max(0, top // max(1, cell.height()))
        lines = self.viewport().height() // max(1, cell.height()) + 2
        first = first_line * per_row
        last = min(count - 1, (first_line + lines) * per_row - 1)
        return min(first, count - 1), last

    def _schedule_visible(self) -> None:
        if not self._visible_timer.isActive():
            self._visible_timer.start()

    def _on_scrolled(self, _value: int) -> None:
        self._schedule_visible()
        if self._hover_row >= 0:  # the card under the pointer changed
            self._track_hover(self.viewport().mapFromGlobal(self.cursor().pos()))

    def _update_visible(self) -> None:
        first, last = self.visible_rows()
        self.gallery_model.set_visible_rows(first, max(first, last))
        if last < first:
            self.loader.retain(set())
            return
        ids = self.gallery_model.ids
        keep = set(ids[first : last + 1])
        # one more screen below (and a little above) is worth preparing
        span = last - first + 1
        ahead = [i for i in range(last + 1, min(len(ids), last + 1 + span * PREFETCH_SCREENS))]
        behind = list(range(max(0, first - span // 2), first))
        extra = []
        for row in ahead + behind:
            item = self.gallery_model.item(row)
            if item is not None:
                extra.append(item.thumb())
                keep.add(item.id)
        self.loader.retain(keep)
        dpr = self.devicePixelRatioF()
        self.loader.prefetch(extra, max(16, round(self.thumb_size() * dpr)))
        # pages just outside the screen load next
        page_first, page_last = first // PAGE_SIZE, last // PAGE_SIZE
        for page in (page_last + 1, page_first - 1):
            if 0 <= page * PAGE_SIZE < len(ids) and not self.gallery_model.is_page_loaded(page):
                self.gallery_model._want(page)

    def _on_thumbnail(self, image_id: int) -> None:
        first, last = self.visible_rows()
        row = self.gallery_model.row_in(image_id, first, last)
        if row is not None:
            self.update(self.gallery_model.index(row))

    # -- hover preview ----------------------------------------------------------------------------

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind == QEvent.Type.MouseMove or kind == QEvent.Type.HoverMove:
            self._track_hover(event.position().toPoint())
        elif kind == QEvent.Type.Leave or kind == QEvent.Type.HoverLeave:
            self._end_hover()
        return super().viewportEvent(event)

    def _track_hover(self, pos: QPoint) -> None:
        index = self.indexAt(pos)
        row = index.row() if index.isValid() else -1
        if row == self._hover_row:
            return
        self._hover_row = row
        self.preview.stop()
        self._hover_timer.stop()
        if row >= 0:
            item = self.gallery_model.item(row)
            if item is not None and item.is_video:
                self._hover_timer.start()

    def _start_hover(self) -> None:
        item = self.gallery_model.item(self._hover_row)
        if item is not None and item.is_video and item.file:
            self.preview.start(item.id, item.file)

    def hover_row(self, row: int) -> None:
        """Start the preview as if the pointer rested on `row` (tests, keyboard)."""
        self._hover_row = row
        self._start_hover()

    def _end_hover(self) -> None:
        self._hover_row = -1
        self._hover_timer.stop()
        self.preview.stop()

    def leaveEvent(self, event) -> None:  # noqa: N802
        self._end_hover()
        super().leaveEvent(event)

    def hideEvent(self, event) -> None:  # noqa: N802
        self._end_hover()
        super().hideEvent(event)

    # -- keys and activation ----------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        current = self.currentIndex()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and current.isValid():
            self.activatedItem.emit(self.gallery_model.id_at(current.row()))
            event.accept()
            return
        if key == Qt.Key.Key_Space and current.isValid() and not event.modifiers():
            self.previewRequested.emit(self.gallery_model.id_at(current.row()))
            event.accept()
            return
        if key == Qt.Key.Key_Delete and self.selectionModel().hasSelection():
            self.deleteRequested.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    def _on_double_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.activatedItem.emit(self.gallery_model.id_at(index.row()))

    def currentChanged(self, current: QModelIndex, previous: QModelIndex) -> None:  # noqa: N802
        super().currentChanged(current, previous)
        if current.isValid():
            image_id = self.gallery_model.id_at(current.row())
            if image_id is not None:
                self.currentIdChanged.emit(image_id)

    def selected_ids(self) -> list[int]:
        rows = sorted(index.row() for index in self.selectionModel().selectedIndexes())
        return [i for i in (self.gallery_model.id_at(r) for r in rows) if i is not None]

    def select_row(self, row: int) -> None:
        index = self.gallery_model.index(row)
        self.setCurrentIndex(index)
        self.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(800, 600)
