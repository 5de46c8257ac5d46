"""Small GUI helpers: formatting, opening folders, running coroutines from plain slots."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

LOG = logging.getLogger(__name__)

_background: set[asyncio.Task] = set()
_quitting = False  # once the app quits, a failing background task is logged, not shown


def spawn(coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task:
    """Run `coro` on the loop, keep a reference, and send its error (if any) to sys.excepthook,
    like qasync's asyncSlot does (the app's hook logs it and shows a dialog)."""
    task = asyncio.ensure_future(coro)
    if name:
        task.set_name(name)
    _background.add(task)

    def done(t: asyncio.Task) -> None:
        _background.discard(t)
        if t.cancelled():
            return
        exc = t.exception()
        if exc is None:
            return
        if _quitting:
            LOG.warning("%s failed while quitting: %s", t.get_name(), exc, exc_info=exc)
        else:
            sys.excepthook(type(exc), exc, exc.__traceback__)

    task.add_done_callback(done)
    return task


def background_tasks() -> set[asyncio.Task]:
    return set(_background)


async def settle_background_tasks(timeout: float = 3.0) -> int:
    """For quitting: let the background tasks (reads, refreshes; not jobs, which stop on their
    own) finish for up to `timeout` seconds, then cancel the rest, so none is left to run after
    the loop and the library are gone. Returns how many were cancelled."""
    global _quitting
    _quitting = True
    current = asyncio.current_task()
    pending = [t for t in _background if t is not current and not t.done()]
    if not pending:
        return 0
    _done, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=1.0)
        LOG.info("cancelled %d background tasks while quitting: %s", len(late), ", ".join(t.get_name() for t in late))
    return len(late)


def reset_quitting() -> None:
    """A new window after a quit (tests open several in one process)."""
    global _quitting
    _quitting = False


def human_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def open_folder(path: str | Path) -> bool:
    """Open a folder in the file manager (creating it if needed)."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        LOG.warning("could not create %s: %s", folder, exc)
    ok = QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
    if not ok:
        LOG.warning("could not open %s in the file manager", folder)
    return ok
