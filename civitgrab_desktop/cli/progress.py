"""Terminal output for jobs: a live progress line (items, bytes, speed, ETA) and the end summary."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from typing import TextIO

from civitgrab_desktop.jobs.download_items import MODE_WORDS
from civitgrab_desktop.jobs.job import (
    FinishedEvent,
    JobEvent,
    MessageEvent,
    ProgressEvent,
    RateLimitedEvent,
    StateChanged,
)


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class TerminalProgress:
    """Listens to job events. On a terminal it redraws one status line on stderr; otherwise it
    prints messages only (and an occasional progress line), so logs stay readable."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.quiet = quiet
        self._last: ProgressEvent | None = None
        self._wait_until = 0.0
        self._wait_reason = ""
        self._line_len = 0
        self._last_plain = 0.0

    def __call__(self, event: JobEvent) -> None:
        if isinstance(event, ProgressEvent):
            self._last = event
            self._draw()
        elif isinstance(event, RateLimitedEvent):
            self._wait_until = time.monotonic() + event.wait_s
            self._wait_reason = event.reason
            self._draw()
        elif isinstance(event, MessageEvent):
            if not self.quiet or event.level >= logging.WARNING:
                prefix = "" if event.level < logging.WARNING else ("Warning: " if event.level < logging.ERROR else "Error: ")
                self._print(prefix + event.text)
        elif isinstance(event, StateChanged) and event.state.value in ("paused", "stopping"):
            self._print(f"Job {event.state.value}.")
        elif isinstance(event, FinishedEvent):
            self._clear()

    def _print(self, text: str) -> None:
        self._clear()
        print(text, file=self.stream, flush=True)
        self._draw()

    def _clear(self) -> None:
        if self.live and self._line_len:
            self.stream.write("\r" + " " * self._line_len + "\r")
            self.stream.flush()
            self._line_len = 0

    def _draw(self) -> None:
        e = self._last
        if e is None:
            return
        finished = e.done + e.failed + e.skipped
        waiting = self._wait_until - time.monotonic()
        parts = []
        if e.total:
            width = 24
            filled = int(width * min(1.0, finished / e.total))
            parts.append("[" + "#" * filled + "." * (width - filled) + "]")
            parts.append(f"{finished}/{e.total}")
        else:
            parts.append(f"{finished} items")
        parts.append(f"{e.done} ok")
        if e.failed:
            parts.append(f"{e.failed} failed")
        if e.skipped:
            parts.append(f"{e.skipped} skipped")
        if e.bytes_done:
            parts.append(human_bytes(e.bytes_done))
        if e.speed_bps:
            parts.append(f"{human_bytes(e.speed_bps)}/s")
        parts.append(f"ETA {human_duration(e.eta_s)}")
        if waiting > 0:
            parts.append(f"waiting {waiting:.0f} s ({self._wait_reason})")
        line = "  ".join(parts)
        if self.live:
            cols = shutil.get_terminal_size((100, 20)).columns
            line = line[: cols - 1]
            pad = max(0, self._line_len - len(line))
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()
            self._line_len = len(line)
        elif not self.quiet and time.monotonic() - self._last_plain > 10:
            self._last_plain = time.monotonic()
            print(line, file=self.stream, flush=True)


def print_summary(summary: dict, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    w = out.write
    w("\n=== Summary ===\n")
    kind = summary.get("kind", "job")
    verb = {"download": "Downloaded", "tags": "Tagged", "convert": "Converted",
            "refresh_metadata": "Metadata refreshed"}.get(kind, "Done")
    w(f"{verb}: {summary.get('done', 0)}")
    if kind == "download":
        w(f" ({human_bytes(summary.get('bytes', 0))})")
    if summary.get("bytes_saved") is not None:
        saved = summary["bytes_saved"]
        w(f" (saved {human_bytes(saved)})" if saved >= 0 else f" (grew by {human_bytes(-saved)})")
    w("\n")
    w(f"Skipped: {summary.get('skipped', 0)}\n")
    for reason, count in sorted(summary.get("skip_reasons", {}).items(), key=lambda kv: -kv[1]):
        w(f"  {count:>6}  {reason}\n")
    failures = summary.get("failures", [])
    w(f"Failed: {summary.get('failed', 0)}\n")
    for f in failures[:50]:
        w(f"  {f['item']}: {f['reason']}\n")
    if len(failures) > 50:
        w(f"  … and {len(failures) - 50} more (see the log)\n")
    targets = summary.get("targets") or []
    if targets:
        w("Identifiers:\n")
        for t in targets:
            label = MODE_WORDS.get(t["mode"], "?")
            line = (
                f"  {label} {t['identifier']}: {t['status']}"
                + (f" ({t['reason']})" if t.get("reason") else "")
                + f" - listed {t['listed']}, new {t['new']}, already had {t['already_had']}, "
                f"downloaded {t['downloaded']}, linked {t['linked']}, failed {t['failed']}"
            )
            if t.get("filtered"):
                line += f", filtered {t['filtered']}"
            if t.get("cap_hit"):
                line += ", hit the service's listing cap"
            w(line + "\n")
            if t.get("gone_reason"):
                w(f"    gone: {t['gone_reason']}\n")
        missing = [t for t in targets if t["status"] == "not found"]
        empty = [t for t in targets if t["status"] == "no items"]
        if missing:
            w("Not found: " + ", ".join(t["identifier"] for t in missing) + "\n")
        if empty:
            w("Found nothing: " + ", ".join(t["identifier"] for t in empty) + "\n")
    if summary.get("error"):
        w(f"Error: {summary['error']}\n")
    w(f"State: {summary.get('state')}  ({human_duration(summary.get('elapsed_s'))})\n")
    out.flush()
