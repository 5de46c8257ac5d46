"""What the main window expects of a page.

A page is a QWidget with a title and an icon. The main window asks it for the widget Ctrl+F should
focus (`search_widget()`), hands it pasted/dropped text (`accept_text()`), and lets it save and
restore its splitter/table state (`save_state()` / `restore_state()`). The list of pages lives
above the pages, in `gui/pages.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QVBoxLayout, QWidget

from civitgrab_desktop.gui.widgets.common import MARGIN, SPACING, PageHeader

if TYPE_CHECKING:
    from civitgrab_desktop.gui.context import AppContext


class Page(QWidget):
    key = "page"
    title = "Page"
    subtitle = ""
    icon_name = "info"

    def __init__(self, ctx: AppContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.ctx = ctx
        self.root = QVBoxLayout(self)
        self.root.setContentsMargins(MARGIN, MARGIN - 4, MARGIN, MARGIN - 8)
        self.root.setSpacing(SPACING)
        self.header = PageHeader(self.title, self.subtitle)
        self.root.addWidget(self.header)

    def search_widget(self) -> QWidget | None:
        """The field Ctrl+F focuses on this page."""
        return None

    def accept_text(self, text: str) -> bool:
        """Pasted or dropped text (a CivitAI link); True when the page used it."""
        return False

    def save_state(self) -> dict[str, Any]:
        return {}

    def restore_state(self, state: dict[str, Any]) -> None:
        pass

    def activated(self) -> None:
        """The page became visible."""

    def shutdown(self) -> None:
        """The app is quitting: release players, timers and threads (jobs are stopped after)."""
