"""GUI tests: the real main window on a qasync loop, against the local fake CivitAI.

Every async test (and async fixture) under tests/gui runs on a qasync QEventLoop (the
pytest-asyncio 1.5 loop-factory hook below), so Qt timers and queued signals fire while a test
awaits. Never call qtbot.waitSignal / qtbot.waitUntil inside an async test: await futures or poll
with `wait_until()` (asyncio.sleep) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

# PySide6 6.12 / Python 3.11 leaks references to None/True/False (gui/gallery/pyside_refcount.py).
with contextlib.suppress(ImportError):
    importlib.import_module("civitgrab_desktop.gui.gallery.pyside_refcount")

import PySide6  # noqa: E402,F401  - before qasync
import pytest  # noqa: E402
import qasync  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Every test here needs a QApplication: mark it `gui` (so `-m "not gui"` skips them). Async
    tests end by letting the app's background tasks finish (see `_settling`)."""
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.gui)
            if inspect.iscoroutinefunction(getattr(item, "obj", None)):
                item.obj = _settling(item.obj)


def _settling(test):
    """The test, then a wait for the background tasks it started. Between a test's body and its
    fixtures' teardown the loop is not running, and pytest-qt's processEvents would take a
    pending task's first step outside it ("no running event loop")."""

    @functools.wraps(test)
    async def run(*args, **kwargs):
        try:
            return await test(*args, **kwargs)
        finally:
            await settle_tasks()

    return run


def pytest_asyncio_loop_factories(config, item):
    return {"qasync": lambda: qasync.QEventLoop(QApplication.instance() or QApplication([]))}


async def wait_until(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = ""):
    """Poll `predicate` on the running loop; return its first truthy value or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        # yield first: what the last step spawned takes its first step inside the loop (a task
        # still unstarted when a test ends is stepped by pytest-qt's processEvents, outside it)
        await asyncio.sleep(0)
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        await asyncio.sleep(interval)


async def settle_tasks(timeout: float = 10.0) -> None:
    """Let the window's background tasks (refreshes, reads) finish inside the test's loop; a test
    that ends right after starting some calls this last (see wait_until)."""
    from civitgrab_desktop.gui.util import background_tasks

    pending = [t for t in background_tasks() if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


def part_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.part")) if root.exists() else []


def media_files(root: Path) -> list[Path]:
    exts = {".jpeg", ".jpg", ".png", ".webp", ".mp4", ".webm", ".gif"}
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in exts) if root.exists() else []


def make_window(data_dir: Path, api_base: str, theme: str = "light"):
    from civitgrab_desktop.app import create_application
    from civitgrab_desktop.gui.context import AppContext
    from civitgrab_desktop.gui.main_window import MainWindow
    from civitgrab_desktop.gui.theme import ThemeManager
    from civitgrab_desktop.services import Services

    app = create_application()
    services = Services.create(data_dir=str(data_dir), api_base=api_base)
    manager = ThemeManager(app)
    manager.apply(theme)
    ctx = AppContext(services, api_base_overridden=True)
    window = MainWindow(ctx, manager)
    window.resize(1280, 800)
    return window


async def close_window(window) -> None:
    if not window._closing_done:
        task = window.request_quit()
        await asyncio.wait_for(asyncio.shield(task), 60)


@pytest.fixture
async def window(qapp, data_dir, fake_civitai):
    """The real main window on a fresh data dir, talking to the fake CivitAI."""
    w = make_window(data_dir, fake_civitai.base_url)
    w.show()
    await w.started()
    try:
        yield w
    finally:
        await close_window(w)
        w.deleteLater()


@pytest.fixture
def out_dir(tmp_path) -> Path:
    d = tmp_path / "downloads"
    d.mkdir()
    return d
