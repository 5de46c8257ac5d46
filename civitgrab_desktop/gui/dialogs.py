"""Small dialogs: keyboard shortcuts, About, and the error dialog the exception hook shows."""

from __future__ import annotations

import html
import platform
import traceback

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from civitgrab_desktop import __version__
from civitgrab_desktop.core.config import mask_secrets
from civitgrab_desktop.gui import icons

# Shortcuts that are not menu actions (they live on a page).
EXTRA_SHORTCUTS = [
    ("Start the job of the current page", "Ctrl+Enter"),
    ("Start a download from the identifiers field", "Enter"),
    ("Switch mode in the mode selector", "Left / Right"),
]


def action_rows(actions: list[QAction]) -> list[tuple[str, str]]:
    rows = []
    seen = set()
    for action in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
        if not keys:
            continue
        text = action.text().replace("&", "").rstrip("…").strip()
        if (text, keys[0]) in seen:
            continue
        seen.add((text, keys[0]))
        rows.append((text, " or ".join(keys)))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, actions: list[QAction], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 520)
        layout = QVBoxLayout(self)
        rows = action_rows(actions) + [(t, k) for t, k in EXTRA_SHORTCUTS]
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        for i, (text, keys) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(text))
            self.table.setItem(i, 1, QTableWidgetItem(keys))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)

    def shortcut_texts(self) -> list[tuple[str, str]]:
        return [(self.table.item(i, 0).text(), self.table.item(i, 1).text()) for i in range(self.table.rowCount())]


def about_text(ctx) -> str:
    paths = ctx.services.paths
    return (
        f"<h3>civitgrab {__version__}</h3>"
        "<p>Downloads CivitAI images and videos at full resolution, fetches their community tags, "
        "converts them to WebP with metadata, and keeps track of everything in one library.</p>"
        f"<p><b>API base:</b> {ctx.api_base}<br>"
        f"<b>Data folder:</b> {paths.data_dir}<br>"
        f"<b>Log file:</b> {ctx.services.log_file or paths.logs}</p>"
        f"<p style='color:gray'>Python {platform.python_version()} · Qt {qVersion()} · PySide6 {pyside_version}<br>"
        "MIT licence. Not affiliated with Civitai.</p>"
    )


class AboutDialog(QDialog):
    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About civitgrab")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(20, 20, 20, 16)
        layout.setSpacing(18)
        logo = QLabel()
        logo.setPixmap(icons.app_icon().pixmap(96, 96))
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)
        layout.addWidget(logo)
        col = QVBoxLayout()
        self.text = QLabel(about_text(ctx))
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setMinimumWidth(380)
        col.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        col.addWidget(buttons)
        layout.addLayout(col)


class ErrorDialog(QMessageBox):
    """Shown (non-modally) by the exception hook: the app keeps running."""

    def __init__(self, exc_type, exc, tb, log_hint: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Critical)
        self.setWindowTitle("Something went wrong")
        name = getattr(exc_type, "__name__", str(exc_type))
        self.setText(f"<b>An unexpected error happened:</b><br>{html.escape(mask_secrets(f'{name}: {exc}'))}")
        self._info = "civitgrab keeps running; running jobs are not affected." + (
            f" The details are in the log ({log_hint})." if log_hint else ""
        )
        self.setInformativeText(self._info)
        self.setDetailedText(mask_secrets("".join(traceback.format_exception(exc_type, exc, tb))))
        self.setStandardButtons(QMessageBox.StandardButton.Ok)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.count = 1

    def add_repeat(self) -> None:
        self.count += 1
        self.setInformativeText(f"(This happened {self.count} times.) {self._info}")


def confirm(
    parent: QWidget,
    *,
    title: str,
    text: str,
    action: str,
    on_yes,
    detail: str = "",
    icon: QMessageBox.Icon = QMessageBox.Icon.Warning,
    destructive: bool = False,
    default_to_action: bool = False,
) -> QMessageBox:
    """Ask before an action, without blocking the event loop (`open()`, window-modal).

    `on_yes()` runs only when the user picks `action`; Escape, closing the box or Cancel do
    nothing. The default button is Cancel unless `default_to_action` (for harmless actions such
    as quitting), so Enter never removes files by accident. The box is returned so the caller
    can keep it alive (and tests can answer it).
    """
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Cancel, parent)
    if detail:
        box.setInformativeText(detail)
    role = QMessageBox.ButtonRole.DestructiveRole if destructive else QMessageBox.ButtonRole.AcceptRole
    yes = box.addButton(action, role)
    box.setDefaultButton(yes if default_to_action else box.button(QMessageBox.StandardButton.Cancel))

    def answered(_result: int) -> None:
        if box.clickedButton() is yes:
            on_yes()

    box.finished.connect(answered)
    box.open()
    return box
