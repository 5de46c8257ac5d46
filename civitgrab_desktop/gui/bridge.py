"""Job events → Qt signals, and the app's registry of running jobs.

Jobs (jobs/) are plain asyncio objects that report through dataclass events. A `JobBridge` is a
QObject per job that re-emits those events as Qt signals, and remembers the latest state, progress,
rate-limit wait and summary so a widget created later can show the job at once. Events arrive on
the loop thread (which is the GUI thread with qasync); one that arrives from another thread is
handed to the loop with call_soon_threadsafe, so widgets are only touched on the GUI thread.

`JobManager` starts jobs as tasks on the loop, keeps them, offers pause/resume/stop for all, sums
their progress for the status bar, and on shutdown stops them and awaits their end (so every job
saves its state and releases its claims before the library closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from civitgrab_desktop.jobs.job import (
    FinishedEvent,
    Job,
    JobEvent,
    JobState,
    MessageEvent,
    ProgressEvent,
    RateLimitedEvent,
    StateChanged,
)

LOG = logging.getLogger(__name__)
MAX_MESSAGES = 500


class JobBridge(QObject):
    """One job's events as Qt signals (always emitted on the loop/GUI thread)."""

    stateChanged = Signal(str)  # JobState value
    progressed = Signal(object)  # ProgressEvent
    rateLimited = Signal(str, float, str)  # host, seconds to wait, reason
    messageLogged = Signal(int, str)  # logging level, text
    finished = Signal(str, object)  # final JobState value, summary dict

    def __init__(self, job: Job, parent: QObject | None = None):
        super().__init__(parent)
        self.job = job
        self.state: str = job.state.value
        self.last_progress: ProgressEvent | None = None
        self.wait_until: float | None = None  # monotonic time a rate-limit wait ends
        self.wait_reason = ""
        self.summary: dict[str, Any] | None = None
        self.messages: deque[tuple[int, str]] = deque(maxlen=MAX_MESSAGES)
        self._thread = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        job.subscribe(self._on_event)

    # Called by the job, possibly (in theory) from another thread.
    def _on_event(self, event: JobEvent) -> None:
        if threading.get_ident() != self._thread and self._loop is not None:
            self._loop.call_soon_threadsafe(self._dispatch, event)
        else:
            self._dispatch(event)

    def _dispatch(self, event: JobEvent) -> None:
        if isinstance(event, ProgressEvent):
            self.last_progress = event
            self.progressed.emit(event)
        elif isinstance(event, StateChanged):
            self.state = event.state.value
            self.stateChanged.emit(self.state)
        elif isinstance(event, RateLimitedEvent):
            self.wait_until = time.monotonic() + max(0.0, event.wait_s)
            self.wait_reason = event.reason
            self.rateLimited.emit(event.host, float(event.wait_s), event.reason)
        elif isinstance(event, MessageEvent):
            self.messages.append((event.level, event.text))
            self.messageLogged.emit(event.level, event.text)
        elif isinstance(event, FinishedEvent):
            self.state = event.state.value
            self.summary = dict(event.summary)
            self.finished.emit(self.state, self.summary)

    def waiting_for(self) -> float:
        """Seconds left of a rate-limit wait (0 when not waiting)."""
        if self.wait_until is None:
            return 0.0
        left = self.wait_until - time.monotonic()
        if left <= 0:
            self.wait_until = None
            return 0.0
        return left

    @property
    def is_finished(self) -> bool:
        """The job reached a final state (it may still be saving its summary)."""
        return JobState(self.state).finished

    @property
    def ended(self) -> bool:
        """The job is over and its summary is known (FinishedEvent received)."""
        return self.summary is not None


@dataclass
class JobHandle:
    """A job the app runs, with what the UI needs to show and restart it."""

    job: Job
    bridge: JobBridge
    kind: str  # download | tags | convert
    title: str  # e.g. "user alice, bob_art"
    params: Any = None
    output_dir: str | None = None
    task: asyncio.Task | None = None
    # Builds and starts a new job for "Retry failures" (None: not offered).
    retry: Callable[[JobHandle], Awaitable[JobHandle | None]] | None = None
    cleanup: Callable[[], Awaitable[None]] | None = None
    started_at: float = field(default_factory=time.time)  # wall clock, for display

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def running(self) -> bool:
        """Until the job's task has ended (including its final bookkeeping)."""
        if self.task is not None:
            return not self.task.done()
        return not self.bridge.is_finished


class JobManager(QObject):
    jobAdded = Signal(object)  # JobHandle
    jobFinished = Signal(object)  # JobHandle
    aggregateChanged = Signal(int, int, int)  # active jobs, items finished, items total (0: unknown)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.handles: list[JobHandle] = []
        self._closing = False

    # -- starting --------------------------------------------------------------------------------

    def start(
        self,
        job: Job,
        *,
        kind: str,
        title: str,
        params: Any = None,
        output_dir: str | None = None,
        retry: Callable[[JobHandle], Awaitable[JobHandle | None]] | None = None,
        cleanup: Callable[[], Awaitable[None]] | None = None,
    ) -> JobHandle:
        if self._closing:
            raise RuntimeError("the app is closing; no new jobs")
        bridge = JobBridge(job, self)
        handle = JobHandle(job, bridge, kind, title, params, output_dir, retry=retry, cleanup=cleanup)
        bridge.progressed.connect(self._emit_aggregate)
        bridge.stateChanged.connect(self._emit_aggregate)
        self.handles.append(handle)
        handle.task = asyncio.ensure_future(self._run(handle))
        handle.task.set_name(f"job-{job.job_id}")
        handle.task.add_done_callback(lambda _task, h=handle: self._task_done(h))
        self.jobAdded.emit(handle)
        self._emit_aggregate()
        return handle

    async def _run(self, handle: JobHandle) -> None:
        try:
            await handle.job.run()
        except asyncio.CancelledError:
            LOG.info("job %s cancelled", handle.job_id)
        except Exception:  # Job.run catches job errors; this is a bug in the job machinery
            LOG.exception("job %s crashed", handle.job_id)
        finally:
            if handle.cleanup is not None:
                try:
                    await handle.cleanup()
                except Exception:
                    LOG.exception("cleanup of job %s failed", handle.job_id)

    def _task_done(self, handle: JobHandle) -> None:
        self._emit_aggregate()
        self.jobFinished.emit(handle)

    # -- queries ---------------------------------------------------------------------------------

    def active(self, kind: str | None = None) -> list[JobHandle]:
        return [h for h in self.handles if h.running and (kind is None or h.kind == kind)]

    def aggregate(self) -> tuple[int, int, int]:
        active = self.active()
        done = total = 0
        unknown = False
        for h in active:
            p = h.bridge.last_progress
            if p is None or not p.total:
                unknown = True
                continue
            done += p.done + p.failed + p.skipped
            total += p.total
        return len(active), done, 0 if unknown and not total else total

    def _emit_aggregate(self, *_args) -> None:
        self.aggregateChanged.emit(*self.aggregate())

    def forget(self, handle: JobHandle) -> None:
        """Drop a finished job from the list (its card was dismissed)."""
        if handle in self.handles and not handle.running:
            self.handles.remove(handle)
            handle.bridge.deleteLater()

    # -- control ---------------------------------------------------------------------------------

    def pause_all(self) -> None:
        for h in self.active():
            h.job.pause()

    def resume_all(self) -> None:
        for h in self.active():
            h.job.resume()

    def stop_all(self) -> None:
        for h in self.active():
            h.job.stop()

    async def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every job and wait for it to save its state; cancel what is still running after
        `timeout` (a cancelled job ends as 'interrupted' and can be resumed)."""
        self._closing = True
        tasks = [h.task for h in self.handles if h.task is not None and not h.task.done()]
        if not tasks:
            return
        LOG.info("stopping %d running job(s) before quitting", len(tasks))
        for h in self.active():
            h.job.stop()
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        if pending:
            LOG.warning("%d job(s) did not stop within %.0f s; interrupting them", len(pending), timeout)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait(pending, timeout=10)
