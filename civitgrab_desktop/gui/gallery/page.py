"""The Gallery page: filter bar, the grid of cards, the detail pane in a splitter, the quick
preview; its actions on images (context menu, open, convert, delete…) are gui/gallery/page_actions.py.

The grid shows downloaded images. The page refreshes when it is shown and the library changed
(cheap index-only signature), when a job ends, and every few seconds while jobs run and the page
is visible, keeping the scroll position and the selection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.gallery.detail import DetailPane
from civitgrab_desktop.gui.gallery.filter_bar import FilterBar
from civitgrab_desktop.gui.gallery.model import GalleryModel
from civitgrab_desktop.gui.gallery.page_actions import PageActions
from civitgrab_desktop.gui.gallery.preview import QuickPreview
from civitgrab_desktop.gui.gallery.query import DEFAULT_SORT, SORT_BY_KEY, SORT_ORDERS, GalleryQuery
from civitgrab_desktop.gui.gallery.thumbnails import ThumbnailLoader
from civitgrab_desktop.gui.gallery.video import HoverPreview
from civitgrab_desktop.gui.gallery.view import GalleryView
from civitgrab_desktop.gui.util import plural, spawn
from civitgrab_desktop.gui.widgets.page import Page

LOG = logging.getLogger(__name__)

POLL_MS = 4000
MIN_THUMB, MAX_THUMB, DEFAULT_THUMB = 96, 320, 176


class GalleryPage(PageActions, Page):
    key = "gallery"
    title = "Gallery"
    subtitle = ""
    icon_name = "gallery"

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        self.header.hide()  # the grid needs the room; the window title names the page
        self.root.setContentsMargins(14, 12, 14, 6)
        self.root.setSpacing(8)
        self._signature: tuple | None = None
        self._started = False
        self._completions_loaded = False
        self.query = GalleryQuery()
        self.sort_key = DEFAULT_SORT
        self.pending_refresh: asyncio.Task | None = None  # the latest refresh a change started

        self.loader = ThumbnailLoader(ctx.services.paths.thumbnails, parent=self)
        self.preview = HoverPreview(self)
        self.model = GalleryModel(ctx.reader, self)
        self.model.failed.connect(lambda text: self.ctx.statusMessage.emit(text, 8000))

        self.filter_bar = FilterBar()
        self.sort = QComboBox()
        self.sort.setToolTip("Order of the cards")
        for order in SORT_ORDERS:
            self.sort.addItem(order.label, order.key)
        self.sort.currentIndexChanged.connect(self._on_sort)
        self.filter_bar.add_trailing(self.sort)
        size_box = QWidget()
        size_row = QHBoxLayout(size_box)
        size_row.setContentsMargins(6, 0, 0, 0)
        size_row.setSpacing(4)
        small = QLabel()
        icons.set_pixmap(small, "image", 14, "muted")
        large = QLabel()
        icons.set_pixmap(large, "image", 20, "muted")
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(MIN_THUMB, MAX_THUMB)
        self.size_slider.setSingleStep(8)
        self.size_slider.setPageStep(32)
        self.size_slider.setValue(DEFAULT_THUMB)
        self.size_slider.setFixedWidth(120)
        self.size_slider.setToolTip("Thumbnail size (Ctrl+plus / Ctrl+minus)")
        self.size_slider.valueChanged.connect(self._on_size)
        size_row.addWidget(small)
        size_row.addWidget(self.size_slider)
        size_row.addWidget(large)
        self.filter_bar.add_trailing(size_box)
        self.filter_bar.changed.connect(self._on_query)
        self.root.addWidget(self.filter_bar)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.view = GalleryView(self.model, self.loader, self.preview)
        self.view.activatedItem.connect(self.activate_item)
        self.view.previewRequested.connect(self.quick_preview)
        self.view.deleteRequested.connect(lambda: self.confirm_delete(self.view.selected_ids()))
        self.view.currentIdChanged.connect(self._on_current)
        self.view.contextMenuAt.connect(self._context_menu)
        grid_box = QWidget()
        grid_col = QVBoxLayout(grid_box)
        grid_col.setContentsMargins(0, 0, 0, 0)
        grid_col.addWidget(self.view)
        self.empty = QLabel("", self.view.viewport())
        self.empty.setObjectName("EmptyState")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.hide()
        self.splitter.addWidget(grid_box)
        self.detail = DetailPane(ctx)
        self.detail.openRequested.connect(self.open_file)
        self.detail.revealRequested.connect(self.reveal)
        self.detail.fetchTagsRequested.connect(self.fetch_tags)
        self.detail.convertRequested.connect(self.convert)
        self.detail.deleteRequested.connect(lambda image_id: self.confirm_delete([image_id]))
        self.detail.closeRequested.connect(lambda: self.set_detail_visible(False))
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([820, 380])
        self.root.addWidget(self.splitter, 1)

        self.quick = QuickPreview(self)
        self.quick.stepRequested.connect(self._step_preview)
        self.quick.openRequested.connect(self.open_file)

        self.model.refreshed.connect(self._on_refreshed)
        self.model.modelReset.connect(self._update_empty)
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(120)
        self._detail_timer.timeout.connect(self._show_current)
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._poll_library)
        ctx.jobs.jobFinished.connect(lambda _handle: self.refresh_if_changed())
        ctx.jobs.jobAdded.connect(lambda _handle: self._update_poll())
        ctx.jobs.jobFinished.connect(lambda _handle: self._update_poll())

        for keys, slot in (
            ("Ctrl++", lambda: self.size_slider.setValue(self.size_slider.value() + 32)),
            ("Ctrl+=", lambda: self.size_slider.setValue(self.size_slider.value() + 32)),
            ("Ctrl+-", lambda: self.size_slider.setValue(self.size_slider.value() - 32)),
            (QKeySequence.StandardKey.Refresh, lambda: spawn(self.refresh(), name="gallery-refresh")),
            ("Ctrl+R", lambda: spawn(self.refresh(), name="gallery-refresh")),
        ):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # -- Page -------------------------------------------------------------------------------------

    def search_widget(self) -> QWidget:
        return self.filter_bar.search

    def activated(self) -> None:
        if not self._started:
            self._started = True
            self.pending_refresh = spawn(self.refresh(), name="gallery-first-load")
        else:
            self.refresh_if_changed()
        self._update_poll()

    def save_state(self) -> dict[str, Any]:
        return {
            "query": self.filter_bar.query().to_state(),
            "sort": self.sort_key,
            "thumb": self.size_slider.value(),
            "splitter": bytes(self.splitter.saveState().toBase64()).decode("ascii"),
            "detail": self.detail.isVisibleTo(self),
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.query = GalleryQuery.from_state(state.get("query"))
        self.filter_bar.set_query(self.query, notify=False)
        sort = state.get("sort")
        if sort in SORT_BY_KEY:
            self.sort_key = sort
            self.sort.blockSignals(True)
            self.sort.setCurrentIndex([o.key for o in SORT_ORDERS].index(sort))
            self.sort.blockSignals(False)
        thumb = state.get("thumb")
        if isinstance(thumb, int):
            self.size_slider.setValue(max(MIN_THUMB, min(MAX_THUMB, thumb)))
        splitter = state.get("splitter")
        if isinstance(splitter, str):
            self.splitter.restoreState(QByteArray.fromBase64(splitter.encode("ascii")))
        if state.get("detail") is False:
            self.set_detail_visible(False)

    # -- loading ----------------------------------------------------------------------------------

    def current_filter(self):
        return self.query.to_filter(fts=self.ctx.fts_assumed, dl_state="done")

    async def refresh(self) -> int:
        """Query the library again with the current filter and order; keeps the selection."""
        await self.ctx.has_fts()  # asked once; current_filter() then knows the answer
        order = SORT_BY_KEY[self.sort_key]
        current = self.current_id()
        scroll = self.view.verticalScrollBar().value()
        image_filter = self.current_filter()
        count = await self.model.refresh(image_filter, order.column, order.descending)
        try:
            reader = await self.ctx.reader()
            self._signature = await reader.library_signature()
        except Exception:
            self._signature = None
        if current is not None:
            row = self.model.row_of(current)
            if row is not None:
                self.view.setCurrentIndex(self.model.index(row))
                self.view.verticalScrollBar().setValue(scroll)
        if not self._completions_loaded:
            self._completions_loaded = True
            spawn(self._load_completions(), name="gallery-completions")
        return count

    def refresh_if_changed(self) -> None:
        if not self._started:
            return
        spawn(self._refresh_if_changed(), name="gallery-refresh-if-changed")

    async def _refresh_if_changed(self) -> bool:
        try:
            reader = await self.ctx.reader()
            signature = await reader.library_signature()
        except Exception:
            return False
        if signature == self._signature:
            return False
        await self.refresh()
        self._completions_loaded = False
        return True

    def _update_poll(self) -> None:
        if self.ctx.jobs.active() and self.isVisible():
            if not self._poll.isActive():
                self._poll.start()
        else:
            self._poll.stop()

    def _poll_library(self) -> None:
        if not self.isVisible():
            self._poll.stop()
            return
        self.refresh_if_changed()

    async def _load_completions(self) -> None:
        try:
            reader = await self.ctx.reader()
            users = [v for v, _n in await reader.distinct_values("username", 2000)]
            models = [v for v, _n in await reader.distinct_values("model_version_name", 2000)]
            tags = [t["name"] for t in await reader.top_tags(2000)]
        except Exception as exc:
            LOG.debug("no completions: %s", exc)
            return
        self.filter_bar.set_completions(sorted(users, key=str.lower), sorted(models, key=str.lower),
                                        sorted(tags, key=str.lower))

    def _on_refreshed(self, count: int) -> None:
        noun = "item" if self.query.media_type is None else self.query.media_type
        text = plural(count, noun)
        if not self.query.is_empty():
            text += " match"
        self.filter_bar.set_count(f"{text} · {self.model.last_query_s * 1000:.0f} ms")
        self._update_empty()

    def _update_empty(self) -> None:
        if self.model.rowCount() > 0:
            self.empty.hide()
            return
        if self.query.is_empty():
            self.empty.setText("No downloads yet.\nDownloaded images and videos appear here.")
        else:
            self.empty.setText("Nothing matches the search and filters.")
        self.empty.resize(self.view.viewport().size())
        self.empty.show()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.empty.resize(self.view.viewport().size())

    def _on_query(self, query: GalleryQuery) -> None:
        self.query = query
        self.pending_refresh = spawn(self.refresh(), name="gallery-filter")

    def _on_sort(self, index: int) -> None:
        self.sort_key = self.sort.itemData(index) or DEFAULT_SORT
        self.pending_refresh = spawn(self.refresh(), name="gallery-sort")

    def _on_size(self, value: int) -> None:
        self.view.set_thumb_size(int(value))

    # -- selection and detail ---------------------------------------------------------------------

    def current_id(self) -> int | None:
        index = self.view.currentIndex()
        return self.model.id_at(index.row()) if index.isValid() else None

    def _on_current(self, _image_id: int) -> None:
        if self.detail.isVisibleTo(self):
            self._detail_timer.start()

    def _show_current(self) -> None:
        image_id = self.current_id()
        if image_id is not None and image_id != self.detail.image_id:
            self.detail.show_soon(image_id, self._poster(image_id))

    def _poster(self, image_id: int):
        return self.loader.cached(image_id, self._thumb_px())

    def _thumb_px(self) -> int:
        return max(16, round(self.view.thumb_size() * self.view.devicePixelRatioF()))

    def set_detail_visible(self, visible: bool) -> None:
        self.detail.setVisible(visible)
        if not visible:
            self.detail.media.clear()
        elif self.current_id() is not None:
            self._show_current()

    def activate_item(self, image_id: int) -> None:
        """Enter / double-click: show in the detail pane; again on the shown item: full view."""
        if self.detail.isVisibleTo(self) and self.detail.image_id == image_id:
            self.quick_preview(image_id)
            return
        self.set_detail_visible(True)
        self.detail.show_soon(image_id, self._poster(image_id))

    async def show_item(self, image_id: int) -> bool:
        """Select `image_id` in the grid (clearing filters that hide it) and show its details;
        False when it is not a downloaded image (the detail pane still shows it)."""
        if not self._started:
            self._started = True
            await self.refresh()
        elif self.pending_refresh is not None and not self.pending_refresh.done():
            # e.g. the page was just shown for the first time (the Database page opening an
            # image): its first load is in flight and the grid is still empty
            with contextlib.suppress(Exception):
                await asyncio.shield(self.pending_refresh)
        row = self.model.row_of(image_id)
        if row is None and not self.query.is_empty():
            self.query = GalleryQuery()
            self.filter_bar.set_query(self.query, notify=False)
            await self.refresh()
            row = self.model.row_of(image_id)
        self.set_detail_visible(True)
        if row is not None:
            self.view.select_row(row)
        await self.detail.show_image(image_id, self._poster(image_id))
        return row is not None

    def quick_preview(self, image_id: int) -> QuickPreview:
        item = self.model.item_by_id(image_id)
        if item is None:
            return self.quick
        self.preview.stop()
        caption = f"#{item.id} · {item.username or 'unknown'}"
        if item.model_version_name or item.checkpoint_name:
            caption += f" · {item.model_version_name or item.checkpoint_name}"
        self.quick.show_item(item.id, item.file, item.is_video, caption, self._poster(item.id))
        if not self.quick.isVisible():
            self.quick.popup()
        return self.quick

    def _step_preview(self, step: int) -> None:
        row = self.model.row_of(self.quick.image_id) if self.quick.image_id is not None else None
        if row is None:
            return
        new_row = max(0, min(self.model.rowCount() - 1, row + step))
        self.view.select_row(new_row)
        image_id = self.model.id_at(new_row)
        if image_id is not None and self.model.item_by_id(image_id) is not None:
            self.quick_preview(image_id)

    def hideEvent(self, event) -> None:  # noqa: N802
        self.preview.stop()
        self._poll.stop()
        super().hideEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        self.preview.close()
        self.loader.close()
        self.detail.close_media()


def gallery_page(ctx) -> GalleryPage:
    return GalleryPage(ctx)
