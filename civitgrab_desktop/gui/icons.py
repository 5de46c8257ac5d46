"""Small UI icons: single-colour SVGs (stroke="currentColor") tinted to the palette.

Icons are cached per (name, colour); `clear_cache()` after a theme change so new icons pick up the
new text colour. A missing resources folder gives empty icons, never an error.
"""

from __future__ import annotations

import weakref
from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

from civitgrab_desktop.gui.resources import resource_path

_SIZES = (16, 20, 24, 32, 48)


@lru_cache(maxsize=64)
def _svg_text(name: str) -> str | None:
    path = resource_path("icons", f"{name}.svg")
    if path is None:
        return None
    return path.read_text(encoding="utf-8")


def _render(svg: str, size: int, dpr: float) -> QPixmap:
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    px = max(1, round(size * dpr))
    image = QImage(px, px, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, px, px))
    painter.end()
    pixmap = QPixmap.fromImage(image)
    pixmap.setDevicePixelRatio(dpr)
    return pixmap


_cache: dict[tuple[str, str, str], QIcon] = {}


def _palette() -> QPalette:
    app = QGuiApplication.instance()
    return app.palette() if app is not None else QPalette()


def _resolve(color: QColor | str | None, palette: QPalette) -> QColor:
    if color is None:
        return palette.color(QPalette.ColorRole.WindowText)
    if color == "muted":
        return palette.color(QPalette.ColorRole.PlaceholderText)
    if color == "accent":
        return palette.color(QPalette.ColorRole.Highlight)
    return QColor(color)


def icon(name: str, color: QColor | str | None = None, *, disabled: QColor | str | None = None) -> QIcon:
    """The icon `name` in `color`: None (the palette's text colour), "muted", "accent" or a colour."""
    palette = _palette()
    normal = _resolve(color, palette)
    off = QColor(disabled) if disabled is not None else palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
    key = (name, normal.name(QColor.NameFormat.HexArgb), off.name(QColor.NameFormat.HexArgb))
    cached = _cache.get(key)
    if cached is not None:
        return cached
    svg = _svg_text(name)
    result = QIcon()
    if svg is not None:
        app = QGuiApplication.instance()
        dpr = app.devicePixelRatio() if app is not None else 1.0
        dpr = max(1.0, dpr)
        for mode, colour in ((QIcon.Mode.Normal, normal), (QIcon.Mode.Active, normal), (QIcon.Mode.Selected, normal),
                             (QIcon.Mode.Disabled, off)):
            tinted = svg.replace("currentColor", colour.name())
            for size in _SIZES:
                result.addPixmap(_render(tinted, size, dpr), mode)
    _cache[key] = result
    return result


def pixmap(name: str, size: int, color: QColor | str | None = None) -> QPixmap:
    return icon(name, color).pixmap(QSize(size, size))


def app_icon() -> QIcon:
    result = QIcon()
    svg = resource_path("app", "civitgrab.svg")
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        png = resource_path("app", f"civitgrab-{size}.png")
        if png is not None:
            result.addFile(str(png), QSize(size, size))
    if result.isNull() and svg is not None:
        result.addFile(str(svg))
    return result


def clear_cache() -> None:
    _cache.clear()


# Widgets whose icons follow the theme: refresh() re-tints them after a palette change.
_bound: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def set_icon(target, name: str, color: QColor | str | None = None) -> None:
    """target.setIcon(icon(name, color)), re-applied when the theme changes."""
    target.setIcon(icon(name, color))
    _bound[target] = ("icon", name, color, 0)


def set_pixmap(label, name: str, size: int, color: QColor | str | None = None) -> None:
    label.setPixmap(pixmap(name, size, color))
    _bound[label] = ("pixmap", name, color, size)


def refresh() -> None:
    for target, (kind, name, color, size) in list(_bound.items()):
        try:
            if kind == "icon":
                target.setIcon(icon(name, color))
            else:
                target.setPixmap(pixmap(name, size, color))
        except RuntimeError:  # the C++ object is gone
            _bound.pop(target, None)
