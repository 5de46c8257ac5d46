"""Both themes keep text readable where it sits on the accent: selections (palette Highlight /
HighlightedText), primary buttons and their hover state, checked boxes. WCAG AA: 4.5:1."""

from __future__ import annotations

import re

import pytest
from PySide6.QtGui import QColor, QPalette

from civitgrab_desktop.gui.theme import DARK, LIGHT, build_palette, build_stylesheet
from tests.gui.test_gallery_database import _contrast


@pytest.mark.parametrize("colors", [LIGHT, DARK], ids=["light", "dark"])
def test_text_on_the_accent_reads_at_4_5_to_1(qapp, colors):
    palette = build_palette(colors)
    text = palette.color(QPalette.ColorRole.HighlightedText)
    fill = palette.color(QPalette.ColorRole.Highlight)
    assert _contrast(text, fill) >= 4.5, (text.name(), fill.name())
    # the primary button, plain and hovered
    sheet = build_stylesheet(colors)
    primary = re.search(r"QPushButton#Primary \{\s*background: (#[0-9a-f]{6});\s*color: (#[0-9a-f]{6})", sheet)
    hover = re.search(r"QPushButton#Primary:hover \{ background: (#[0-9a-f]{6}); \}", sheet)
    assert primary and hover
    for background in (primary.group(1), hover.group(1)):
        assert _contrast(QColor(primary.group(2)), QColor(background)) >= 4.5, background
    # ordinary text on the window and on the base
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
        assert _contrast(palette.color(QPalette.ColorRole.Text), palette.color(role)) >= 7
