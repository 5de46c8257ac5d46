"""The self-test's checks with Qt: the main window opens and renders on a temporary library, Qt
decodes JPEG and WebP, QMediaPlayer + QVideoSink decode the first frame of a sample video (the FFmpeg
plugin), and the conversion check runs inside the window's event loop. The window closes cleanly and
no error reached the exception hook.

Like app.py, this drives the real application, so it may import Qt (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from civitgrab_desktop.selftest.report import CheckFailed, Report
from civitgrab_desktop.selftest.samples import check_worker, sample

LOG = logging.getLogger(__name__)

ENV_SCREENSHOT = "CIVITGRAB_SELFTEST_SCREENSHOT"
MEDIA_TIMEOUT = 20.0


def check_qt_image(webp: Path, jpeg: Path) -> dict[str, Any]:
    from PySide6.QtGui import QImageReader

    formats = sorted(bytes(f.data()).decode() for f in QImageReader.supportedImageFormats())
    sizes = {}
    for path in (jpeg, webp):
        reader = QImageReader(str(path))
        image = reader.read()
        if image.isNull():
            raise CheckFailed(f"Qt cannot decode {path.suffix}: {reader.errorString()}")
        sizes[path.suffix.lstrip(".")] = [image.width(), image.height()]
    missing = {"jpeg", "webp", "png", "gif", "svg"} - set(formats)
    if missing:
        raise CheckFailed(f"Qt image formats missing: {', '.join(sorted(missing))}")
    return {"decoded": sizes, "formats": formats}


async def first_video_frame(path: Path | None = None, timeout: float = MEDIA_TIMEOUT) -> dict[str, Any]:
    """The thumbnail pattern of platform notes §3: LoadedMedia, then pause(), then the first frame."""
    from PySide6.QtCore import QUrl

    path = path or sample("sample.mp4")
    from PySide6.QtMultimedia import QMediaPlayer, QVideoSink

    loop = asyncio.get_running_loop()
    loaded: asyncio.Future = loop.create_future()
    got: asyncio.Future = loop.create_future()
    player = QMediaPlayer()
    if not player.isAvailable():
        raise CheckFailed("no multimedia backend (Qt's FFmpeg plugin did not load)")
    sink = QVideoSink()
    player.setVideoSink(sink)

    def on_status(status) -> None:
        if status == QMediaPlayer.MediaStatus.LoadedMedia and not loaded.done():
            loaded.set_result(True)
        elif status == QMediaPlayer.MediaStatus.InvalidMedia:
            for f in (loaded, got):
                if not f.done():
                    f.set_exception(CheckFailed(f"invalid media: {player.errorString() or 'no decoder'}"))

    def on_error(_error, message: str = "") -> None:
        for f in (loaded, got):
            if not f.done():
                f.set_exception(CheckFailed(f"media player error: {message or player.errorString()}"))

    def on_frame(frame) -> None:
        if frame.isValid() and not got.done():
            got.set_result(frame.toImage())

    player.mediaStatusChanged.connect(on_status)
    player.errorOccurred.connect(on_error)
    sink.videoFrameChanged.connect(on_frame)
    try:
        player.setSource(QUrl.fromLocalFile(str(path)))
        try:
            await asyncio.wait_for(loaded, timeout)
        except TimeoutError:
            raise CheckFailed(f"video not loaded after {timeout:.0f} s (status {player.mediaStatus().name})") from None
        player.pause()
        try:
            image = await asyncio.wait_for(got, timeout)
        except TimeoutError:
            raise CheckFailed(f"no video frame after {timeout:.0f} s") from None
    finally:
        with contextlib.suppress(Exception):
            player.stop()
            player.setSource(QUrl())
            sink.videoFrameChanged.disconnect(on_frame)
    if image.isNull() or image.width() == 0:
        raise CheckFailed("the first video frame is empty")
    small = image.scaled(8, 8)
    total = sum(small.pixelColor(x, y).value() for x in range(8) for y in range(8)) / 64
    if total < 8:
        raise CheckFailed("the first video frame is black")
    return {"size": [image.width(), image.height()], "mean_value": round(total, 1)}


async def check_window(app, window, ctx) -> dict[str, Any]:
    await asyncio.sleep(0.2)  # a few event-loop turns: layouts, first paint
    app.processEvents()
    pixmap = window.grab()
    if pixmap.isNull() or pixmap.width() < 200 or pixmap.height() < 200:
        raise CheckFailed(f"the main window did not render ({pixmap.width()}x{pixmap.height()})")
    shot = os.environ.get(ENV_SCREENSHOT)
    if shot:
        pixmap.save(shot)
    pages = [p.title for p in window.pages.values()]
    if not pages:
        raise CheckFailed("the main window has no pages")
    return {"size": [pixmap.width(), pixmap.height()], "pages": pages, "visible": window.isVisible()}


async def check_library(ctx) -> dict[str, Any]:
    services = ctx.services
    if services.library is None:
        raise CheckFailed("the library did not open")
    path = Path(services.paths.library)
    if not path.is_file():
        raise CheckFailed(f"no library file at {path}")
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    if "images" not in tables:
        raise CheckFailed(f"the library has no images table ({', '.join(tables)})")
    return {"schema_version": version, "journal_mode": mode, "tables": len(tables), "sqlite": sqlite3.sqlite_version}


async def gui_checks(app, services, args, report: Report, work: Path) -> None:
    from civitgrab_desktop.app import ExceptionHook
    from civitgrab_desktop.gui.context import AppContext
    from civitgrab_desktop.gui.main_window import MainWindow
    from civitgrab_desktop.gui.theme import ThemeManager

    theme = ThemeManager(app)
    theme.apply(services.settings.get("theme"))
    hook = ExceptionHook(services.log_file)
    hook.install()
    errors_before = hook.count
    try:
        hook.attach_loop(asyncio.get_running_loop())
        ctx = AppContext(services, api_base_overridden=bool(args.api_base))
        window = MainWindow(ctx, theme)
        hook.parent = window
        closed = asyncio.Event()
        window.closed.connect(closed.set)
        window.show()
        report.data["platform"] = app.platformName()
        report.data["library"] = str(services.paths.library)
        try:
            await report.acheck("startup", window.started())
            await report.acheck("window", check_window(app, window, ctx))
            await report.acheck("library", check_library(ctx))
            await report.acheck("convert_in_worker", check_worker(work))
            webp = work / "sample.webp"
            if webp.exists():
                report.check("qt_images", lambda: check_qt_image(webp, sample("sample.jpg")))
            await report.acheck("video_first_frame", first_video_frame())
        finally:
            window.request_quit()
            try:
                await asyncio.wait_for(closed.wait(), 60)
                LOG.info("civitgrab closed cleanly (selftest)")
            except TimeoutError:
                report.fail("shutdown", CheckFailed("the window did not close within 60 s"))
        if hook.count > errors_before:
            report.fail("errors", CheckFailed(f"{hook.count - errors_before} unhandled error(s) (see the log)"))
    finally:
        hook.uninstall()


def run_in_window(args, report: Report, data_dir: Path, work: Path) -> None:
    """Start the real QApplication on qasync's loop, on the library in `data_dir`, and run the checks."""
    from civitgrab_desktop.app import create_application
    from civitgrab_desktop.services import Services

    app = create_application()
    services = Services.create(data_dir=str(data_dir), api_base=args.api_base, debug=args.debug)
    report.data["qt"] = _qt_version()

    import qasync

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(gui_checks(app, services, args, report, work))


def _qt_version() -> str:
    import PySide6
    from PySide6.QtCore import qVersion

    return f"PySide6 {PySide6.__version__}, Qt {qVersion()}"
