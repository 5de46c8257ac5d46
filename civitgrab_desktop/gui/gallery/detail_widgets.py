"""The detail pane's building blocks: labels that wrap to the height their text needs (and file
paths that wrap at their separators), section titles, chips, the NSFW chip, the muted "where
this came from" line. Text from the service or a file is always plain text, never rich text.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFormLayout, QLabel, QSizePolicy

from civitgrab_desktop.gui.gallery import actions
from civitgrab_desktop.gui.gallery.query import NSFW_COLOUR, nsfw_label


class WrapLabel(QLabel):
    """A word-wrapped label that asks for the height its text needs at its width. (The form
    layouts of the pane, inside the scroll area, would otherwise give a field the height of its
    one-line size hint and clip a wrapped path or URL.)"""

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.wordWrap():
            height = self.heightForWidth(self.width())
            if height > 0 and height != self.minimumHeight():
                self.setMinimumHeight(height)


def value_label(text: str = "", *, wrap: bool = True) -> QLabel:
    label = WrapLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # prompts and names come from the service and files
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return label


class PathLabel(WrapLabel):
    """A file path that wraps at its separators, so a long folder or file name never widens
    the pane. The text shown holds zero-width break points; `path()` is the real path, which
    the tooltip shows and the context menu's "Copy path" copies (mouse selection is off: it
    would copy the break points too)."""

    BREAK_AFTER = "/\\_-."

    def __init__(self, path: str = ""):
        super().__init__()
        self._path = ""
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        copy = QAction("Copy path", self)
        copy.triggered.connect(lambda: actions.copy_text(self._path))
        self.addAction(copy)
        self.set_path(path)

    def set_path(self, path: str) -> None:
        self._path = path
        self.setToolTip(path)
        self.setText("".join(ch + ("\u200b" if ch in self.BREAK_AFTER else "") for ch in path))

    def path(self) -> str:
        return self._path


def section_label(title: str) -> QLabel:
    label = QLabel(title)
    label.setObjectName("SectionTitle")
    label.setContentsMargins(0, 8, 0, 0)
    return label


def chip_label(text: str, tip: str = "", tone: str = "") -> QLabel:
    chip = QLabel(text)
    chip.setObjectName("Chip")
    if tone:
        chip.setProperty("tone", tone)
    if tip:
        chip.setToolTip(tip)
    return chip


def nsfw_chip(level: int) -> QLabel:
    text = nsfw_label(level)
    chip = QLabel(text)
    chip.setObjectName("NsfwChip")
    colour = NSFW_COLOUR.get(int(level or 0), "#6b7080")
    chip.setStyleSheet(
        f"QLabel#NsfwChip {{ background: {colour}; color: #ffffff; border-radius: 9px; padding: 2px 9px;"
        " font-size: 11px; font-weight: 600; }"
    )
    chip.setToolTip(f"NSFW level {level}")
    return chip


def source_label() -> QLabel:
    label = QLabel("")
    label.setObjectName("Muted")
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setStyleSheet("font-size: 11px;")
    label.hide()
    return label


def clear_form(form: QFormLayout) -> None:
    while form.rowCount():
        form.removeRow(0)
