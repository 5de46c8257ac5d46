"""The status bar's job indicator: "2 jobs running · 45 %" with an aggregate progress bar."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from civitgrab_desktop.gui.util import plural


class JobsIndicator(QWidget):
    """Status bar: "2 jobs running · 45 %" with an aggregate progress bar; click to see them."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 0, 6, 0)
        row.setSpacing(8)
        self.label = QLabel("No jobs running")
        self.label.setObjectName("Muted")
        self.bar = QProgressBar()
        self.bar.setObjectName("StatusProgress")
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(140)
        self.bar.hide()
        row.addWidget(self.label)
        row.addWidget(self.bar)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Running jobs; click to show them")

    def update_counts(self, active: int, done: int, total: int) -> None:
        if not active:
            self.label.setText("No jobs running")
            self.bar.hide()
            return
        text = f"{plural(active, 'job')} running"
        if total:
            pct = int(100 * done / total) if total else 0
            text += f" · {pct} %"
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        else:
            self.bar.setRange(0, 0)
        self.label.setText(text)
        self.bar.show()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.clicked.emit()
        super().mousePressEvent(event)
