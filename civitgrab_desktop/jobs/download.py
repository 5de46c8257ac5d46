"""The download job: list a query's media, download each image once, link it into every query.

Modes (core/model.py `DownloadMode`): 1 username, 2 model (all its versions), 3 model tag (the
models carrying the tag, then their versions), 4 model version, 5 post, 6 image. Each identifier is
one `Target`; the job runs three stages over them, each in its own module:

- listing (jobs/download_listing.py): streams, pages, deep scan, cap and gone checks; filters each
  page, plans its paths, records it in the library and queues its items;
- transfer (jobs/download_transfer.py): N workers, claims and their heartbeat, one id once, fetch
  into a .part file, verify, adopt a finished file an interrupted run left;
- placement (jobs/download_placement.py): the layout, the final rename, links or copies for other
  queries, sidecars, the tag-mode CSV.

An image is identified by its CivitAI id: it is downloaded once, across modes, runs and processes
(claims in the library); a query that finds an image again gets a hard link (or a copy) in its own
folder. `DownloadJob` composes the stages and holds all their state (below, in `__init__`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.civitai import urls
from civitgrab_desktop.core.civitai.client import CivitaiClient
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.store import new_owner
from civitgrab_desktop.core.model import DownloadMode
from civitgrab_desktop.core.roots import Roots
from civitgrab_desktop.jobs.download_items import DiskFullError, DownloadParams, Target, WorkItem
from civitgrab_desktop.jobs.download_listing import ListingStage
from civitgrab_desktop.jobs.download_placement import PlacementStage
from civitgrab_desktop.jobs.download_transfer import TransferStage
from civitgrab_desktop.jobs.job import JobState, LibraryJob, RateLimitedEvent


class DownloadJob(ListingStage, TransferStage, PlacementStage, LibraryJob):
    kind = "download"

    def __init__(
        self,
        library: Library,
        client: CivitaiClient,
        params: DownloadParams,
        *,
        job_id: str = "",
        listener=None,
        workers: int | None = None,
    ):
        super().__init__(job_id, listener)
        self.library = library
        self.client = client
        self.params = params
        self.owner = new_owner()
        self.output_dir = Path(params.output_dir).expanduser().resolve()
        # More workers than transfer slots: while one worker verifies, fsyncs and records a file,
        # another already uses the slot (client.transfers caps concurrent transfers).
        self.workers = workers or client.options.concurrency * 2 + 2
        self.targets: list[Target] = []
        # Two pages of look-ahead: the next listing page is fetched while this one downloads.
        self._queue: asyncio.Queue[WorkItem | None] = asyncio.Queue(maxsize=2 * urls.PAGE_LIMIT)
        self._reserved = 0  # downloads started or finished, for --max_images
        self._per_model: Counter = Counter()
        self._deferred: list[WorkItem] = []
        self._seen_ids: set[int] = set()
        self._handled: set[int] = set()  # ids a worker already took (a page may list an id twice)
        # One worker at a time per image id: another identifier's item for the same image waits
        # for the first to finish, then links its file (or shares its failure).
        self._in_flight: dict[int, asyncio.Future[None]] = {}
        self._failed_ids: dict[int, str] = {}  # id -> reason, for images that failed in this job
        # The image ids with a media file in each folder when this job first wrote to it (after
        # sweeping the .part files of killed processes): maybe unrecorded finished downloads.
        self._folder_ids: dict[Path, asyncio.Future[frozenset[int]]] = {}
        self._site_base = urls.site_origin(client.api_base)
        self._disk_full: str | None = None
        self.roots = Roots((str(self.output_dir),))  # + the library's roots when the job starts
        self.client.add_wait_listener(self._on_wait)

    # -- events ----------------------------------------------------------------------------------

    def _on_wait(self, host: str, seconds: float, reason: str) -> None:
        self.emit(RateLimitedEvent(self.job_id, host, seconds, reason))

    # -- main ------------------------------------------------------------------------------------

    async def execute(self) -> None:
        await self.mark_running(self.owner)
        await self.library.add_root(self.output_dir, "download")  # the user chose it for this job
        self.roots = await self.library.roots()
        self.tally.total = 0
        heartbeat = asyncio.create_task(self._renew_claims(), name="dl-claims-heartbeat")
        try:
            await self._list_and_download()
        finally:
            heartbeat.cancel()
        if self._disk_full:
            raise DiskFullError(self._disk_full)
        if self.params.mode == DownloadMode.TAG:
            await self._write_tag_summaries()

    async def checkpoint(self) -> None:
        if self._disk_full:
            raise DiskFullError(self._disk_full)
        await super().checkpoint()

    def raise_if_stopped(self) -> None:
        if self._disk_full:
            raise DiskFullError(self._disk_full)
        super().raise_if_stopped()

    async def finish(self) -> None:
        self.client.remove_wait_listener(self._on_wait)
        with contextlib.suppress(Exception):
            await self.library.release_claims(self.owner)
        self.result["targets"] = [self._target_summary(t) for t in self.targets]
        with contextlib.suppress(Exception):
            await self.library.update_job(
                self.job_id, state=self.state.value, progress=self._progress_dict(), summary=self.summary()
            )

    def _target_summary(self, t: Target) -> dict[str, Any]:
        return {
            "mode": t.mode,
            "identifier": t.identifier,
            "status": t.status,
            "reason": t.reason,
            "listed": t.listed,
            "new": t.new,
            "already_had": t.had,
            "downloaded": t.downloaded,
            "linked": t.linked,
            "failed": t.failed,
            "filtered": t.filtered,
            "cap_hit": t.cap_hit,
            "gone": t.gone,
            "gone_reason": t.gone_reason,
            "passes": t.passes,
        }

    @property
    def all_on_disk(self) -> bool:
        """Everything asked for is on disk: every identifier found and listed, nothing failed."""
        return self.state == JobState.DONE and self.tally.failed == 0 and all(
            t.status in ("ok", "no items") for t in self.targets
        ) and not any(t.status == "no items" and t.reason for t in self.targets)
