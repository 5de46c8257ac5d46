"""The main window's pages, in sidebar order (Ctrl+1..6).

It sits above the pages it lists (they import `widgets/page.py`, never this module), so the list
and the pages form no import loop. Swap a factory to replace a page (tests, the self-test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from civitgrab_desktop.gui.context import AppContext
from civitgrab_desktop.gui.gallery.page import gallery_page
from civitgrab_desktop.gui.panels.convert import ConvertPage
from civitgrab_desktop.gui.panels.database import database_page
from civitgrab_desktop.gui.panels.download import DownloadPage
from civitgrab_desktop.gui.panels.queries import QueriesPage
from civitgrab_desktop.gui.panels.tags import TagsPage
from civitgrab_desktop.gui.widgets.page import Page


@dataclass
class PageSpec:
    key: str
    title: str
    icon_name: str
    factory: Callable[[AppContext], Page]
    shortcut: str = ""


def default_pages() -> list[PageSpec]:
    """The pages, in sidebar order (Ctrl+1..6). Swap a factory to replace a page."""
    return [
        PageSpec("download", "Browse & Download", "download", DownloadPage),
        PageSpec("tags", "Tag Scraper", "tag", TagsPage),
        PageSpec("convert", "Converter", "convert", ConvertPage),
        PageSpec("gallery", "Gallery", "gallery", gallery_page),
        PageSpec("database", "Database", "database", database_page),
        PageSpec("queries", "Saved queries", "retry", QueriesPage),
    ]
