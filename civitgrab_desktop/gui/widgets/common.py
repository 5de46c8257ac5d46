"""Reusable building blocks: page header, segmented control, folder picker, collapsible box."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop.gui import icons

SPACING = 12
MARGIN = 20


class PageHeader(QWidget):
    def __init__(self, title: str, subtitle: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.title = QLabel(title)
        self.title.setObjectName("PageTitle")
        self.subtitle = QLabel(subtitle)
        self.subtitle.setObjectName("PageSubtitle")
        self.subtitle.setWordWrap(True)
        layout.addWidget(self.title)
        if subtitle:
            layout.addWidget(self.subtitle)


class Card(QFrame):
    """A rounded surface holding a form or a list."""

    def __init__(self, parent: QWidget | None = None, *, margins: int = 16):
        super().__init__(parent)
        self.setObjectName("Card")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(margins, margins - 2, margins, margins)
        self.body.setSpacing(10)


def section_title(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("SectionTitle")
    return label


def hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("Hint")
    label.setWordWrap(True)
    return label


class SegmentedControl(QWidget):
    """Exclusive choice shown as joined toggle buttons; keyboard: Tab to focus, arrows to move."""

    changed = Signal(object)  # the chosen value

    def __init__(self, options: list[tuple[object, str, str]], parent: QWidget | None = None):
        """options: (value, label, tooltip)."""
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._values: list[object] = []
        self.buttons: list[QPushButton] = []
        for i, (value, label, tip) in enumerate(options):
            button = QPushButton(label)
            button.setObjectName("Segment")
            button.setCheckable(True)
            button.setToolTip(tip)
            button.setProperty("first", i == 0)
            button.setProperty("last", i == len(options) - 1)
            button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            button.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            self._group.addButton(button, i)
            self._values.append(value)
            self.buttons.append(button)
            layout.addWidget(button)
        layout.addStretch(1)
        if self.buttons:
            self.buttons[0].setChecked(True)
        self._group.idClicked.connect(lambda i: self.changed.emit(self._values[i]))

    def value(self) -> object:
        i = self._group.checkedId()
        return self._values[i] if i >= 0 else None

    def set_value(self, value: object, *, notify: bool = True) -> None:
        if value in self._values:
            i = self._values.index(value)
            if self._group.checkedId() != i:
                self.buttons[i].setChecked(True)
                if notify:
                    self.changed.emit(value)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        i = self._group.checkedId()
        if event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Right) and self._values:
            step = -1 if event.key() == Qt.Key.Key_Left else 1
            j = max(0, min(len(self._values) - 1, i + step))
            self.set_value(self._values[j])
            self.buttons[j].setFocus()
            return
        super().keyPressEvent(event)


class FolderPicker(QWidget):
    """A path field with a Browse… button (non-modal dialog: no nested event loop)."""

    changed = Signal(str)

    def __init__(self, caption: str = "Choose a folder", parent: QWidget | None = None):
        super().__init__(parent)
        self._caption = caption
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.edit = QLineEdit()
        self.edit.setClearButtonEnabled(True)
        self.edit.textChanged.connect(self.changed)
        self.button = QPushButton("Browse…")
        icons.set_icon(self.button, "folder")
        self.button.setToolTip("Choose the folder in a dialog")
        self.button.clicked.connect(self._browse)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.button)
        self._dialog: QFileDialog | None = None

    def path(self) -> str:
        return self.edit.text().strip()

    def set_path(self, path: str) -> None:
        self.edit.setText(path)

    def _browse(self) -> None:
        dialog = QFileDialog(self, self._caption, self.path())
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.set_path)
        dialog.finished.connect(dialog.deleteLater)
        self._dialog = dialog
        dialog.open()


class Collapsible(QWidget):
    """A header button that shows/hides a body widget."""

    toggled = Signal(bool)

    def __init__(self, title: str, body: QWidget, parent: QWidget | None = None, *, expanded: bool = False):
        super().__init__(parent)
        self.header = QToolButton()
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.body = body
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.header, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(body)
        self.header.toggled.connect(self._update)
        self._update(expanded)

    def _update(self, expanded: bool) -> None:
        icons.set_icon(self.header, "chevron-down" if expanded else "chevron-right")
        self.body.setVisible(expanded)
        self.toggled.emit(expanded)

    def set_expanded(self, expanded: bool) -> None:
        self.header.setChecked(expanded)
