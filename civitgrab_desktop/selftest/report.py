"""The self-test's report: each check's result and timing, warnings, errors, and the one JSON line
it prints (also written to $CIVITGRAB_SELFTEST_OUT: a windowed Windows exe has no stdout)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from civitgrab_desktop import __version__

LOG = logging.getLogger(__name__)

ENV_OUT = "CIVITGRAB_SELFTEST_OUT"


class CheckFailed(RuntimeError):
    """A check found a problem (the message is the reason shown to the user)."""


def short(exc: BaseException, limit: int = 300) -> str:
    """The gist of an error: its last non-empty line (numpy's ImportError is 20 lines of advice)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


class Report:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "ok": False,
            "app": __version__,
            "frozen": is_frozen(),
            "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()} {platform.machine()}",
            "executable": sys.executable,
        }
        self.checks: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.done = False

    def check(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            return self.fail(name, exc, t0)
        return self.passed(name, result, t0)

    async def acheck(self, name: str, coro) -> Any:
        t0 = time.monotonic()
        try:
            result = await coro
        except Exception as exc:
            return self.fail(name, exc, t0)
        return self.passed(name, result, t0)

    def passed(self, name: str, result: Any, t0: float) -> Any:
        entry = dict(result) if isinstance(result, dict) else {"value": result} if result is not None else {}
        entry = {"ok": True, **entry, "seconds": round(time.monotonic() - t0, 3)}
        self.checks[name] = entry
        return result

    def fail(self, name: str, exc: BaseException, t0: float | None = None) -> None:
        reason = short(exc, 1000)
        if not isinstance(exc, CheckFailed | TimeoutError):
            reason = f"{type(exc).__name__}: {reason}"
            LOG.error("selftest %s failed", name, exc_info=exc)
        entry: dict[str, Any] = {"ok": False, "error": reason}
        if t0 is not None:
            entry["seconds"] = round(time.monotonic() - t0, 3)
        self.checks[name] = entry
        self.errors.append(f"{name}: {reason}")
        return None

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def finish(self, *, forced_error: str | None = None) -> int:
        """Print (once) and return the exit code."""
        with self._lock:
            if self.done:
                return 1
            self.done = True
            if forced_error:
                self.errors.append(forced_error)
            self.data["checks"] = self.checks
            self.data["warnings"] = self.warnings
            self.data["errors"] = self.errors
            self.data["ok"] = not self.errors
            self.data["seconds"] = round(time.monotonic() - self.started, 2)
            text = json.dumps(self.data, sort_keys=False)
            out = os.environ.get(ENV_OUT)
            if out:
                with contextlib.suppress(OSError):
                    Path(out).write_text(text + "\n", encoding="utf-8")
            stream = sys.stdout
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.write(text + "\n")
                    stream.flush()
            if self.errors and sys.stderr is not None:
                with contextlib.suppress(Exception):
                    sys.stderr.write("civitgrab selftest FAILED:\n" + "".join(f"  - {e}\n" for e in self.errors))
                    sys.stderr.flush()
            return 0 if not self.errors else 1
