"""Quick preview: a frameless overlay over the window showing one image full size (or playing
the video). Space or Esc closes it; Left/Right step through the grid; Enter opens the file."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QPainter
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from civitgrab_desktop.gui.gallery.media_view import MediaView


class QuickPreview(QDialog):
    stepRequested = Signal(int)  # -1 previous, +1 next
    openRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.FramelessWindowHint | Qt.WindowType.Dialog)
        self.setObjectName("QuickPreview")
        self.setModal(False)
        self.image_id: int | None = None
        col = QVBoxLayout(self)
        col.setContentsMargins(28, 24, 28, 16)
        col.setSpacing(10)
        self.media = MediaView(self, dark=True, radius=6)
        col.addWidget(self.media, 1)
        self.caption = QLabel("")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setStyleSheet("color: #e7e9f0;")
        col.addWidget(self.caption)
        hint = QLabel("Space or Esc to close · ← → previous / next · Enter opens the file")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setStyleSheet("color: #a0a6b9; font-size: 11px;")
        col.addWidget(hint)

    def show_item(self, image_id: int, path: str | None, is_video: bool, caption: str = "",
                  poster: QImage | None = None) -> None:
        self.image_id = image_id
        self.caption.setText(caption)
        if is_video:
            self.media.show_video(path, poster)
        else:
            self.media.show_image(path, poster)

    def popup(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            window = parent.window()
            self.setGeometry(window.geometry())
        self.show()
        self.raise_()
        self.activateWindow()
        self.setFocus()

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(10, 11, 15, 236))
        painter.end()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_Escape, Qt.Key.Key_Space):
            self.close()
            return
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Up):
            self.stepRequested.emit(-1)
            return
        if key in (Qt.Key.Key_Right, Qt.Key.Key_Down):
            self.stepRequested.emit(1)
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.image_id is not None:
            self.openRequested.emit(self.image_id)
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if not self.media.geometry().contains(event.position().toPoint()):
            self.close()
            return
        super().mousePressEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.media.clear()
        super().closeEvent(event)
