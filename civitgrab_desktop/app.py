"""The desktop app: QApplication + qasync event loop, services, main window, error hook, shutdown.

One asyncio loop (qasync's, driven by Qt's event loop) runs everything: network I/O as coroutines,
SQLite through the async Library (its own threads), CPU work in executors. Closing the window stops
the running jobs, waits for them to save their state and release their claims, closes the library
and the HTTP session, and only then quits; nothing is cut off mid-write.
"""

from __future__ import annotations

import contextlib
import importlib
import os

os.environ.setdefault("QT_API", "pyside6")  # qasync picks its binding from this

# PySide6 6.12 on Python 3.11 leaks references to None/True/False until the interpreter aborts
# ("none_dealloc"); gui/gallery/pyside_refcount makes them immortal. Applied before Qt is used.
with contextlib.suppress(ImportError):
    importlib.import_module("civitgrab_desktop.gui.gallery.pyside_refcount")

import asyncio  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

import PySide6  # noqa: E402,F401  - imported before qasync on purpose
import qasync  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from civitgrab_desktop import APP_NAME, __version__  # noqa: E402
from civitgrab_desktop.gui import icons  # noqa: E402
from civitgrab_desktop.gui.context import AppContext  # noqa: E402
from civitgrab_desktop.gui.dialogs import ErrorDialog  # noqa: E402
from civitgrab_desktop.gui.main_window import MainWindow  # noqa: E402
from civitgrab_desktop.gui.theme import ThemeManager  # noqa: E402
from civitgrab_desktop.services import Services  # noqa: E402

LOG = logging.getLogger(__name__)


class ExceptionHook:
    """sys.excepthook (qasync sends asyncSlot errors there), threading.excepthook and the loop's
    exception handler: log the error and show a non-modal dialog instead of dying."""

    def __init__(self, log_hint: str = ""):
        self.log_hint = log_hint
        self.parent: QWidget | None = None
        self.dialog: ErrorDialog | None = None
        self.count = 0
        self._previous = sys.excepthook
        self._previous_thread = threading.excepthook
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main_thread = threading.get_ident()

    def install(self) -> None:
        sys.excepthook = self
        threading.excepthook = self._thread_hook

    def uninstall(self) -> None:
        if sys.excepthook is self:
            sys.excepthook = self._previous
        threading.excepthook = self._previous_thread

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.set_exception_handler(self.loop_handler)

    def __call__(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous(exc_type, exc, tb)
            return
        self.count += 1
        LOG.error("Unhandled error: %s", exc, exc_info=(exc_type, exc, tb))
        if threading.get_ident() != self._main_thread and self._loop is not None:
            self._loop.call_soon_threadsafe(self.show, exc_type, exc, tb)
        else:
            self.show(exc_type, exc, tb)

    def _thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        self(args.exc_type, args.exc_value, args.exc_traceback)

    def loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if exc is None or isinstance(exc, asyncio.CancelledError):
            LOG.warning("asyncio: %s", context.get("message"))
            return
        self(type(exc), exc, exc.__traceback__)

    def show(self, exc_type, exc, tb) -> None:
        if QApplication.instance() is None:
            traceback.print_exception(exc_type, exc, tb)
            return
        try:
            if self.dialog is not None and self.dialog.isVisible():
                self.dialog.add_repeat()
                return
            self.dialog = ErrorDialog(exc_type, exc, tb, self.log_hint, self.parent)
            self.dialog.show()
        except Exception:  # the hook itself must never raise
            traceback.print_exception(exc_type, exc, tb)


def create_application() -> QApplication:
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName("civitgrab")
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(icons.app_icon())
    app.setQuitOnLastWindowClosed(False)  # we quit after an orderly shutdown
    return app


def run(args) -> int:
    """Start the app; returns the exit code."""
    app = create_application()
    services = Services.create(data_dir=args.data_dir, api_base=args.api_base, debug=args.debug)
    theme = ThemeManager(app)
    theme.apply(services.settings.get("theme"))
    hook = ExceptionHook(services.log_file)
    hook.install()
    try:
        with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
            return runner.run(main_async(app, services, args, theme, hook))
    finally:
        hook.uninstall()
        logging.shutdown()


async def main_async(app: QApplication, services: Services, args, theme: ThemeManager, hook: ExceptionHook) -> int:
    loop = asyncio.get_running_loop()
    hook.attach_loop(loop)
    ctx = AppContext(services, api_base_overridden=bool(args.api_base))
    window = MainWindow(ctx, theme)
    hook.parent = window
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    _install_sigint(loop, window)
    if not services.settings.raw("window/geometry"):
        _first_placement(app, window)
    window.show()
    if getattr(args, "links", None):
        window.accept_text("\n".join(args.links))
    try:
        await window.started()
    except Exception as exc:  # shown by the hook; the window stays usable (settings, log)
        hook(type(exc), exc, exc.__traceback__)
    freeze_startup_objects()
    await closed.wait()
    LOG.info("civitgrab closed cleanly")
    return 0


def freeze_startup_objects() -> None:
    """What start-up made (modules, classes, widgets, the first page) lives as long as the window:
    frozen out of the collector's sight, a full collection later walks only what came after, so
    it pauses the loop the GUI and the jobs share for less time."""
    gc.freeze()


def _first_placement(app: QApplication, window: MainWindow) -> None:
    """First start: a comfortable size, centred on the screen (later starts restore the last one)."""
    screen = app.primaryScreen()
    if screen is None:
        return
    area = screen.availableGeometry()
    width = min(1280, max(window.minimumWidth(), int(area.width() * 0.9)))
    height = min(820, max(window.minimumHeight(), int(area.height() * 0.9)))
    window.resize(width, height)
    window.move(area.x() + (area.width() - width) // 2, area.y() + (area.height() - height) // 2)


def _install_sigint(loop: asyncio.AbstractEventLoop, window: MainWindow) -> None:
    """Ctrl+C in the terminal quits like the window's close button (jobs stop safely)."""

    def on_sigint(*_args) -> None:
        loop.call_soon_threadsafe(window.request_quit)

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread (tests)
        return
    # Python runs signal handlers only when it gets control; Qt's loop is C++: wake it up.
    timer = QTimer(window)
    timer.setInterval(300)
    timer.timeout.connect(lambda: None)
    timer.start()
