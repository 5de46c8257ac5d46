"""A widget that shows one image (read scaled, in a worker thread) or plays one video (muted,
looped: QMediaPlayer into a QVideoSink whose frames this widget paints; grab() works, unlike
QVideoWidget). Used by the detail pane and the quick preview. Click a video to pause or play it.
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QColor, QImage, QImageReader, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.gallery.video import multimedia, playback_guard
from civitgrab_desktop.gui.util import spawn

LOG = logging.getLogger(__name__)

MAX_DECODE = 2560


def read_scaled(path: str, box: QSize) -> QImage:
    """Worker thread: the image at `path`, EXIF-rotated, scaled down to fit `box`."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and (size.width() > box.width() or size.height() > box.height()):
        reader.setScaledSize(size.scaled(box, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        LOG.debug("cannot read %s: %s", path, reader.errorString())
    return image


class MediaView(QWidget):
    frameShown = Signal()  # a video frame arrived
    loaded = Signal(bool)  # the image (or first video frame) is shown; False when it failed

    def __init__(self, parent: QWidget | None = None, *, dark: bool = False, radius: int = 8):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)
        self._dark = dark
        self._radius = radius
        self._image: QImage | None = None  # the still image, or the poster of a video
        self._scaled: QPixmap | None = None
        self._path: str | None = None
        self._is_video = False
        self._token = 0
        self._player = None
        self._sink = None
        self._frame = None
        self._frame_image: QImage | None = None
        self._frame_of = None
        self._suspended = False
        self._paused_by_user = False
        self.frames_received = 0
        self.message = ""
        self.setCursor(Qt.CursorShape.ArrowCursor)

    # -- content ----------------------------------------------------------------------------------

    @property
    def path(self) -> str | None:
        return self._path

    @property
    def is_video(self) -> bool:
        return self._is_video

    def clear(self, message: str = "") -> None:
        self._stop_video()
        self._token += 1
        self._path = None
        self._is_video = False
        self._image = None
        self._scaled = None
        self.message = message
        self.update()

    def show_image(self, path: str | None, poster: QImage | None = None) -> None:
        self.clear()
        self._path = path
        self._image = poster if poster is not None and not poster.isNull() else None
        if not path:
            self.message = "No file"
            return
        self.message = "Loading…"
        token = self._token
        spawn(self._load(path, token), name="media-view-load")

    async def _load(self, path: str, token: int) -> None:
        dpr = max(1.0, self.devicePixelRatioF())
        w = min(MAX_DECODE, max(1024, int(self.width() * dpr)))
        h = min(MAX_DECODE, max(1024, int(self.height() * dpr)))
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(None, read_scaled, path, QSize(w, h))
        if token != self._token:
            return
        if image.isNull():
            self.message = "Cannot show this file"
            self.loaded.emit(False)
        else:
            self._image = image
            self._scaled = None
            self.message = ""
            self.loaded.emit(True)
        self.update()

    def show_video(self, path: str | None, poster: QImage | None = None, *, autoplay: bool = True) -> bool:
        self.clear()
        self._path = path
        self._is_video = True
        self._image = poster if poster is not None and not poster.isNull() else None
        mm = multimedia()
        if not path or mm is None:
            self.message = "Cannot play this video" if path else "No file"
            return False
        if self._player is None:
            self._player = mm.QMediaPlayer(self)
            self._sink = mm.QVideoSink(self)
            self._player.setVideoSink(self._sink)  # no audio output: muted
            self._player.setLoops(mm.QMediaPlayer.Loops.Infinite)
            self._sink.videoFrameChanged.connect(self._on_frame)
            self._player.errorOccurred.connect(self._on_error)
        self._paused_by_user = not autoplay
        self._player.setSource(QUrl.fromLocalFile(path))
        if autoplay:
            playback_guard().acquire(self)
            self._player.play()
        else:
            self._player.pause()
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        return True

    def _stop_video(self) -> None:
        if self._player is not None:
            self._player.stop()
            self._player.setSource(QUrl())
        playback_guard().release(self)
        self._frame = None
        self._frame_image = None
        self._suspended = False
        self.setCursor(Qt.CursorShape.ArrowCursor)

    def is_playing(self) -> bool:
        mm = multimedia()
        return bool(
            self._player is not None
            and mm is not None
            and self._player.playbackState() == mm.QMediaPlayer.PlaybackState.PlayingState
        )

    def toggle_play(self) -> None:
        if not self._is_video or self._player is None:
            return
        if self.is_playing():
            self._paused_by_user = True
            self._player.pause()
            playback_guard().release(self)
        else:
            self._paused_by_user = False
            playback_guard().acquire(self)
            self._player.play()
        self.update()

    # PlaybackGuard
    def suspend(self) -> None:
        if self.is_playing():
            self._suspended = True
            self._player.pause()

    def resume(self) -> None:
        if self._suspended and self._player is not None and not self._paused_by_user:
            self._suspended = False
            self._player.play()

    @Slot(object)
    def _on_frame(self, frame) -> None:
        if not self._is_video or not frame.isValid():
            return
        self.frames_received += 1
        first = self._frame is None
        self._frame = frame
        if first:
            self.message = ""
            self.loaded.emit(True)
        self.frameShown.emit()
        self.update()

    @Slot(object, str)
    def _on_error(self, _error, text: str) -> None:
        self.message = f"Cannot play this video: {text}" if text else "Cannot play this video"
        self.loaded.emit(False)
        self.update()

    def current_image(self) -> QImage | None:
        """What is shown: the latest video frame, else the image (or poster)."""
        if self._frame is not None:
            if self._frame_of is not self._frame:
                image = self._frame.toImage()
                self._frame_image = None if image.isNull() else image
                self._frame_of = self._frame
            if self._frame_image is not None:
                return self._frame_image
        return self._image

    # -- painting ---------------------------------------------------------------------------------

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        rect = self.rect()
        path = QPainterPath()
        path.addRoundedRect(QRectF(rect), self._radius, self._radius)
        background = QColor("#0d0e12") if self._dark else self.palette().color(QPalette.ColorRole.AlternateBase)
        painter.fillPath(path, background)
        painter.setClipPath(path)
        image = self.current_image()
        if image is not None and not image.isNull():
            target = _fit(image.size(), rect)
            if self._frame is None and image is self._image:
                if self._scaled is None or self._scaled.size() != target.size():
                    dpr = self.devicePixelRatioF()
                    pm = QPixmap.fromImage(
                        image.scaled(target.size() * dpr, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)
                    )
                    pm.setDevicePixelRatio(dpr)
                    self._scaled = pm
                painter.drawPixmap(target.topLeft(), self._scaled)
            else:
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                painter.drawImage(target, image)
        elif self.message:
            colour = QColor("#a0a6b9") if self._dark else self.palette().color(QPalette.ColorRole.PlaceholderText)
            painter.setPen(colour)
            painter.drawText(rect.adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.message)
        if self._is_video and self._player is not None and not self.is_playing() and self._paused_by_user:
            size = 44
            centre = QPointF(rect.center())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 140))
            painter.drawEllipse(centre, size / 2 + 8, size / 2 + 8)
            painter.drawPixmap(int(centre.x() - size / 2 + 3), int(centre.y() - size / 2),
                               icons.pixmap("play", size, "#ffffff"))
        painter.end()

    def resizeEvent(self, event) -> None:  # noqa: N802
        self._scaled = None
        super().resizeEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self._is_video:
            self.toggle_play()
        super().mouseReleaseEvent(event)

    def hideEvent(self, event) -> None:  # noqa: N802
        if self.is_playing():
            self._suspended = True
            self._player.pause()
        super().hideEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._suspended and not self._paused_by_user and self._player is not None:
            self._suspended = False
            self._player.play()

    def close_media(self) -> None:
        self.clear()


def _fit(size: QSize, rect: QRect) -> QRect:
    scaled = size.scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = rect.x() + (rect.width() - scaled.width()) // 2
    y = rect.y() + (rect.height() - scaled.height()) // 2
    return QRect(x, y, scaled.width(), scaled.height())
