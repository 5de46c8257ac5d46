"""Placeholder pages for the Gallery and the Database view (built separately; they replace the
factories `gallery_page` / `database_page` in panels.base.default_pages)."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from civitgrab_desktop.gui import icons
from civitgrab_desktop.gui.panels.base import Page
from civitgrab_desktop.gui.util import human_bytes, open_folder, spawn

LOG = logging.getLogger(__name__)


class PlaceholderPage(Page):
    empty_title = ""
    empty_text = ""

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the library (prompt, user, model)…")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icons.icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.search.setEnabled(False)
        self.search.setToolTip("Search arrives with this page")
        self.root.addWidget(self.search)

        box = QWidget()
        col = QVBoxLayout(box)
        col.setSpacing(10)
        col.addStretch(1)
        art = QLabel()
        icons.set_pixmap(art, self.icon_name, 56, "muted")
        art.setAlignment(Qt.AlignmentFlag.AlignCenter)
        col.addWidget(art)
        heading = QLabel(self.empty_title)
        heading.setObjectName("SectionTitle")
        heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        col.addWidget(heading)
        text = QLabel(self.empty_text)
        text.setObjectName("Muted")
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setWordWrap(True)
        col.addWidget(text)
        self.stats = QLabel("")
        self.stats.setObjectName("Muted")
        self.stats.setAlignment(Qt.AlignmentFlag.AlignCenter)
        col.addWidget(self.stats)
        row = QHBoxLayout()
        row.addStretch(1)
        self.action = QPushButton()
        row.addWidget(self.action)
        row.addStretch(1)
        col.addLayout(row)
        col.addStretch(2)
        self.root.addWidget(box, 1)

    def search_widget(self) -> QWidget:
        return self.search

    def activated(self) -> None:
        spawn(self._refresh(), name=f"{self.key}-stats")

    async def _refresh(self) -> None:
        try:
            library = await self.ctx.library()
            stats = await library.reader().stats()
        except Exception as exc:
            LOG.debug("library stats unavailable: %s", exc)
            return
        self.stats.setText(self.describe(stats))

    def describe(self, stats: dict[str, Any]) -> str:
        downloaded = (stats.get("dl_state") or {}).get("done", 0)
        return (
            f"Your library: {downloaded:,} files on disk ({stats.get('videos', 0):,} videos), "
            f"{human_bytes(stats.get('bytes', 0))}"
        )


class GalleryPlaceholder(PlaceholderPage):
    key = "gallery"
    title = "Gallery"
    subtitle = "Browse your collection."
    icon_name = "gallery"
    empty_title = "The gallery is on its way"
    empty_text = "Thumbnails, video previews and a detail pane will appear here."

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        self.action.setText("Open download folder")
        icons.set_icon(self.action, "folder")
        self.action.clicked.connect(lambda: open_folder(ctx.default_output_dir()))


class DatabasePlaceholder(PlaceholderPage):
    key = "database"
    title = "Database"
    subtitle = "Every tracked image, its tags and conversion state."
    icon_name = "database"
    empty_title = "The database view is on its way"
    empty_text = "A searchable table of every image with CSV export will appear here."

    def __init__(self, ctx, parent: QWidget | None = None):
        super().__init__(ctx, parent)
        self.action.setText("Open data folder")
        icons.set_icon(self.action, "folder")
        self.action.clicked.connect(lambda: open_folder(ctx.services.paths.data_dir))

    def describe(self, stats: dict[str, Any]) -> str:
        tags = (stats.get("tag_state") or {}).get("done", 0)
        return super().describe(stats) + f" · {tags:,} tagged · {stats.get('conversions', 0):,} converted"


def gallery_page(ctx) -> Page:
    return GalleryPlaceholder(ctx)


def database_page(ctx) -> Page:
    return DatabasePlaceholder(ctx)
