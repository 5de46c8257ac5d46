"""A job: a state machine with pause/resume/stop and progress reported as plain events.

The GUI (gui/bridge.py) turns these events into Qt signals; the CLI into a progress bar. Jobs are
asyncio code; they pause and stop at checkpoints (between items and between chunks of a transfer).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

LOG = logging.getLogger(__name__)


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self in (JobState.STOPPED, JobState.DONE, JobState.FAILED, JobState.INTERRUPTED)


class JobStopped(Exception):
    """Raised at a checkpoint when the user asked the job to stop."""


# -- events --------------------------------------------------------------------------------------


@dataclass
class JobEvent:
    job_id: str


@dataclass
class StateChanged(JobEvent):
    state: JobState


@dataclass
class ProgressEvent(JobEvent):
    done: int
    total: int | None
    failed: int
    skipped: int
    bytes_done: int
    bytes_total: int | None
    speed_bps: float
    items_per_s: float
    eta_s: float | None
    current: str = ""


@dataclass
class RateLimitedEvent(JobEvent):
    host: str
    wait_s: float
    reason: str = "rate limited"


@dataclass
class MessageEvent(JobEvent):
    level: int
    text: str


@dataclass
class FinishedEvent(JobEvent):
    state: JobState
    summary: dict[str, Any]


Listener = Callable[[JobEvent], None]


@dataclass
class Failure:
    item: str
    reason: str


@dataclass
class Tally:
    """Counts every job keeps; a summary is built from it."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    total: int | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    skip_reasons: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped += n
        self.skip_reasons[reason] += n

    def fail(self, item: str, reason: str) -> None:
        self.failed += 1
        self.failures.append(Failure(item, reason))


class Job:
    """Base class. Subclasses implement `execute()` and call `checkpoint()` often."""

    kind = "job"

    def __init__(self, job_id: str = "", listener: Listener | None = None):
        self.job_id = job_id or f"{self.kind}-{int(time.time() * 1000)}"
        self.state = JobState.QUEUED
        self.tally = Tally()
        self._listeners: list[Listener] = [listener] if listener else []
        self._resume = asyncio.Event()
        self._resume.set()
        self._stop_requested = False
        self._started = 0.0
        self._paused_total = 0.0
        self._paused_at: float | None = None
        self._last_progress = 0.0
        self._speed_window: list[tuple[float, int, int]] = []
        self.current = ""
        self.result: dict[str, Any] = {}

    # -- listeners -------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: JobEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                LOG.exception("job listener failed")

    def message(self, text: str, level: int = logging.INFO) -> None:
        LOG.log(level, "[%s] %s", self.job_id, text)
        self.emit(MessageEvent(self.job_id, level, text))

    def _set_state(self, state: JobState) -> None:
        if state != self.state:
            self.state = state
            self.emit(StateChanged(self.job_id, state))
            self.on_state(state)

    def on_state(self, state: JobState) -> None:
        """Hook for subclasses (persist the state)."""

    # -- control (safe to call from the loop thread at any time) ---------------------------------

    def pause(self) -> None:
        if self.state == JobState.RUNNING:
            self._resume.clear()
            self._paused_at = time.monotonic()
            self._set_state(JobState.PAUSED)

    def resume(self) -> None:
        if self.state == JobState.PAUSED:
            if self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
                self._paused_at = None
            self._set_state(JobState.RUNNING)
            self._resume.set()

    def stop(self) -> None:
        if not self.state.finished:
            self._stop_requested = True
            self._set_state(JobState.STOPPING)
            self._resume.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def raise_if_stopped(self) -> None:
        if self._stop_requested:
            raise JobStopped()

    async def checkpoint(self) -> None:
        """Waits while paused; raises JobStopped when a stop was requested."""
        if self._stop_requested:
            raise JobStopped()
        if not self._resume.is_set():
            await self._resume.wait()
            if self._stop_requested:
                raise JobStopped()

    # -- running ---------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Runs the job to the end and returns its summary."""
        self._started = time.monotonic()
        if self._stop_requested:  # stopped before it started
            self._set_state(JobState.STOPPED)
            summary = self.summary()
            self.emit(FinishedEvent(self.job_id, self.state, summary))
            return summary
        self._set_state(JobState.RUNNING)
        try:
            await self.execute()
        except JobStopped:
            self._set_state(JobState.STOPPED)
        except asyncio.CancelledError:
            self._set_state(JobState.INTERRUPTED)
            raise
        except Exception as exc:
            LOG.exception("job %s failed", self.job_id)
            self.result["error"] = str(exc) or type(exc).__name__
            self._set_state(JobState.FAILED)
        else:
            self._set_state(JobState.STOPPED if self._stop_requested else JobState.DONE)
        finally:
            try:
                await self.finish()
            except Exception:
                LOG.exception("job %s cleanup failed", self.job_id)
            self.progress(force=True)
            summary = self.summary()
            if self.state.finished:
                self.emit(FinishedEvent(self.job_id, self.state, summary))
        return summary

    async def execute(self) -> None:
        raise NotImplementedError

    async def finish(self) -> None:
        """Hook: release claims, persist the summary."""

    def elapsed(self) -> float:
        if not self._started:
            return 0.0
        paused = self._paused_total + (time.monotonic() - self._paused_at if self._paused_at else 0.0)
        return max(0.0, time.monotonic() - self._started - paused)

    def progress(self, current: str | None = None, *, force: bool = False) -> None:
        """Emit a progress event, at most ten times a second unless forced."""
        if current is not None:
            self.current = current
        now = time.monotonic()
        if not force and now - self._last_progress < 0.1:
            return
        self._last_progress = now
        t = self.tally
        finished = t.done + t.failed + t.skipped
        self._speed_window.append((now, t.bytes_done, finished))
        while len(self._speed_window) > 2 and now - self._speed_window[0][0] > 5:
            self._speed_window.pop(0)
        t0, b0, n0 = self._speed_window[0]
        span = now - t0
        speed = (t.bytes_done - b0) / span if span > 0.2 else 0.0
        rate = (finished - n0) / span if span > 0.2 else 0.0
        eta = None
        if t.total and rate > 0:
            eta = max(0.0, (t.total - finished) / rate)
        self.emit(
            ProgressEvent(
                self.job_id, t.done, t.total, t.failed, t.skipped, t.bytes_done, t.bytes_total, speed, rate, eta, self.current
            )
        )

    def summary(self) -> dict[str, Any]:
        t = self.tally
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "state": self.state.value,
            "done": t.done,
            "failed": t.failed,
            "skipped": t.skipped,
            "bytes": t.bytes_done,
            "skip_reasons": dict(t.skip_reasons),
            "failures": [asdict(f) for f in t.failures],
            "elapsed_s": round(self.elapsed(), 3),
            **self.result,
        }


class LibraryJob(Job):
    """A job with a row in the library's `jobs` table: once running, every state change and the
    progress are saved there (so a stopped or killed job can be listed and resumed)."""

    library: Any  # set by the subclass
    _persisted = False

    async def mark_running(self, owner: str) -> None:
        await self.library.update_job(self.job_id, state=JobState.RUNNING.value, owner=owner)
        self._persisted = True

    def on_state(self, state: JobState) -> None:
        if self._persisted:
            asyncio.ensure_future(self._persist(state))

    async def _persist(self, state: JobState | None = None) -> None:
        with contextlib.suppress(Exception):  # the row is bookkeeping: never fail the job over it
            await self.library.update_job(self.job_id, state=(state or self.state).value, progress=self._progress_dict())

    def _progress_dict(self) -> dict[str, Any]:
        t = self.tally
        return {"done": t.done, "failed": t.failed, "skipped": t.skipped, "total": t.total, "bytes": t.bytes_done}
