"""The gallery's list model: the ids of every matching image (one indexed query, computed in a
reader thread), and row data loaded in pages of PAGE_SIZE as they scroll into view.

Never are all rows loaded: `refresh()` fetches the ordered id list (100,000 ids take ~20-100 ms,
off the loop), and `data()` for a row whose page is not loaded returns no item (the delegate
paints a placeholder) and queues that page. Pages load one at a time, nearest to what is on
screen first; pages that scrolled far away are dropped from the queue. Loaded rows live in a
bounded id-keyed cache, so a refresh (new filter, new downloads) shows known cards at once.

Why a QStringListModel (of one empty string per row) underneath: QListView's layout calls
`model->index(row)` for every row, and QAbstractListModel::index() asks rowCount() each time.
A rowCount() written in Python made every layout (each reset, and each dataChanged, i.e. every
page load) cost 100,000 Python calls: ~150 ms on the GUI thread. The row count held by the C++
base keeps the layout of 100,000 cards at ~15 ms. `_ids` mirrors that list: set together in
`_apply_ids`, and rows removed through removeRows() are dropped from `_ids` by the first slot
connected to rowsRemoved (before any view hears of it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QMimeData, QModelIndex, QPersistentModelIndex, QStringListModel, Qt, QUrl, Signal

from civitgrab_desktop.core.library.filters import ImageFilter
from civitgrab_desktop.gui.gallery.query import nsfw_label
from civitgrab_desktop.gui.gallery.thumbnails import ThumbItem
from civitgrab_desktop.gui.util import spawn

LOG = logging.getLogger(__name__)

PAGE_SIZE = 200
MAX_CACHED_ITEMS = 20_000
KEEP_PAGES_AROUND = 4  # queued pages further than this from the screen are dropped
ROW_MAP_AFTER = 16  # row_of() lookups since the rows changed before the id -> row map is built

ItemRole = Qt.ItemDataRole.UserRole + 1
IdRole = Qt.ItemDataRole.UserRole + 2


@dataclass(slots=True)
class GalleryItem:
    """One card: the light columns of a library row (core.library.browsing.BROWSE_COLUMNS)."""

    id: int
    type: str
    nsfw_level: int
    username: str | None
    model_version_name: str | None
    checkpoint_name: str | None
    base_model: str | None
    created_at: str | None
    reactions: int
    width: int | None
    height: int | None
    path: str | None
    mime: str | None
    bytes: int | None
    dl_state: str
    downloaded_at: str | None
    tag_state: str
    cv_state: str
    gone_at: str | None
    webp_path: str | None
    tags_count: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> GalleryItem:
        return cls(**row)

    @property
    def is_video(self) -> bool:
        return self.type == "video"

    @property
    def file(self) -> str | None:
        """The file to show: the download, else the WebP made from it."""
        return self.path or self.webp_path

    def thumb(self) -> ThumbItem:
        return ThumbItem(self.id, self.path, self.is_video, self.width, self.height, self.webp_path)

    def tooltip(self) -> str:
        lines = [f"#{self.id} · {self.username or 'unknown user'}"]
        model = self.model_version_name or self.checkpoint_name
        if model:
            lines.append(model if not self.base_model else f"{model} ({self.base_model})")
        details = [nsfw_label(self.nsfw_level), "video" if self.is_video else "image"]
        if self.width and self.height:
            details.append(f"{self.width}×{self.height}")
        if self.created_at:
            details.append(self.created_at[:10])
        lines.append(" · ".join(details))
        states = ["tags fetched" if self.tag_state == "done" else f"tags: {self.tag_state}"]
        if self.cv_state == "done":
            states.append("converted to WebP")
        lines.append(", ".join(states))
        return "\n".join(lines)


ReaderProvider = Callable[[], Awaitable[Any]]  # -> LibraryReader


class GalleryModel(QStringListModel):
    refreshed = Signal(int)  # number of rows after a refresh
    pageLoaded = Signal(int)  # page index
    failed = Signal(str)  # a query failed (message for the status bar)

    def __init__(self, reader: ReaderProvider, parent=None):
        super().__init__(parent)
        self._reader_provider = reader
        self._ids: list[int] = []
        self._row_of: dict[int, int] | None = None  # built on demand (see row_of)
        self._lookups = 0
        self._items: OrderedDict[int, GalleryItem] = OrderedDict()
        self._missing: set[int] = set()  # ids listed but gone from the library when read
        self._loaded_pages: set[int] = set()
        self._wanted_pages: OrderedDict[int, None] = OrderedDict()
        self._loader: asyncio.Task | None = None
        self._generation = 0
        self._visible = (0, 0)
        self.filter: ImageFilter = ImageFilter(dl_state="done")
        self.order_by = "created_at"
        self.descending = True
        self.last_query_s = 0.0
        self.page_load_times: list[float] = []
        # first connection: _ids follows a removal before any view hears of it
        self.rowsRemoved.connect(self._on_rows_removed)

    # -- Qt model (rowCount and index are the C++ base's: see the module docstring) ----------------

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = index.row()
        if not index.isValid() or row >= len(self._ids):
            return None
        image_id = self._ids[row]
        if role == IdRole:
            return image_id
        item = self._items.get(image_id)
        page = row // PAGE_SIZE
        if page not in self._loaded_pages:
            self._want(page)
        elif item is None and image_id not in self._missing:  # evicted from the cache
            self._loaded_pages.discard(page)
            self._want(page)
        if role == ItemRole:
            return item
        if role == Qt.ItemDataRole.DisplayRole or role == Qt.ItemDataRole.AccessibleTextRole:
            if item is None:
                return f"Image {image_id}"
            kind = "Video" if item.is_video else "Image"
            return f"{kind} {image_id} by {item.username or 'unknown'}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.tooltip() if item is not None else f"#{image_id} (loading)"
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return ["text/uri-list"]

    def mimeData(self, indexes) -> QMimeData:  # noqa: N802
        """Dragging cards out: the files, as file URLs (file managers copy them, editors open them)."""
        mime = QMimeData()
        urls = []
        for index in indexes:
            item = self.item(index.row())
            if item is not None and item.file:
                urls.append(QUrl.fromLocalFile(item.file))
        mime.setUrls(urls)
        if urls:
            mime.setText("\n".join(u.toLocalFile() for u in urls))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:  # noqa: N802
        return Qt.DropAction.CopyAction

    # -- access -----------------------------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        return self._ids

    def id_at(self, row: int) -> int | None:
        return self._ids[row] if 0 <= row < len(self._ids) else None

    def item(self, row: int) -> GalleryItem | None:
        image_id = self.id_at(row)
        return None if image_id is None else self._items.get(image_id)

    def item_by_id(self, image_id: int) -> GalleryItem | None:
        return self._items.get(image_id)

    def row_of(self, image_id: int) -> int | None:
        """The row of `image_id`, or None. A few lookups scan the list (C speed, ~1 ms for
        100,000 ids); the id -> row map (~10 ms to build on the GUI thread) is made only when
        lookups keep coming for the same rows."""
        if self._row_of is not None:
            return self._row_of.get(image_id)
        self._lookups += 1
        if self._lookups > ROW_MAP_AFTER:
            self._row_of = {i: r for r, i in enumerate(self._ids)}
            return self._row_of.get(image_id)
        try:
            return self._ids.index(image_id)
        except ValueError:
            return None

    def row_in(self, image_id: int, first: int, last: int) -> int | None:
        """The row of `image_id` if it is within rows first..last (the screen): no map needed."""
        try:
            return self._ids.index(image_id, max(0, first), max(0, last + 1))
        except ValueError:
            return None

    def is_page_loaded(self, page: int) -> bool:
        return page in self._loaded_pages

    # -- refreshing -------------------------------------------------------------------------------

    async def refresh(
        self,
        image_filter: ImageFilter | None = None,
        order_by: str | None = None,
        descending: bool | None = None,
        *,
        first_page: bool = True,
    ) -> int:
        """Load the id list for `image_filter` (default: the current one) in `order_by`; returns
        the row count. A newer refresh supersedes an older one still running (its result is
        dropped). With `first_page` the first page of rows is loaded before returning."""
        if image_filter is not None:
            self.filter = image_filter
        if order_by is not None:
            self.order_by = order_by
        if descending is not None:
            self.descending = descending
        self._generation += 1
        generation = self._generation
        started = time.perf_counter()
        try:
            reader = await self._reader_provider()
            ids = await reader.browse_ids(self.filter, order_by=self.order_by, descending=self.descending)
        except Exception as exc:
            if generation == self._generation:
                LOG.warning("gallery query failed: %s", exc)
                self.failed.emit(f"Could not read the library: {exc}")
            raise
        if generation != self._generation:
            return len(self._ids)  # superseded
        self._apply_ids(ids)
        if first_page and ids:
            await self._load_page(0, generation)
        self.last_query_s = time.perf_counter() - started
        self.refreshed.emit(len(self._ids))
        return len(self._ids)


    def _apply_ids(self, ids: list[int]) -> None:
        same = ids == self._ids
        self._missing.clear()
        self._loaded_pages.clear()
        self._wanted_pages.clear()
        if same:
            # Same rows: keep the view (selection, scroll); rows reload as they are painted.
            self._row_of, self._lookups = None, 0
            if ids:
                self.dataChanged.emit(self.index(0), self.index(len(ids) - 1), [ItemRole])
            return
        self._ids = ids
        self._row_of, self._lookups = None, 0
        self.setStringList([""] * len(ids))  # the reset (views re-read every row from _ids)

    def remove_ids(self, removed: set[int]) -> None:
        """Take deleted images out without a new query (rows shift; pages reload)."""
        rows = sorted(r for r, i in enumerate(self._ids) if i in removed)
        while rows:  # runs of adjacent rows, from the end
            last = first = rows.pop()
            while rows and rows[-1] == first - 1:
                first = rows.pop()
            self.removeRows(first, last - first + 1)
        for image_id in removed:
            self._items.pop(image_id, None)
        self._row_of, self._lookups = None, 0
        self._loaded_pages.clear()

    def _on_rows_removed(self, parent: QModelIndex, first: int, last: int) -> None:
        if not parent.isValid():
            del self._ids[first : last + 1]
            self._row_of, self._lookups = None, 0

    async def reload_items(self, ids: list[int]) -> None:
        """Read these rows again (after fetching tags, converting...) and repaint them."""
        reader = await self._reader_provider()
        rows = await reader.browse_rows(ids)
        for row in rows:
            self._items[row["id"]] = GalleryItem.from_row(row)
        for image_id in ids:
            r = self.row_of(image_id)
            if r is not None:
                self.dataChanged.emit(self.index(r), self.index(r), [ItemRole])

    # -- pages ------------------------------------------------------------------------------------

    def set_visible_rows(self, first: int, last: int) -> None:
        """The rows on screen (the view tells us after scrolling): pages near them load first,
        queued pages far from them are dropped."""
        self._visible = (first, last)
        lo = first // PAGE_SIZE - KEEP_PAGES_AROUND
        hi = last // PAGE_SIZE + KEEP_PAGES_AROUND
        for page in [p for p in self._wanted_pages if not lo <= p <= hi]:
            del self._wanted_pages[page]

    def _want(self, page: int) -> None:
        if page in self._wanted_pages:
            return
        self._wanted_pages[page] = None
        if self._loader is None or self._loader.done():
            self._loader = spawn(self._load_wanted(self._generation), name="gallery-pages")

    def _next_wanted(self) -> int | None:
        if not self._wanted_pages:
            return None
        first, last = self._visible
        centre = (first + last) // 2 // PAGE_SIZE
        return min(self._wanted_pages, key=lambda p: (abs(p - centre), p))

    async def _load_wanted(self, generation: int) -> None:
        while generation == self._generation:
            page = self._next_wanted()
            if page is None:
                return
            self._wanted_pages.pop(page, None)
            if page in self._loaded_pages:
                continue
            try:
                await self._load_page(page, generation)
            except Exception as exc:
                LOG.warning("could not load gallery page %d: %s", page, exc)
                self.failed.emit(f"Could not read the library: {exc}")
                return
        # a refresh came in meanwhile: serve its pages
        if self._wanted_pages:
            self._loader = spawn(self._load_wanted(self._generation), name="gallery-pages")

    async def _load_page(self, page: int, generation: int) -> None:
        start = page * PAGE_SIZE
        ids = self._ids[start : start + PAGE_SIZE]
        if not ids:
            return
        started = time.perf_counter()
        reader = await self._reader_provider()
        rows = await reader.browse_rows(ids)
        if generation != self._generation:
            return
        for row in rows:
            item = GalleryItem.from_row(row)
            self._items[item.id] = item
            self._items.move_to_end(item.id)
        if len(rows) != len(ids):
            self._missing.update(set(ids) - {row["id"] for row in rows})
        while len(self._items) > MAX_CACHED_ITEMS:
            self._items.popitem(last=False)
        self._loaded_pages.add(page)
        self.page_load_times.append(time.perf_counter() - started)
        del self.page_load_times[:-200]
        end = min(len(self._ids), start + PAGE_SIZE) - 1
        if end >= start:
            self.dataChanged.emit(self.index(start), self.index(end), [ItemRole])
        self.pageLoaded.emit(page)
