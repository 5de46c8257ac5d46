"""Video in the gallery, all through QMediaPlayer + QVideoSink (never QVideoWidget, whose grab()
is empty): the first frame of a video for its thumbnail, the muted hover preview on a card, and
the playback guard that keeps at most one video playing at a time.

QtMultimedia is imported lazily: the gallery works (with video placeholders) where it is missing.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Protocol

import shiboken6
from PySide6.QtCore import QObject, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QImage

LOG = logging.getLogger(__name__)

_multimedia: Any = None
_multimedia_error: str | None = None


def multimedia():
    """The QtMultimedia module, or None when it cannot be loaded (e.g. no libpulse)."""
    global _multimedia, _multimedia_error
    if _multimedia is None and _multimedia_error is None:
        try:
            from PySide6 import QtMultimedia

            _multimedia = QtMultimedia
        except ImportError as exc:  # pragma: no cover - depends on the system
            _multimedia_error = str(exc)
            LOG.warning("QtMultimedia is unavailable (%s); videos show placeholders", exc)
    return _multimedia


class Playback(Protocol):
    def suspend(self) -> None: ...

    def resume(self) -> None: ...


def _alive(owner: Playback) -> bool:
    return not isinstance(owner, QObject) or shiboken6.isValid(owner)


class PlaybackGuard(QObject):
    """At most one video plays at a time: a player that starts suspends the one playing, which
    resumes when the newcomer stops (a hover preview over the detail pane's video).

    The guard is shared by every window of the process. An owner whose C++ object is gone (a
    closed window's paused detail pane) is dropped, never called."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._stack: list[Playback] = []

    def _prune(self) -> None:
        self._stack = [owner for owner in self._stack if _alive(owner)]

    def acquire(self, owner: Playback) -> None:
        self._prune()
        if self._stack and self._stack[-1] is owner:
            return
        if owner in self._stack:
            self._stack.remove(owner)
        if self._stack:
            self._call(self._stack[-1], "suspend")
        self._stack.append(owner)

    def release(self, owner: Playback) -> None:
        self._prune()
        if owner not in self._stack:
            return
        was_top = self._stack[-1] is owner
        self._stack.remove(owner)
        if was_top and self._stack:
            self._call(self._stack[-1], "resume")

    def active(self) -> Playback | None:
        self._prune()
        return self._stack[-1] if self._stack else None

    def _call(self, owner: Playback, name: str) -> None:
        try:
            getattr(owner, name)()
        except RuntimeError as exc:  # its player was deleted under it
            LOG.debug("playback owner gone: %s", exc)
            if owner in self._stack:
                self._stack.remove(owner)


_guard: PlaybackGuard | None = None


def playback_guard() -> PlaybackGuard:
    global _guard
    if _guard is None:
        _guard = PlaybackGuard()
    return _guard


class FrameGrabber(QObject):
    """First frames of videos, one at a time with one reused player: setSource, wait for
    LoadedMedia, pause() (not play: no audio, no running clock), take the first valid frame,
    then unload. Emits `grabbed(image_id, image)`; a null image means it failed (timeout,
    invalid media, no QtMultimedia)."""

    grabbed = Signal(int, QImage)

    def __init__(self, parent: QObject | None = None, *, timeout_ms: int = 6000):
        super().__init__(parent)
        self._queue: deque[tuple[int, str]] = deque()
        self._queued: set[int] = set()
        self._current: tuple[int, str] | None = None
        self._player = None
        self._sink = None
        self._started = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(timeout_ms)
        self._timer.timeout.connect(self._on_timeout)
        self.grab_times: deque[float] = deque(maxlen=50)

    def request(self, image_id: int, path: str) -> None:
        if image_id in self._queued or (self._current and self._current[0] == image_id):
            return
        self._queue.append((image_id, path))
        self._queued.add(image_id)
        if self._current is None:
            QTimer.singleShot(0, self._next)

    def retain(self, keep: set[int]) -> None:
        """Forget queued requests for images no longer wanted (scrolled away)."""
        if not self._queue:
            return
        kept = [(i, p) for i, p in self._queue if i in keep]
        self._queue = deque(kept)
        self._queued = {i for i, _ in kept}

    def pending(self) -> int:
        return len(self._queue) + (1 if self._current else 0)

    def _ensure_player(self) -> bool:
        if self._player is not None:
            return True
        mm = multimedia()
        if mm is None:
            return False
        self._player = mm.QMediaPlayer(self)
        self._sink = mm.QVideoSink(self)
        self._player.setVideoSink(self._sink)
        self._player.mediaStatusChanged.connect(self._on_status)
        self._player.errorOccurred.connect(self._on_error)
        self._sink.videoFrameChanged.connect(self._on_frame)
        return True

    @Slot()
    def _next(self) -> None:
        if self._current is not None or not self._queue:
            return
        image_id, path = self._queue.popleft()
        self._queued.discard(image_id)
        if not self._ensure_player():
            self.grabbed.emit(image_id, QImage())
            QTimer.singleShot(0, self._next)
            return
        self._current = (image_id, path)
        self._started = time.perf_counter()
        self._timer.start()
        self._player.setSource(QUrl.fromLocalFile(path))

    @Slot(object)
    def _on_status(self, status) -> None:
        if self._current is None:
            return
        mm = multimedia()
        status_enum = mm.QMediaPlayer.MediaStatus
        if status == status_enum.LoadedMedia:
            self._player.pause()
        elif status == status_enum.InvalidMedia:
            self._finish(QImage())

    @Slot(object, str)
    def _on_error(self, _error, text: str) -> None:
        if self._current is not None:
            LOG.debug("video frame of %s failed: %s", self._current[1], text)
            self._finish(QImage())

    @Slot(object)
    def _on_frame(self, frame) -> None:
        if self._current is None or not frame.isValid():
            return
        image = frame.toImage()
        if image.isNull():
            return
        self._finish(image.copy())

    @Slot()
    def _on_timeout(self) -> None:
        if self._current is not None:
            LOG.debug("no video frame from %s within the time limit", self._current[1])
            self._finish(QImage())

    def _finish(self, image: QImage) -> None:
        image_id, _path = self._current
        self._current = None
        self._timer.stop()
        self.grab_times.append(time.perf_counter() - self._started)
        if self._player is not None:
            self._player.stop()
            self._player.setSource(QUrl())
        self.grabbed.emit(image_id, image)
        QTimer.singleShot(0, self._next)

    def close(self) -> None:
        self._queue.clear()
        self._queued.clear()
        self._timer.stop()
        if self._player is not None:
            self._current = None
            self._player.stop()
            self._player.setSource(QUrl())


class HoverPreview(QObject):
    """Plays the hovered video card muted and looped into a QVideoSink; the delegate paints the
    latest frame. One player, reused; `start()` of another card stops the previous one."""

    frameReady = Signal(int)  # the image id whose preview frame changed
    started = Signal(int)
    stopped = Signal(int)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._player = None
        self._sink = None
        self.active_id: int | None = None
        self._frame = None  # the latest QVideoFrame
        self._image: QImage | None = None  # its conversion, made when painted
        self._image_of = None
        self._suspended = False
        self.frames_received = 0

    def _ensure_player(self) -> bool:
        if self._player is not None:
            return True
        mm = multimedia()
        if mm is None:
            return False
        self._player = mm.QMediaPlayer(self)
        self._sink = mm.QVideoSink(self)
        self._player.setVideoSink(self._sink)  # no audio output: the preview is muted
        self._player.setLoops(mm.QMediaPlayer.Loops.Infinite)
        self._player.errorOccurred.connect(self._on_error)
        self._sink.videoFrameChanged.connect(self._on_frame)
        return True

    def start(self, image_id: int, path: str) -> bool:
        if self.active_id == image_id:
            return True
        self.stop()
        if not path or not self._ensure_player():
            return False
        self.active_id = image_id
        self._frame = None
        self._image = None
        self._player.setSource(QUrl.fromLocalFile(path))
        playback_guard().acquire(self)
        self._player.play()
        self.started.emit(image_id)
        return True

    def stop(self) -> None:
        image_id = self.active_id
        if image_id is None:
            return
        self.active_id = None
        self._frame = None
        self._image = None
        if self._player is not None:
            self._player.stop()
            self._player.setSource(QUrl())
        playback_guard().release(self)
        self.stopped.emit(image_id)

    # PlaybackGuard
    def suspend(self) -> None:
        if self._player is not None and self.active_id is not None:
            self._suspended = True
            self._player.pause()

    def resume(self) -> None:
        if self._player is not None and self.active_id is not None and self._suspended:
            self._suspended = False
            self._player.play()

    def is_playing(self) -> bool:
        mm = multimedia()
        return bool(
            self._player is not None
            and self.active_id is not None
            and self._player.playbackState() == mm.QMediaPlayer.PlaybackState.PlayingState
        )

    def frame(self, image_id: int) -> QImage | None:
        """The current preview frame of `image_id` (converted on demand), or None."""
        if image_id != self.active_id or self._frame is None:
            return None
        if self._image_of is not self._frame:
            image = self._frame.toImage()
            self._image = None if image.isNull() else image
            self._image_of = self._frame
        return self._image

    @Slot(object)
    def _on_frame(self, frame) -> None:
        if self.active_id is None or not frame.isValid():
            return
        self.frames_received += 1
        self._frame = frame
        self.frameReady.emit(self.active_id)

    @Slot(object, str)
    def _on_error(self, _error, text: str) -> None:
        LOG.debug("hover preview failed: %s", text)
        self.stop()

    def close(self) -> None:
        self.stop()
