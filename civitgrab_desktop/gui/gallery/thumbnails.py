"""Thumbnails for the gallery: made off the loop thread, cached on disk and in memory.

    image = loader.get(item, size)   # a QImage (size x size, cover-cropped) or None for now
    loader.ready.connect(...)        # image id: its thumbnail arrived; repaint that card

* Disk: `<data dir>/thumbnails/<bucket>/<id mod 1000>/<id>.webp` (core.media.thumbs), where the
  bucket is the smallest of BUCKETS that covers the requested size: the size slider does not
  make a new disk cache per pixel. Images are made with Pillow (draft() decoding) in worker
  threads; a video's first frame comes from the FrameGrabber (QMediaPlayer on the GUI thread) and
  is written to the same cache by a worker.
* Memory: an LRU of display-ready QImages (exact size, premultiplied ARGB, corners already
  rounded: painting never scales or clips) bounded by bytes.
* Scheduling: `get()` never blocks; it queues a request. At most `workers` requests run at once;
  the rest wait in a queue that `retain()` trims to the cards still on screen, so scrolling fast
  never builds a backlog of thumbnails nobody will see.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import time
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PySide6.QtCore import (
    QObject,
    QRect,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QImage, QImageReader, QPainter

from civitgrab_desktop.core.media.thumbs import UnsupportedMedia, make_thumbnail, thumb_cache_path
from civitgrab_desktop.gui.gallery.video import FrameGrabber

LOG = logging.getLogger(__name__)

BUCKETS = (128, 256, 384, 512, 768)
DEFAULT_MEMORY_BYTES = 160 * 1024 * 1024
MAX_FAILED = 20_000
WORKER_NICE = 10  # Linux: thumbnail worker threads run at this niceness


def bucket_for(size: int) -> int:
    for bucket in BUCKETS:
        if size <= bucket:
            return bucket
    return BUCKETS[-1]


def source_box(bucket: int, width: int | None, height: int | None) -> tuple[int, int]:
    """The box make_thumbnail fits the source into so that its SHORT side reaches `bucket` (the
    cards are squares, cover-cropped); unknown dimensions get a square box."""
    if not width or not height or width <= 0 or height <= 0:
        return bucket, bucket
    short = min(width, height)
    scale = bucket / short
    return max(1, min(4 * bucket, round(width * scale))), max(1, min(4 * bucket, round(height * scale)))


def thumb_corner(size: int) -> int:
    """The radius of a thumbnail's rounded corners (the same share of any size, in the size's
    own unit: logical px for the delegate, device px for the images made here)."""
    return max(3, round(size * 0.04))


def rounded(image: QImage, size: int) -> QImage:
    """`image` (size x size) with transparent, antialiased rounded corners: the delegate draws
    it as is, with no per-paint clip path (costly in the raster engine, on every card)."""
    out = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(Qt.GlobalColor.transparent)
    painter = QPainter(out)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QBrush(image))
    corner = thumb_corner(size)
    painter.drawRoundedRect(QRectF(0, 0, size, size), corner, corner)
    painter.end()
    return out


def _cover_geometry(width: int, height: int, size: int) -> tuple[QSize, QRect]:
    """The scaled size that covers a size x size square, and the centred square within it."""
    scale = max(size / width, size / height)
    w, h = max(size, round(width * scale)), max(size, round(height * scale))
    return QSize(w, h), QRect((w - size) // 2, (h - size) // 2, size, size)


def read_cover(reader: QImageReader, size: int) -> QImage:
    """Worker thread: read `reader`'s image scaled to cover a size x size square, cropped to it,
    as premultiplied ARGB. The scaling and cropping happen inside QImageReader.read(), which
    releases the GIL; QImage.scaled()/copy() called from Python hold it (a worker scaling
    thumbnails that way stalls the GUI thread by tens of milliseconds)."""
    source = reader.size()
    if source.isValid() and source.width() > 0 and source.height() > 0:
        scaled, clip = _cover_geometry(source.width(), source.height(), size)
        reader.setScaledSize(scaled)
        reader.setScaledClipRect(clip)
    image = reader.read()
    if image.isNull():
        return image
    if image.width() != size or image.height() != size:  # the size was unknown before reading
        image = cover(image, size)
    return rounded(image, size)


def cover(image: QImage, size: int) -> QImage:
    """Scale `image` to cover a size x size square, crop the middle, premultiplied ARGB (holds
    the GIL while scaling: prefer read_cover() in workers)."""
    if image.width() != size or image.height() != size:
        scaled = image.scaled(
            QSize(size, size), Qt.AspectRatioMode.KeepAspectRatioByExpanding, Qt.TransformationMode.SmoothTransformation
        )
        x = max(0, (scaled.width() - size) // 2)
        y = max(0, (scaled.height() - size) // 2)
        image = scaled.copy(QRect(x, y, size, size))
    return image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


@dataclass(frozen=True)
class ThumbItem:
    """What the loader needs to know about an image (a gallery row has all of it)."""

    id: int
    path: str | None
    is_video: bool = False
    width: int | None = None
    height: int | None = None
    alt_path: str | None = None  # e.g. the WebP when the original is gone


@dataclass
class _Result:
    key: tuple[int, int]
    image: QImage | None
    status: str  # disk | made | frame | need-frame | failed
    error: str = ""
    seconds: float = 0.0
    item: ThumbItem | None = None


class ThumbnailLoader(QObject):
    ready = Signal(int)  # image id
    failed = Signal(int, str)  # image id, reason
    _done = Signal(object)  # _Result, emitted by worker threads (queued to the GUI thread)

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        workers: int = 2,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.cache_dir = Path(cache_dir)
        self.memory_budget = int(memory_bytes)
        self.workers = max(1, int(workers))
        self._memory: OrderedDict[tuple[int, int], QImage] = OrderedDict()
        self._memory_bytes = 0
        self._failed: OrderedDict[int, str] = OrderedDict()
        self._pending: OrderedDict[tuple[int, int], ThumbItem] = OrderedDict()
        self._inflight: set[tuple[int, int]] = set()
        self._video_waiting: dict[int, list[tuple[tuple[int, int], ThumbItem]]] = {}
        self._waiting_keys: set[tuple[int, int]] = set()
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="thumbs", initializer=_background_thread)
        self._closed = False
        self._lock = threading.Lock()
        self.stats: Counter = Counter()
        self.make_times: list[float] = []
        self._done.connect(self._on_done)
        self.frames = FrameGrabber(self)
        self.frames.grabbed.connect(self._on_frame)
        self._pump_scheduled = False

    # -- asking -----------------------------------------------------------------------------------

    def cached(self, image_id: int, size: int) -> QImage | None:
        image = self._memory.get((image_id, size))
        if image is not None:
            self._memory.move_to_end((image_id, size))
        return image

    def get(self, item: ThumbItem, size: int) -> QImage | None:
        """The thumbnail if it is in memory; otherwise None, and it is requested."""
        key = (item.id, int(size))
        image = self._memory.get(key)
        if image is not None:
            self._memory.move_to_end(key)
            self.stats["memory_hits"] += 1
            return image
        if item.id in self._failed or self._closed:
            return None
        if key not in self._inflight and key not in self._pending and key not in self._waiting_keys:
            self._pending[key] = item
            self._schedule_pump()
        return None

    def prefetch(self, items: list[ThumbItem], size: int) -> None:
        """Queue thumbnails that are about to scroll into view (after the visible ones)."""
        for item in items:
            key = (item.id, int(size))
            if (key in self._memory or key in self._pending or key in self._inflight or key in self._waiting_keys
                    or item.id in self._failed):
                continue
            self._pending[key] = item
        self._schedule_pump()

    def failure(self, image_id: int) -> str | None:
        return self._failed.get(image_id)

    def retain(self, image_ids: set[int]) -> None:
        """Drop queued requests for images not in `image_ids` (they scrolled away)."""
        if self._pending:
            dropped = [k for k in self._pending if k[0] not in image_ids]
            for key in dropped:
                del self._pending[key]
            self.stats["dropped"] += len(dropped)
        self.frames.retain(image_ids)
        for image_id in [i for i in self._video_waiting if i not in image_ids]:
            for key, _item in self._video_waiting.pop(image_id):
                self._waiting_keys.discard(key)

    def pending(self) -> int:
        return len(self._pending) + len(self._inflight)

    # -- invalidation -----------------------------------------------------------------------------

    def forget(self, image_id: int, *, disk: bool = True) -> None:
        """Drop an image's thumbnails from memory (and from the disk cache)."""
        for key in [k for k in self._memory if k[0] == image_id]:
            self._memory_bytes -= self._memory.pop(key).sizeInBytes()
        self._failed.pop(image_id, None)
        if disk:
            for bucket in BUCKETS:
                for fmt in ("webp", "jpeg"):
                    with contextlib.suppress(OSError):
                        thumb_cache_path(self.cache_dir, image_id, bucket, fmt).unlink(missing_ok=True)

    def clear_memory(self) -> None:
        self._memory.clear()
        self._memory_bytes = 0
        self._failed.clear()

    def memory_bytes(self) -> int:
        return self._memory_bytes

    def disk_bytes(self) -> int:
        total = 0
        for root, _dirs, files in os.walk(self.cache_dir):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(root, name)).st_size
        return total

    def clear_disk(self) -> None:
        """Delete the disk cache (regenerable; never touches downloads)."""
        self.clear_memory()
        if self.cache_dir.is_dir():
            for child in self.cache_dir.iterdir():
                if child.is_dir() and child.name.isdigit():
                    shutil.rmtree(child, ignore_errors=True)

    # -- work -------------------------------------------------------------------------------------

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            QTimer.singleShot(0, self._pump)

    @Slot()
    def _pump(self) -> None:
        self._pump_scheduled = False
        while self._pending and len(self._inflight) < self.workers and not self._closed:
            key, item = self._pending.popitem(last=False)
            self._inflight.add(key)
            self._executor.submit(self._work, key, item)

    def _work(self, key: tuple[int, int], item: ThumbItem) -> None:
        """Worker thread: disk cache hit, or make the disk thumbnail, then the display image."""
        started = time.perf_counter()
        try:
            result = self._make(key, item)
        except Exception as exc:  # a bad file must never kill the worker
            LOG.debug("thumbnail of %s failed", item.id, exc_info=True)
            result = _Result(key, None, "failed", str(exc) or type(exc).__name__)
        result.seconds = time.perf_counter() - started
        result.item = item
        if not self._closed:
            self._done.emit(result)

    def _make(self, key: tuple[int, int], item: ThumbItem) -> _Result:
        image_id, size = key
        bucket = bucket_for(size)
        disk = thumb_cache_path(self.cache_dir, image_id, bucket)
        status = "disk"
        if not disk.exists():
            if item.is_video:
                return _Result(key, None, "need-frame")
            source = _existing(item.path, item.alt_path)
            if source is None:
                return _Result(key, None, "failed", "file missing")
            try:
                make_thumbnail(source, disk, source_box(bucket, item.width, item.height))
            except UnsupportedMedia as exc:
                return _Result(key, None, "failed", str(exc))
            status = "made"
        reader = QImageReader(str(disk))
        image = read_cover(reader, size)
        if image.isNull():
            disk.unlink(missing_ok=True)  # a broken cache file is made again next time
            return _Result(key, None, "failed", reader.errorString() or "unreadable thumbnail")
        return _Result(key, image, status)

    def _save_frame(self, key: tuple[int, int], frame: QImage) -> None:
        """Worker thread: a video's first frame -> disk cache -> display image.

        The frame's pixels go to Pillow (which releases the GIL while it resizes and encodes),
        never through QImage.scaled() (holds the GIL) nor a QImageReader over a QBuffer made in
        Python: that buffer's virtual reads take the GIL inside a GIL-free read() that holds
        Qt's image-handler lock, and a worker holding the GIL while it waits for that lock
        deadlocks the two."""
        started = time.perf_counter()
        image_id, size = key
        bucket = bucket_for(size)
        disk = thumb_cache_path(self.cache_dir, image_id, bucket)
        try:
            pixels = _frame_to_pillow(frame)  # a view of the frame's memory (frame stays alive)
            box = source_box(bucket, pixels.width, pixels.height)
            scale = min(1.0, box[0] / pixels.width, box[1] / pixels.height)
            target = (max(1, round(pixels.width * scale)), max(1, round(pixels.height * scale)))
            small = pixels.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)
            if small.mode != "RGB":  # an RGBX-ordered frame is mapped as RGBX
                small = small.convert("RGB")
            disk.parent.mkdir(parents=True, exist_ok=True)
            tmp = disk.with_name(f".{disk.name}.{threading.get_ident()}.tmp")
            try:
                small.save(tmp, "WEBP", quality=82)
                os.replace(tmp, disk)
            finally:
                tmp.unlink(missing_ok=True)
            image = read_cover(QImageReader(str(disk)), size)
            result = (_Result(key, image, "frame") if not image.isNull()
                      else _Result(key, None, "failed", "unreadable thumbnail"))
        except Exception as exc:
            result = _Result(key, None, "failed", str(exc) or type(exc).__name__)
        result.seconds = time.perf_counter() - started
        if not self._closed:
            self._done.emit(result)

    @Slot(object)
    def _on_done(self, result: _Result) -> None:
        key = result.key
        image_id = key[0]
        self._inflight.discard(key)
        if result.status == "need-frame" and result.item is not None:
            # A video without a cached frame: the grabber (GUI thread) takes its first frame.
            waiting = self._video_waiting.setdefault(image_id, [])
            waiting.append((key, result.item))
            self._waiting_keys.add(key)
            source = _existing(result.item.path, result.item.alt_path)
            if source is None:
                self._on_frame(image_id, QImage(), "file missing")
            else:
                self.frames.request(image_id, source)
            self._pump()
            return
        self.stats[result.status] += 1
        if result.status in ("made", "frame"):
            self.make_times.append(result.seconds)
            del self.make_times[:-500]
        if result.image is not None:
            self._store(key, result.image)
            self.ready.emit(image_id)
        else:
            self._fail(image_id, result.error or "no thumbnail")
        self._pump()

    def _fail(self, image_id: int, reason: str) -> None:
        self._failed[image_id] = reason
        while len(self._failed) > MAX_FAILED:
            self._failed.popitem(last=False)
        self.stats["failed"] += 1
        self.failed.emit(image_id, reason)

    @Slot(int, QImage)
    def _on_frame(self, image_id: int, frame: QImage, reason: str = "no video frame") -> None:
        waiting = self._video_waiting.pop(image_id, [])
        for key, _item in waiting:
            self._waiting_keys.discard(key)
        if not waiting or self._closed:
            return
        if frame.isNull():
            self._fail(image_id, reason)
            return
        for key, _item in waiting:
            self._inflight.add(key)
            self._executor.submit(self._save_frame, key, frame)

    def _store(self, key: tuple[int, int], image: QImage) -> None:
        old = self._memory.pop(key, None)
        if old is not None:
            self._memory_bytes -= old.sizeInBytes()
        self._memory[key] = image
        self._memory_bytes += image.sizeInBytes()
        while self._memory_bytes > self.memory_budget and len(self._memory) > 1:
            _k, evicted = self._memory.popitem(last=False)
            self._memory_bytes -= evicted.sizeInBytes()
            self.stats["evicted"] += 1

    def close(self) -> None:
        self._closed = True
        self._pending.clear()
        self.frames.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


_LITTLE = sys.byteorder == "little"
# QImage formats of video frames -> Pillow raw modes (alpha ignored: frames are opaque)
_RAW_MODES = {
    QImage.Format.Format_RGB32: "BGRX" if _LITTLE else "XRGB",
    QImage.Format.Format_ARGB32: "BGRX" if _LITTLE else "XRGB",
    QImage.Format.Format_ARGB32_Premultiplied: "BGRX" if _LITTLE else "XRGB",
    QImage.Format.Format_RGBX8888: "RGBX",
    QImage.Format.Format_RGBA8888: "RGBX",
    QImage.Format.Format_RGBA8888_Premultiplied: "RGBX",
    QImage.Format.Format_RGB888: "RGB",
}


def _frame_to_pillow(frame: QImage) -> Image.Image:
    """A read-only RGB Pillow view of the frame's pixels (no copy for the usual formats)."""
    if frame.format() not in _RAW_MODES:
        frame = frame.convertToFormat(QImage.Format.Format_RGBX8888)
    raw = _RAW_MODES[frame.format()]
    return Image.frombuffer("RGB", (frame.width(), frame.height()), frame.constBits(), "raw", raw,
                            frame.bytesPerLine(), 1)


def _background_thread() -> None:
    """Thumbnail workers give way to the GUI thread when the cores are busy (a 2-core machine
    runs the GUI, the library reader and two workers). Linux only: there niceness is per thread;
    elsewhere setpriority would change the whole process."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)


def _existing(*paths: str | None) -> str | None:
    for path in paths:
        if path and os.path.isfile(path):
            return path
    return None
