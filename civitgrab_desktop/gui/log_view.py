"""Recent log lines in the window: a logging.Handler keeps a bounded deque and signals new lines;
the view filters them by level and text and links to the log folder."""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop.core.config import SECRET_FILTER
from civitgrab_desktop.gui import icons

MAX_LINES = 5000
LEVELS = [("Debug", logging.DEBUG), ("Info", logging.INFO), ("Warnings", logging.WARNING), ("Errors", logging.ERROR)]


@dataclass(frozen=True)
class LogLine:
    seq: int
    level: int
    text: str


class _Emitter(QObject):
    line = Signal(object)  # LogLine


class TailHandler(logging.Handler):
    """Keeps the last `capacity` formatted records. Safe to call from any thread: the signal is
    delivered (queued) to receivers on the GUI thread."""

    def __init__(self, capacity: int = MAX_LINES, level: int = logging.DEBUG):
        super().__init__(level)
        self.lines: deque[LogLine] = deque(maxlen=capacity)
        self._seq = 0
        self.emitter = _Emitter()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
        self.addFilter(SECRET_FILTER)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._seq += 1
            line = LogLine(self._seq, record.levelno, self.format(record))
        except Exception:  # never let logging raise
            self.handleError(record)
            return
        self.lines.append(line)
        with contextlib.suppress(RuntimeError):  # the emitter was deleted at exit
            self.emitter.line.emit(line)


_handler: TailHandler | None = None


def install_tail_handler() -> TailHandler:
    """One handler on the root logger for the whole process."""
    global _handler
    if _handler is None:
        _handler = TailHandler()
        logging.getLogger().addHandler(_handler)
    return _handler


class LogView(QWidget):
    def __init__(self, handler: TailHandler, open_log_folder=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.handler = handler
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(6)
        bar = QHBoxLayout()
        self.level = QComboBox()
        for label, value in LEVELS:
            self.level.addItem(label, value)
        self.level.setCurrentIndex(1)
        self.level.setToolTip("Show lines at this level and above")
        self.level.currentIndexChanged.connect(self.refill)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter lines…")
        self.filter.setClearButtonEnabled(True)
        self.filter.addAction(icons.icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.filter.textChanged.connect(self.refill)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Clear the view (the log file keeps everything)")
        self.clear_button.clicked.connect(self._clear)
        bar.addWidget(self.level)
        bar.addWidget(self.filter, 1)
        bar.addWidget(self.clear_button)
        if open_log_folder is not None:
            self.open_button = QPushButton("Open log folder")
            icons.set_icon(self.open_button, "folder")
            self.open_button.clicked.connect(open_log_folder)
            bar.addWidget(self.open_button)
        layout.addLayout(bar)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.text.setFont(font)
        layout.addWidget(self.text, 1)
        self._cleared_after = 0  # seq of the last line cleared from the view
        handler.emitter.line.connect(self._append, Qt.ConnectionType.QueuedConnection)
        self.refill()

    def _visible(self, line: LogLine) -> bool:
        if line.level < (self.level.currentData() or 0):
            return False
        needle = self.filter.text().strip().lower()
        return not needle or needle in line.text.lower()

    def _format(self, line: LogLine) -> QTextCharFormat:
        fmt = QTextCharFormat()
        if line.level >= logging.ERROR:
            fmt.setForeground(QColor("#e5484d"))
        elif line.level >= logging.WARNING:
            fmt.setForeground(QColor("#d9822b"))
        return fmt

    def _write(self, line: LogLine) -> None:
        cursor = self.text.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not self.text.document().isEmpty():
            cursor.insertBlock()
        cursor.insertText(line.text, self._format(line))

    def _append(self, line: LogLine) -> None:
        if line.seq <= self._cleared_after or not self._visible(line):
            return
        bar = self.text.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        self._write(line)
        if at_end:
            bar.setValue(bar.maximum())

    def refill(self, *_args) -> None:
        self.text.clear()
        for line in list(self.handler.lines):
            if line.seq > self._cleared_after and self._visible(line):
                self._write(line)
        self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())

    def _clear(self) -> None:
        self._cleared_after = self.handler.lines[-1].seq if self.handler.lines else 0
        self.text.clear()

    def visible_text(self) -> str:
        return self.text.toPlainText()
