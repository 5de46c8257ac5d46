"""Light and dark themes on the Fusion style, following the system colour scheme by default.

`ThemeManager.apply(mode)` with mode "system" | "light" | "dark". In "system" mode the manager
listens to QStyleHints.colorSchemeChanged and switches with the OS. Widgets that draw their own
colours read `ThemeManager.colors` (a `Colors`) and listen to `changed`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from civitgrab_desktop.gui import icons

MODES = ("system", "light", "dark")


@dataclass(frozen=True)
class Colors:
    dark: bool
    window: str
    base: str
    alt_base: str
    surface: str  # cards
    sidebar: str
    text: str
    muted: str
    border: str
    accent: str
    accent_text: str
    accent_fill: str  # the accent behind accent_text (selections, primary buttons): >= 4.5:1
    accent_soft: str  # selection / chip background
    success: str
    warning: str
    danger: str
    tooltip: str


LIGHT = Colors(
    dark=False,
    window="#f4f5f9",
    base="#ffffff",
    alt_base="#f3f4f8",
    surface="#ffffff",
    sidebar="#eaecf3",
    text="#1c2030",
    muted="#5d6479",
    border="#d9dce6",
    accent="#5457e8",
    accent_text="#ffffff",
    accent_fill="#5457e8",
    accent_soft="#e0e1fd",
    success="#12805c",
    warning="#a35c00",
    danger="#c93636",
    tooltip="#1c2030",
)

DARK = Colors(
    dark=True,
    window="#1c1e26",
    base="#14151b",
    alt_base="#21232c",
    surface="#252732",
    sidebar="#17181f",
    text="#e7e9f0",
    muted="#a0a6b9",
    border="#363949",
    accent="#8083ff",  # bright enough for links and outlines on the dark background
    accent_text="#ffffff",
    accent_fill="#5558e6",  # white on #8083ff reads at 3.2:1; this is 5.4:1
    accent_soft="#323462",
    success="#3ccf95",
    warning="#f2b23c",
    danger="#f26b6b",
    tooltip="#2e3140",
)


def system_is_dark() -> bool:
    app = QGuiApplication.instance()
    if app is None:
        return False
    scheme = app.styleHints().colorScheme()
    return scheme == Qt.ColorScheme.Dark


def build_palette(c: Colors) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    group = QPalette.ColorGroup
    sets = {
        role.Window: c.window,
        role.WindowText: c.text,
        role.Base: c.base,
        role.AlternateBase: c.alt_base,
        role.ToolTipBase: c.tooltip,
        role.ToolTipText: "#ffffff" if not c.dark else c.text,
        role.PlaceholderText: c.muted,
        role.Text: c.text,
        role.Button: c.surface if c.dark else "#f7f8fb",
        role.ButtonText: c.text,
        role.BrightText: "#ffffff",
        role.Highlight: c.accent_fill,
        role.HighlightedText: c.accent_text,
        role.Link: c.accent,
        role.LinkVisited: c.accent,
        role.Light: "#3b3e4f" if c.dark else "#ffffff",
        role.Midlight: "#30333f" if c.dark else "#eceef3",
        role.Mid: "#2a2c37" if c.dark else "#c9ccd6",
        role.Dark: "#101116" if c.dark else "#a7abb8",
        role.Shadow: "#000000",
    }
    for r, value in sets.items():
        p.setColor(r, QColor(value))
    disabled_text = QColor(c.muted)
    disabled_text.setAlpha(150)
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(group.Disabled, r, disabled_text)
    p.setColor(group.Disabled, role.Highlight, QColor(c.border))
    if hasattr(role, "Accent"):
        p.setColor(role.Accent, QColor(c.accent))
    return p


def _check_mark_file(color: str) -> str:
    """A check mark SVG in `color`, written once to a cache folder (QSS needs a file)."""
    folder = Path(tempfile.gettempdir()) / f"civitgrab-style-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    path = folder / f"check-{color.lstrip('#')}.svg"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(
            '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">'
            f'<path d="M3.5 8.3l3 3 6-6.6" fill="none" stroke="{color}" stroke-width="2" '
            'stroke-linecap="round" stroke-linejoin="round"/></svg>',
            encoding="utf-8",
        )
    return path.as_posix()


def build_stylesheet(c: Colors) -> str:
    """Only what the palette cannot say: the sidebar, cards, chips, headers, primary buttons, and
    check boxes / radio buttons with a visible outline in both themes."""
    hover = "#2c2f3b" if c.dark else "#dfe2ec"
    primary_hover = "#6063ee" if c.dark else "#4346d6"
    strong = "#6f7489" if c.dark else "#9ba1b2"
    try:
        check = _check_mark_file(c.accent_text)
        check_rule = f'image: url("{check}");'
    except OSError:  # no writable temp folder: a filled box still reads as checked
        check_rule = ""
    return f"""
QCheckBox::indicator {{
    width: 14px; height: 14px; border: 1px solid {strong}; border-radius: 4px; background: {c.base};
}}
QCheckBox::indicator:hover {{ border-color: {c.accent}; }}
QCheckBox::indicator:checked {{ background: {c.accent_fill}; border-color: {c.accent_fill}; {check_rule} }}
QCheckBox::indicator:disabled {{ background: {c.alt_base}; border-color: {c.border}; }}
QCheckBox::indicator:checked:disabled {{ background: {c.border}; }}
QRadioButton::indicator {{
    width: 14px; height: 14px; border: 1px solid {strong}; border-radius: 8px; background: {c.base};
}}
QRadioButton::indicator:hover {{ border-color: {c.accent}; }}
QRadioButton::indicator:checked {{
    border: 1px solid {c.accent};
    background: qradialgradient(cx:0.5, cy:0.5, radius:0.5, fx:0.5, fy:0.5,
                                stop:0 {c.accent}, stop:0.42 {c.accent}, stop:0.52 {c.base}, stop:1 {c.base});
}}
QListWidget#Sidebar {{
    background: {c.sidebar};
    border: none;
    border-right: 1px solid {c.border};
    padding: 10px 8px;
    outline: 0;
}}
QListWidget#Sidebar::item {{
    color: {c.text};
    padding: 8px 10px;
    margin: 1px 0px;
    border-radius: 7px;
}}
QListWidget#Sidebar::item:hover {{ background: {hover}; }}
QListWidget#Sidebar::item:selected {{ background: {c.accent_soft}; color: {c.text}; }}
QLabel#SidebarBrand {{ font-size: 15px; font-weight: 600; color: {c.text}; padding: 2px 4px; }}
QWidget#SidebarPanel {{ background: {c.sidebar}; border-right: 1px solid {c.border}; }}
QLabel#PageTitle {{ font-size: 20px; font-weight: 600; color: {c.text}; }}
QLabel#PageSubtitle, QLabel#Muted {{ color: {c.muted}; }}
QLabel#SectionTitle {{ font-weight: 600; color: {c.text}; }}
QLabel#EmptyState {{ color: {c.muted}; font-size: 13px; padding: 24px; }}
QLabel#Hint {{ color: {c.muted}; font-size: 11px; }}
QLabel#Warning {{ color: {c.warning}; }}
QLabel#Error {{ color: {c.danger}; }}
QLabel#Success {{ color: {c.success}; }}
QFrame#Card, QFrame#JobCard {{
    background: {c.surface};
    border: 1px solid {c.border};
    border-radius: 10px;
}}
QDialogButtonBox {{ dialogbuttonbox-buttons-have-icons: 0; }}
QLabel#JobTitle {{ font-weight: 600; font-size: 13px; }}
QLabel#Chip {{
    border-radius: 9px;
    padding: 2px 9px;
    font-size: 11px;
    font-weight: 600;
    background: {c.accent_soft};
    color: {c.text};
}}
QLabel#Chip[tone="success"] {{ color: {c.success}; }}
QLabel#Chip[tone="warning"] {{ color: {c.warning}; }}
QLabel#Chip[tone="danger"] {{ color: {c.danger}; }}
QLabel#Chip[tone="muted"] {{ color: {c.muted}; }}
QPushButton#Primary {{
    background: {c.accent_fill};
    color: {c.accent_text};
    border: 1px solid {c.accent_fill};
    border-radius: 6px;
    padding: 6px 18px;
    font-weight: 600;
}}
QPushButton#Primary:hover {{ background: {primary_hover}; }}
QPushButton#Primary:disabled {{ background: {c.border}; border-color: {c.border}; color: {c.muted}; }}
QPushButton#Segment {{
    border: 1px solid {c.border};
    border-radius: 0px;
    padding: 5px 14px;
    background: {c.base};
}}
QPushButton#Segment[first="true"] {{ border-top-left-radius: 6px; border-bottom-left-radius: 6px; }}
QPushButton#Segment[last="true"] {{ border-top-right-radius: 6px; border-bottom-right-radius: 6px; }}
QPushButton#Segment:checked {{ background: {c.accent_soft}; border-color: {c.accent}; color: {c.text}; }}
QPushButton#Segment:focus {{ border-color: {c.accent}; }}
QScrollArea#JobScroll, QWidget#JobListBody {{ background: transparent; border: none; }}
QProgressBar {{
    border: 1px solid {c.border};
    border-radius: 5px;
    background: {c.alt_base};
    text-align: center;
    min-height: 10px;
    max-height: 10px;
}}
QProgressBar::chunk {{ background: {c.accent}; border-radius: 4px; }}
QProgressBar#StatusProgress {{ min-height: 8px; max-height: 8px; }}
QStatusBar {{ border-top: 1px solid {c.border}; }}
QStatusBar::item {{ border: none; }}
QToolTip {{ color: {"#ffffff" if not c.dark else c.text}; background: {c.tooltip}; border: 1px solid {c.border}; padding: 4px; }}
"""


class ThemeManager(QObject):
    changed = Signal(object)  # Colors

    def __init__(self, app: QApplication, parent: QObject | None = None):
        super().__init__(parent)
        self._app = app
        self.mode = "system"
        self.colors = LIGHT
        self._listening = False

    def apply(self, mode: str) -> Colors:
        if mode not in MODES:
            mode = "system"
        self.mode = mode
        styles = [name.lower() for name in QStyleFactory.keys()]  # noqa: SIM118 - a Qt call, not a dict
        if "fusion" in styles and self._app.style().name().lower() != "fusion":
            self._app.setStyle("Fusion")
        hints = self._app.styleHints()
        if mode == "system":
            if not self._listening:
                hints.colorSchemeChanged.connect(self._on_system_scheme)
                self._listening = True
            dark = system_is_dark()
        else:
            dark = mode == "dark"
        self._set(DARK if dark else LIGHT)
        return self.colors

    def _on_system_scheme(self, _scheme) -> None:
        if self.mode == "system":
            self._set(DARK if system_is_dark() else LIGHT)

    def _set(self, colors: Colors) -> None:
        self.colors = colors
        self._app.setPalette(build_palette(colors))
        self._app.setStyleSheet(build_stylesheet(colors))
        icons.clear_cache()
        icons.refresh()
        self.changed.emit(colors)
