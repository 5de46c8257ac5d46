"""Drive the real app through its pages and save screenshots (for docs/screenshots).

Run it under Xvfb against the fake CivitAI, with a library populated by civitgrab-cli:

    python -m tests.fake_civitai --port 8791 &
    civitgrab-cli --mode 1 --username alice --data-dir D --output_dir O --api-base http://127.0.0.1:8791
    xvfb-run -a -s "-screen 0 1280x800x24" python -m tests.gui.screenshot_tour \\
        --data-dir D --output-dir O --api-base http://127.0.0.1:8791 --theme light --out docs/screenshots

The screen is grabbed with QScreen.grabWindow(0) (the whole X screen, dialogs included); offscreen
it falls back to grabbing the main window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.request
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

import PySide6  # noqa: E402,F401
import qasync  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402

from civitgrab_desktop.app import ExceptionHook, create_application  # noqa: E402
from civitgrab_desktop.gui.context import AppContext  # noqa: E402
from civitgrab_desktop.gui.main_window import MainWindow  # noqa: E402
from civitgrab_desktop.gui.theme import ThemeManager  # noqa: E402
from civitgrab_desktop.services import Services  # noqa: E402


def fake_control(base: str, what: str, payload) -> None:
    request = urllib.request.Request(
        f"{base}/__fake__/{what}", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).read()


async def grab(window: MainWindow, path: Path) -> None:
    await asyncio.sleep(0.6)
    QGuiApplication.processEvents()
    screen = QGuiApplication.primaryScreen()
    image = screen.grabWindow(0) if QGuiApplication.platformName() == "xcb" else window.grab()
    image.save(str(path))
    print(f"saved {path}")


async def composite_dialog(window: MainWindow, dialog, path: Path) -> None:
    """The window, dimmed, with the dialog drawn over it (no window manager draws a frame here)."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QColor, QPainter, QPen

    QGuiApplication.processEvents()
    screen = QGuiApplication.primaryScreen()
    base = screen.grabWindow(0) if QGuiApplication.platformName() == "xcb" else window.grab()
    sheet = dialog.grab()
    painter = QPainter(base)
    painter.fillRect(base.rect(), QColor(0, 0, 0, 90))
    x = (base.width() - sheet.width()) // 2
    y = max(40, (base.height() - sheet.height()) // 2)
    for i in range(12, 0, -2):  # a soft shadow
        painter.fillRect(QRect(x - i, y - i + 6, sheet.width() + 2 * i, sheet.height() + 2 * i), QColor(0, 0, 0, 10))
    painter.drawPixmap(x, y, sheet)
    painter.setPen(QPen(QColor(0, 0, 0, 70), 1))
    painter.drawRect(QRect(x, y, sheet.width() - 1, sheet.height() - 1))
    painter.end()
    base.save(str(path))
    print(f"saved {path}")


async def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"gave up waiting for {predicate}")
        await asyncio.sleep(0.05)


async def show_gallery(window: MainWindow) -> None:
    """The grid with its thumbnails made, newest first (the tour's library has a few videos),
    and the detail pane on the still image with the most community tags."""
    window.show_page("gallery")
    page = window.page("gallery")
    await wait_for(lambda: page.pending_refresh is not None)
    await asyncio.shield(page.pending_refresh)
    await page.refresh()  # the tags and conversions the tour just made
    page.view.verticalScrollBar().setValue(0)
    first, last = page.view.visible_rows()
    items = [page.model.item(r) for r in range(first, last + 1)]
    stills = [i for i in items if i is not None and not i.is_video and i.tag_state == "done"]
    pick = max(stills, key=lambda i: (i.tags_count, i.id), default=None)
    if pick is not None:
        await page.show_item(pick.id)
        page.view.scrollToTop()
        await wait_for(lambda: page.detail.media.current_image() is not None)
    await asyncio.sleep(0.3)
    await wait_for(lambda: page.loader.pending() == 0 and page.loader.frames.pending() == 0)


async def show_database(window: MainWindow) -> None:
    window.show_page("database")
    page = window.page("database")
    await wait_for(lambda: page.model.rowCount() > 0)
    page.table.selectRow(min(2, page.model.rowCount() - 1))


async def tour(app, args) -> None:
    loop = asyncio.get_running_loop()
    services = Services.create(data_dir=args.data_dir, api_base=args.api_base)
    services.settings.set("theme", args.theme)
    theme = ThemeManager(app)
    theme.apply(args.theme)
    hook = ExceptionHook(services.log_file)
    hook.attach_loop(loop)
    ctx = AppContext(services, api_base_overridden=True)
    window = MainWindow(ctx, theme)
    hook.parent = window
    window.setGeometry(0, 0, 1280, 800)
    window.show()
    await window.started()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = args.theme

    page = window.page("download")
    page.output.set_path(args.output_dir)

    async def start(mode: int, text: str, workers: int = 3):
        before = len(ctx.jobs.handles)
        page.mode.set_value(mode)
        page.identifiers.setText(text)
        page.workers.setValue(workers)
        page.start()
        while len(ctx.jobs.handles) == before:
            await asyncio.sleep(0.05)
        return ctx.jobs.handles[-1]

    # A finished job (everything already in the library), a query that fails, and a running job
    # that the service rate-limits.
    done = await start(1, "alice")
    while not done.bridge.ended:
        await asyncio.sleep(0.1)
    missing = await start(2, "999999")
    while not missing.bridge.ended:
        await asyncio.sleep(0.1)
    await loop.run_in_executor(None, fake_control, args.api_base, "config", {"latency": 0.6})
    running = await start(1, "bob_art", workers=2)
    while not (running.bridge.last_progress and running.bridge.last_progress.done >= 2):
        await asyncio.sleep(0.1)
    await loop.run_in_executor(
        None, fake_control, args.api_base, "faults", [{"kind": "429", "where": "cdn", "count": 1, "retry_after": 40}]
    )
    while running.bridge.waiting_for() <= 0 and not running.bridge.ended:
        await asyncio.sleep(0.1)
    page.job_list.card_for(missing).details_button.setChecked(True)
    page.identifiers.setText("")
    page.identifiers.setFocus()
    await grab(window, out / f"download-{suffix}.png")

    # Tags and conversion, run from their pages.
    window.show_page("tags")
    tags = window.page("tags")
    tags.method.setCurrentIndex(tags.method.findData("api"))
    if tags.start_button.isEnabled():
        before = len(ctx.jobs.handles)
        tags.start()
        while len(ctx.jobs.handles) == before:
            await asyncio.sleep(0.05)
        while not ctx.jobs.handles[-1].bridge.ended:
            await asyncio.sleep(0.1)
    await grab(window, out / f"tags-{suffix}.png")

    window.show_page("convert")
    convert = window.page("convert")
    convert.dest.set_path(str(Path(args.output_dir) / "CivitAI_Browse"))
    if convert.start_button.isEnabled():
        before = len(ctx.jobs.handles)
        convert.start()
        while len(ctx.jobs.handles) == before:
            await asyncio.sleep(0.05)
        while not ctx.jobs.handles[-1].bridge.ended:
            await asyncio.sleep(0.1)
    await grab(window, out / f"convert-{suffix}.png")

    await show_gallery(window)
    await grab(window, out / f"gallery-{suffix}.png")
    await show_database(window)
    await grab(window, out / f"database-{suffix}.png")

    # Saved queries, right after "Check for new" found what the replica published meanwhile.
    await loop.run_in_executor(None, fake_control, args.api_base, "faults", [])
    await loop.run_in_executor(None, fake_control, args.api_base, "config", {"latency": 0})
    await loop.run_in_executor(None, fake_control, args.api_base, "publish", {"username": "alice", "count": 2})
    window.show_page("queries")
    queries = window.page("queries")
    await queries.refresh()
    task = queries.start_check(None)
    if task is not None:
        await asyncio.shield(task)
    await grab(window, out / f"queries-{suffix}.png")

    window.show_page("download")
    window.toggle_log()
    window.log_view.level.setCurrentIndex(1)
    await grab(window, out / f"log-{suffix}.png")
    window.toggle_log()

    dialog = window.open_settings()
    dialog.tabs.setCurrentIndex(1)
    dialog.adjustSize()
    dialog.resize(max(680, dialog.width()), dialog.sizeHint().height())
    dialog.move(-2000, -2000)  # keep it off the screen grab; it is composited like a modal sheet
    await asyncio.sleep(0.6)
    await composite_dialog(window, dialog, out / f"settings-{suffix}.png")
    dialog.reject()

    await loop.run_in_executor(None, fake_control, args.api_base, "faults", [])
    await loop.run_in_executor(None, fake_control, args.api_base, "config", {"latency": 0})
    ctx.jobs.stop_all()
    window.request_quit()
    while not window._closing_done:
        await asyncio.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="screenshot_tour")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    parser.add_argument("--out", default="docs/screenshots")
    args = parser.parse_args(argv)
    app = create_application()
    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(tour(app, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
