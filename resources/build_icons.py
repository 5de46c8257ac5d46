"""Render the app icon (resources/app/civitgrab.svg) to the PNG/ICO/ICNS files packaging needs.

    python resources/build_icons.py

Writes resources/app/civitgrab-<size>.png (16..1024), civitgrab.ico (Windows) and civitgrab.icns
(macOS; also buildable from the PNGs with iconutil). Needs PySide6 (QtSvg) and Pillow.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image  # noqa: E402
from PySide6.QtCore import QRectF, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

HERE = Path(__file__).resolve().parent / "app"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render(svg: Path, size: int) -> QImage:
    renderer = QSvgRenderer(str(svg))
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


def main() -> int:
    QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    svg = HERE / "civitgrab.svg"
    pngs = {}
    for size in SIZES:
        out = HERE / f"civitgrab-{size}.png"
        render(svg, size).save(str(out))
        pngs[size] = out
    largest = Image.open(pngs[256]).convert("RGBA")
    largest.save(HERE / "civitgrab.ico", sizes=[(s, s) for s in ICO_SIZES])
    Image.open(pngs[1024]).convert("RGBA").save(HERE / "civitgrab.icns")
    print(f"wrote {len(pngs)} PNGs, civitgrab.ico and civitgrab.icns to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
