"""The download job: list a query's media, download each image once, link it into every query.

Modes: 1 username, 2 model (all versions), 3 model tag (models carrying the tag, then their
versions), 4 model version. One listing task feeds a bounded queue; N workers download. An image is
identified by its CivitAI id: it is downloaded once, across modes, runs and processes (claims in
the library); a query that finds an image again gets a hard link (or a copy) in its own folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import errno
import io
import logging
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.civitai import rest, urls
from civitgrab_desktop.core.civitai.client import CivitaiClient, CivitaiError
from civitgrab_desktop.core.civitai.records import NSFW_CHOICES, ImageRecord, RecordError, parse_image
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.csv_export import csv_row
from civitgrab_desktop.core.library.owners import DOWNLOAD_LEASE_S
from civitgrab_desktop.core.library.store import Source, new_owner
from civitgrab_desktop.core.media import files
from civitgrab_desktop.core.media.sniff import ALL_TYPES, SNIFF_BYTES, MediaType, detect_type
from civitgrab_desktop.core.media.verify import verify_media
from civitgrab_desktop.core.organize import layouts, sidecars
from civitgrab_desktop.core.organize.sanitize import PathTooLong, UnsafePathError, fit_filename
from civitgrab_desktop.core.roots import OutsideRootsError, Roots
from civitgrab_desktop.jobs import gone, listing_end
from civitgrab_desktop.jobs.fetch import fetch_to_part, sweep_stale_parts
from civitgrab_desktop.jobs.job import JobState, LibraryJob, RateLimitedEvent

LOG = logging.getLogger(__name__)

MODE_NAMES = {1: "username", 2: "model", 3: "tag", 4: "modelVersion", 5: "post", 6: "image"}
MODE_LABELS = {1: "username", 2: "model ID", 3: "tag", 4: "model version ID", 5: "post", 6: "image"}
MODE_WORDS = {1: "username", 2: "model", 3: "tag", 4: "version", 5: "post", 6: "image"}  # "model 1001"
DEFAULT_CAP_THRESHOLD = 49_000
DEFERRED_POLL_S = 0.5
# A full disk (or quota) ends the job: every further item would be fetched only to fail.
MEDIA_EXTS = frozenset(media.ext for media in ALL_TYPES)  # the extensions `_place` gives files
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
NOT_ATTEMPTED_DISK_FULL = "not attempted: the disk is full"
CLAIM_RENEWALS_PER_LEASE = 4  # claims are renewed four times per lease while the job runs
FIRST_REGISTERED = 10  # items of a page registered (and queued) before the rest of it


class DiskFullError(Exception):
    """The output folder's disk is full: the job ends (failed) instead of trying every item."""


@dataclass
class DownloadParams:
    mode: int
    identifiers: list[str]
    output_dir: str = "image_downloads"
    original: bool = True  # False: the CDN's resized JPEG (classic --quality 1)
    nsfw: str = "x"
    layout: str = "classic"  # classic | organized (CivitAI_Browse/...)
    sort: bool = True  # classic layout: model-name subfolders
    max_path: int = 240
    redownload: bool = False
    max_images: int | None = None
    max_per_model: int | None = None
    no_videos: bool = False
    videos_only: bool = False
    filter_tags: list[str] = field(default_factory=list)
    prompt_check: bool = True  # mode 3: every word of the tag must be in the prompt
    deep_scan: bool = False
    cap_threshold: int = DEFAULT_CAP_THRESHOLD
    stop_after_known: int | None = None  # incremental update: stop a listing after N known items
    pg13_is_nsfw: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DownloadParams:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Target:
    """One identifier of the query, as the library's `sources` records it."""

    mode: int
    identifier: str
    target_type: str
    target_value: str
    status: str = "pending"  # ok | not found | no items | error | stopped
    reason: str = ""
    listed: int = 0  # items the service returned
    new: int = 0
    had: int = 0
    downloaded: int = 0
    linked: int = 0
    failed: int = 0
    filtered: int = 0
    cap_hit: bool = False
    passes: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True  # every stream listed to its natural end
    gone: int = 0
    gone_reason: str = ""  # why images were (or were not) marked gone
    listed_ids: set[int] = field(default_factory=set)
    # Ids this identifier already gave a verdict for (queued or filtered): deep-scan passes and
    # repeated pages list them again, and each counts once.
    handled_ids: set[int] = field(default_factory=set)


@dataclass
class Stream:
    """One listing to walk: its query, and what the listed items belong to."""

    label: str
    params: dict[str, Any]
    model_id: int | None = None
    version_name: str | None = None
    is_pass: bool = False  # deep-scan passes do not count as the listing


@dataclass
class WorkItem:
    record: ImageRecord
    target: Target
    stem: Path  # planned file path without extension
    model_id: int | None
    listed_done: bool = False  # the library had it downloaded when it was listed


class DownloadJob(LibraryJob):
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
        if self.params.mode == 3:
            await self._write_tag_summaries()

    async def _list_and_download(self) -> None:
        workers = [asyncio.create_task(self._worker(), name=f"dl-worker-{i}") for i in range(self.workers)]
        try:
            await self._list_all()
        finally:
            for _ in workers:
                await self._queue.put(None)
            results = await asyncio.gather(*workers, return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException) and not isinstance(res, asyncio.CancelledError):
                raise res
        await self._finish_deferred()

    async def _renew_claims(self) -> None:
        """Claims expire after the library's download lease; a transfer can outlast it (a 2 GB
        video on a slow line), so the job renews its claims while it runs, and no other process
        takes over an image this one is still fetching."""
        lease = DOWNLOAD_LEASE_S
        with contextlib.suppress(Exception):
            lease = await self.library.run(lambda store: store.leases["dl"])
        while True:
            await asyncio.sleep(lease / CLAIM_RENEWALS_PER_LEASE)
            with contextlib.suppress(Exception):  # a busy library: the next beat tries again
                await self.library.renew_claims(self.owner)

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

    # -- listing ---------------------------------------------------------------------------------

    async def _list_all(self) -> None:
        mode = self.params.mode
        for identifier in self.params.identifiers:
            await self.checkpoint()
            value = identifier.strip()
            if mode == 3:
                value = value.replace("_", " ").strip()
            target = Target(mode, identifier.strip(), MODE_NAMES[mode], value)
            self.targets.append(target)
            try:
                streams = await self._streams_for(target)
                if streams is None:
                    continue
                for stream in streams:
                    await self._walk(stream, target)
                if self.params.deep_scan and mode == 1 and target.cap_hit:
                    await self._deep_scan(target)
                await self._mark_disappeared(target)
                target.handled_ids = set()  # its listing is over: free the memory
                if target.status == "pending" and not target.listed and mode in (5, 6):
                    target.status, target.reason = "not found", f"no such {MODE_LABELS[mode]} (or it is not public)"
                    self.message(f"{MODE_LABELS[mode]} {identifier}: not found", logging.WARNING)
                if target.status == "pending":
                    target.status = "ok" if target.listed else "no items"
                    if not target.listed:
                        self.message(f"{MODE_LABELS[mode]} {identifier}: the service returned no items")
            except rest.IdentifierNotFound as exc:
                target.status, target.reason = "not found", exc.reason
                self.message(f"{MODE_LABELS[mode]} {identifier}: not found ({exc.reason})", logging.WARNING)
            except CivitaiError as exc:
                target.status, target.reason = "error", exc.reason
                self.message(f"{MODE_LABELS[mode]} {identifier}: listing failed: {exc.reason}", logging.ERROR)

    async def _mark_disappeared(self, target: Target) -> None:
        """Images this query found before that a complete, unfiltered listing no longer shows
        stay in the library and on disk, marked as gone from the service when the evidence
        holds (jobs/gone.py); the summary says why, or why not."""
        p = self.params
        if not target.complete or target.status != "pending" or p.nsfw != "x" or p.videos_only or p.max_images:
            return
        known = await self.library.image_ids(source=(target.target_type, target.target_value))
        missing = [i for i in known if i not in target.listed_ids]
        target.listed_ids = set()  # free the memory
        try:
            verdict = await gone.decide_gone(self.client, missing, known=len(known), listed=target.listed)
        except CivitaiError as exc:
            verdict = gone.GoneVerdict([], f"{len(missing)} images not listed, none marked gone: "
                                           f"the check failed ({exc.reason})")
        if verdict.ids:
            await self.library.mark_gone(verdict.ids)
        target.gone = len(verdict.ids)
        target.gone_reason = verdict.reason
        if verdict.reason:
            self.message(f"{MODE_LABELS[target.mode]} {target.identifier}: {verdict.reason}")

    async def _streams_for(self, target: Target) -> list[Stream] | None:
        p = self.params
        base = {"nsfw": p.nsfw}
        if p.videos_only:
            base["type"] = "video"
        if target.mode == 1:
            return [Stream(f"user {target.identifier}", rest.listing_params(username=target.identifier, sort="Newest", **base))]
        if target.mode == 5:
            return [Stream(f"post {target.identifier}", rest.listing_params(postId=int(target.identifier), sort="Newest", **base))]
        if target.mode == 6:
            return [Stream(f"image {target.identifier}", rest.listing_params(imageId=int(target.identifier), **base))]
        if target.mode == 4:
            version = await rest.get_version(self.client, int(target.identifier))
            return [
                Stream(
                    f"version {version.id}",
                    rest.listing_params(modelVersionId=version.id, sort="Newest", **base),
                    model_id=version.model_id,
                    version_name=version.name,
                )
            ]
        if target.mode == 2:
            model = await rest.get_model(self.client, int(target.identifier))
            if not model.versions:
                target.status, target.reason = "no items", "the model has no published versions"
                self.message(f"model {target.identifier}: no published versions")
                return None
            return [
                Stream(
                    f"model {model.id} version {v.id}",
                    rest.listing_params(modelVersionId=v.id, sort="Newest", **base),
                    model_id=model.id,
                    version_name=v.name,
                )
                for v in model.versions
            ]
        search = await rest.search_models_by_tag(self.client, target.target_value)
        if not search.tag_found:
            target.status, target.reason = "not found", "no model carries this tag (the service lists all models for unknown tags)"
            self.message(f"tag {target.identifier}: unknown tag", logging.WARNING)
            return None
        if search.truncated:
            self.message(f"tag {target.identifier}: stopped the model search after {search.pages} pages", logging.WARNING)
        self.message(f"tag {target.identifier}: {len(search.models)} models carry it")
        return [
            Stream(
                f"tag {target.identifier} model {m.id} version {v.id}",
                rest.listing_params(modelVersionId=v.id, sort="Newest", **base),
                model_id=m.id,
                version_name=v.name,
            )
            for m in search.models
            for v in m.versions
        ]

    async def _walk(self, stream: Stream, target: Target) -> int:
        """List one stream to its end (or an early stop); returns the items it listed."""
        listed = new = 0
        known_run = 0
        first_page = True
        last_page_full = ended_naturally = False
        async for page in rest.iter_image_pages(self.client, **stream.params):
            await self.checkpoint()
            for problem in page.problems:
                self.message(f"{stream.label}: skipped an unusable item: {problem}", logging.WARNING)
            if (
                first_page
                and target.mode == 1
                and not stream.is_pass
                and self._foreign_first_items(page.records, target.identifier)
            ):
                target.status = "error"
                target.reason = "the service returned another user's items (deleted or renamed user?)"
                self.message(f"user {target.identifier}: {target.reason}; stopped", logging.WARNING)
                target.complete = False
                return 0
            first_page = False
            listed += page.raw_count
            if not stream.is_pass:
                target.listed += page.raw_count
            target.listed_ids.update(r.id for r in page.records)
            stop_early = False
            # The first few items are registered on their own, so their downloads start while
            # the rest of the page is recorded (a page is one library transaction otherwise).
            head, tail = page.records[:FIRST_REGISTERED], page.records[FIRST_REGISTERED:]
            for batch in (head, tail):
                states, stems = await self._register(batch, stream, target)
                if stop_early:
                    continue  # recorded as listed, not queued
                for record in batch:
                    stem = stems.get(record.id)
                    if stem is None:
                        continue
                    state = states.get(record.id)
                    listed_done = state is not None and state.dl_state == "done"
                    if listed_done:
                        known_run += 1
                    else:
                        known_run = 0
                        if record.id not in self._seen_ids:
                            new += 1
                    await self._enqueue(WorkItem(record, target, stem, stream.model_id, listed_done))
                    if self.params.stop_after_known and known_run >= self.params.stop_after_known:
                        stop_early = True
                        break
            if page.stopped_reason:
                self.message(f"{stream.label}: {page.stopped_reason}", logging.WARNING)
                target.complete = False
            if stop_early:
                self.message(f"{stream.label}: {self.params.stop_after_known} known items in a row; up to date")
                target.complete = False
                break
            last_page_full = page.raw_count >= urls.PAGE_LIMIT
            ended_naturally = page.next_url is None and not page.stopped_reason
        if not stream.is_pass:
            self.message(f"API returned {listed} items for {stream.label}")
        # The service ends a capped stream with a full page and no next page (~50,000 items); so
        # does a query of exactly N pages, which the far end of the listing tells apart.
        capped = listed >= self.params.cap_threshold or (
            ended_naturally and last_page_full and not await self._reached_far_end(stream, target)
        )
        if capped:
            target.cap_hit = True
            target.complete = False
            if not self.params.deep_scan and not stream.is_pass:
                self.message(
                    f"{stream.label}: the listing stopped at {listed} items, the service's cap; "
                    "use --deep_scan to find the rest",
                    logging.WARNING,
                )
        target.passes.append({"pass": stream.label, "listed": listed, "new": new, "capped": capped})
        return listed

    async def _reached_far_end(self, stream: Stream, target: Target) -> bool:
        try:
            return bool(await listing_end.reached_the_far_end(self.client, stream.params, target.listed_ids))
        except CivitaiError as exc:
            self.message(f"{stream.label}: could not check the end of the listing: {exc.reason}", logging.WARNING)
            return False

    @staticmethod
    def _foreign_first_items(records: list[ImageRecord], username: str) -> bool:
        named = [r.username for r in records[:5] if r.username]
        return bool(named) and named[0].lower() != username.lower()

    async def _deep_scan(self, target: Target) -> None:
        """The service stops a stream at ~50,000 items: walk other orders and streams until a pass
        finds nothing new (reference: CivitAI caps per stream; SFW and NSFW are separate)."""
        user = target.identifier
        base = {"type": "video"} if self.params.videos_only else {}
        passes = [
            Stream(f"user {user} (oldest first)", rest.listing_params(username=user, nsfw=self.params.nsfw, sort="Oldest", **base), is_pass=True),
            Stream(f"user {user} (SFW stream)", rest.listing_params(username=user, nsfw=None, sort="Newest", **base), is_pass=True),
            Stream(f"user {user} (SFW stream, oldest first)", rest.listing_params(username=user, nsfw=None, sort="Oldest", **base), is_pass=True),
        ]
        for stream in passes:
            before = len(self._seen_ids)
            await self._walk(stream, target)
            self.message(f"deep scan {stream.label}: {len(self._seen_ids) - before} new items")
        versions = await self.library.version_ids_of_user(user)
        quiet = 0
        for vid in versions:
            await self.checkpoint()
            before = len(self._seen_ids)
            stream = Stream(
                f"user {user} version {vid}",
                rest.listing_params(username=user, modelVersionId=vid, nsfw=self.params.nsfw, sort="Newest", **base),
                is_pass=True,
            )
            await self._walk(stream, target)
            found = len(self._seen_ids) - before
            quiet = 0 if found else quiet + 1
            if quiet >= 50:
                self.message("deep scan: 50 model versions in a row found nothing new; stopping")
                break

    # -- registering and filtering ---------------------------------------------------------------

    async def _register(self, records: list[ImageRecord], stream: Stream, target: Target):
        """Filter a page, plan each file's path, and record the page in the library.

        Returns (library state per id, planned stem per kept id)."""
        wanted: list[ImageRecord] = []
        for record in records:
            if record.id in target.handled_ids:
                continue  # listed again (a deep-scan pass, a repeated page): one verdict per identifier
            target.handled_ids.add(record.id)
            if stream.version_name and not record.model_version_name:
                record.model_version_name = stream.version_name
            reason = self._filter_reason(record, target)
            if reason:
                target.filtered += 1
                self._count_listed()
                self.tally.skip(reason)
                continue
            wanted.append(record)
        if not wanted:
            return {}, {}
        # Planning a path checks it on disk (symlinks, length): a page's worth is I/O, off the loop.
        loop = asyncio.get_running_loop()
        planned = await loop.run_in_executor(None, self._plan_stems, wanted, target, stream.model_id)
        keep: list[ImageRecord] = []
        stems: dict[int, Path] = {}
        for record in wanted:
            stem = planned[record.id]
            if isinstance(stem, Exception):
                self._count_listed()
                self.tally.fail(str(record.id), f"unusable path: {stem}")
                target.failed += 1
                continue
            stems[record.id] = stem
            keep.append(record)
        if not keep:
            return {}, {}
        source = Source(target.target_type, target.target_value, {i: str(p) for i, p in stems.items()}, stream.model_id)
        states = await self.library.upsert_listed(keep, source)
        return states, stems

    def _filter_reason(self, record: ImageRecord, target: Target) -> str | None:
        p = self.params
        if record.is_video and p.no_videos:
            return "video (--no_videos)"
        if not record.is_video and p.videos_only:
            return "not a video (--videos_only)"
        if record.type == "audio":
            return "audio is not downloaded"
        mask = NSFW_CHOICES[p.nsfw][1]
        if record.nsfw_level and not record.nsfw_level & mask:
            return f"NSFW level above --nsfw {p.nsfw}"
        words_needed: list[str] = []
        if target.mode == 3 and p.prompt_check:
            words_needed += target.target_value.lower().split()
        for tag in p.filter_tags:
            words_needed += tag.replace("_", " ").lower().split()
        if words_needed:
            prompt = (record.prompt or "").lower()
            words = set(re.findall(r"[\w-]+", prompt))
            if not all(w in words for w in words_needed):
                return "prompt does not contain the tag words"
        return None

    def _plan_stems(self, records: list[ImageRecord], target: Target, model_id: int | None) -> dict[int, Path | Exception]:
        planned: dict[int, Path | Exception] = {}
        for record in records:
            try:
                planned[record.id] = self._stem_for(record, target, model_id)
            except (UnsafePathError, PathTooLong) as exc:
                planned[record.id] = exc
        return planned

    def _stem_for(self, record: ImageRecord, target: Target, model_id: int | None) -> Path:
        if self.params.layout == "organized":
            folder = layouts.browse_target_dir(self.output_dir, record, pg13_is_nsfw=self.params.pg13_is_nsfw)
        else:
            folder = layouts.classic_target_dir(
                self.output_dir,
                target.mode,
                target.target_value if target.mode == 3 else target.identifier,
                model_id=model_id,
                record=record,
                sort=self.params.sort,
                max_path=self.params.max_path,
            )
        return folder / str(record.id)

    def _count_listed(self) -> None:
        """One more listing entry that will get a verdict (done, skipped or failed): the total
        counts every entry, repeats across targets and filtered ones included, so the progress
        never reads "43 of 41"."""
        self.tally.total = (self.tally.total or 0) + 1

    async def _enqueue(self, item: WorkItem) -> None:
        self._seen_ids.add(item.record.id)
        self._count_listed()
        if item.listed_done:
            item.target.had += 1
        else:
            item.target.new += 1
        await self._queue.put(item)
        self.progress()

    # -- workers ---------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            try:
                await self._handle(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad item never ends the job
                if isinstance(exc, DiskFullError):
                    self.tally.skip(NOT_ATTEMPTED_DISK_FULL)
                    continue
                if self.stop_requested:
                    continue
                LOG.exception("image %s failed", item.record.id)
                self._failed_ids[item.record.id] = f"unexpected error: {exc}"
                self.tally.fail(str(item.record.id), f"unexpected error: {exc}")
                item.target.failed += 1
            finally:
                self.progress()

    async def _handle(self, item: WorkItem) -> None:
        if self.stop_requested:
            return
        await self.checkpoint()
        image_id = item.record.id
        while (first := self._in_flight.get(image_id)) is not None:
            await asyncio.shield(first)  # another identifier's item for this image is being handled
        reason = self._failed_ids.get(image_id)
        if reason is not None:  # it already failed in this job (for another identifier)
            self.tally.fail(str(image_id), reason)
            item.target.failed += 1
            return
        done = self._in_flight[image_id] = asyncio.get_running_loop().create_future()
        try:
            await self._handle_once(item)
        finally:
            if self._in_flight.get(image_id) is done:
                del self._in_flight[image_id]
            done.set_result(None)

    async def _handle_once(self, item: WorkItem) -> None:
        record = item.record
        row = None
        if item.listed_done or record.id in self._handled:
            row = await self.library.image(record.id)
        self._handled.add(record.id)
        if row is not None and row.dl_state == "done" and not self.params.redownload:
            existing = Path(row.path) if row.path else None
            if existing is not None and await _exists(existing):
                await self._link_existing(item, existing)
                return
            self.message(f"image {record.id} is in the library but its file is gone; downloading it again")
        if self._limit_reached(item):
            self.tally.skip("limit reached (--max_images / --max_per_model)")
            return
        force = self.params.redownload or (row is not None and row.dl_state == "done")
        self._reserve(item)  # before any await, so concurrent workers see the limit
        if not await self.library.claim_download(record.id, self.owner, force=force):
            self._unreserve(item)
            self._deferred.append(item)  # another process is downloading it
            return
        try:
            if not self.params.redownload and await self._adopt_final(item):
                self._unreserve(item)
                return
            await self._download(item)
        except BaseException:
            self._unreserve(item)
            raise

    def _limit_reached(self, item: WorkItem) -> bool:
        p = self.params
        if p.max_images is not None and self._reserved >= p.max_images:
            return True
        return bool(p.max_per_model is not None and item.model_id is not None and self._per_model[item.model_id] >= p.max_per_model)

    def _reserve(self, item: WorkItem) -> None:
        self._reserved += 1
        if item.model_id is not None:
            self._per_model[item.model_id] += 1

    def _unreserve(self, item: WorkItem) -> None:
        self._reserved -= 1
        if item.model_id is not None:
            self._per_model[item.model_id] -= 1

    async def _download(self, item: WorkItem) -> None:
        record = item.record
        url = urls.media_url(record.url, original=self.params.original, is_video=record.is_video, width=record.width)

        def count(n: int) -> None:
            self.tally.bytes_done += n
            self.progress()

        self.progress(f"{record.id}")
        await self._folder_listing(item.stem.parent)
        try:
            fetched = await fetch_to_part(
                self.client, url, item.stem.parent, item.stem.name, stop_check=self.raise_if_stopped, on_bytes=count,
                then=lambda part: self._place(part, item),  # placed in the thread that finished it
            )
        except CivitaiError as exc:
            await self.library.mark_download_failed(record.id, self.owner, exc.reason)
            self._failed_ids[record.id] = exc.reason
            self.tally.fail(str(record.id), exc.reason)
            item.target.failed += 1
            self._unreserve(item)
            return
        except OSError as exc:  # the .part could not be written: a local problem, not the network
            await self._write_failed(item, exc)
            return
        except BaseException:
            with contextlib.suppress(Exception):
                await self.library.release_claims(self.owner, image_id=record.id)
            raise
        try:
            final = fetched.then_result()
        except (OSError, PathTooLong, UnsafePathError, OutsideRootsError) as exc:
            with contextlib.suppress(OSError):
                fetched.part_path.unlink()
            await self._write_failed(item, exc)
            return
        unlinked = await self.library.mark_downloaded(
            record.id,
            self.owner,
            path=str(final),
            mime=fetched.media.mime,
            bytes=fetched.size,
            sha256=fetched.sha256,
            quality="original" if self.params.original or record.is_video else "resized",
            source=(item.target.target_type, item.target.target_value),
        )
        self.tally.done += 1
        item.target.downloaded += 1
        if unlinked:
            await self._link_other_sources(record.id, final, unlinked)

    async def _write_failed(self, item: WorkItem, exc: Exception) -> None:
        reason = f"could not write the file: {exc}"
        await self.library.mark_download_failed(item.record.id, self.owner, reason)
        self._failed_ids[item.record.id] = reason
        self.tally.fail(str(item.record.id), reason)
        item.target.failed += 1
        self._unreserve(item)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS and not self._disk_full:
            self._disk_full = f"the disk holding {self.output_dir} is full; stopped (free some space and run again)"
            self.message(self._disk_full, logging.ERROR)

    async def _adopt_final(self, item: WorkItem) -> bool:
        """A complete file under the image's final name is already in its folder, but the library
        does not say so: a run was killed between the rename and the library write. Record it
        (and rewrite its sidecars) instead of downloading it again."""
        if item.record.id not in await self._folder_listing(item.stem.parent):
            return False  # the usual case: nothing to look at on disk
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, self._find_final, item)
        if found is None:
            return False
        path, media, size, digest = found
        record = item.record
        try:
            await loop.run_in_executor(None, self._finish_found, path, record)
        except (OSError, OutsideRootsError) as exc:
            await self._write_failed(item, exc)
            return True
        unlinked = await self.library.mark_downloaded(
            record.id,
            self.owner,
            path=str(path),
            mime=media.mime,
            bytes=size,
            sha256=digest,
            quality="original" if self.params.original or record.is_video else "resized",
            source=(item.target.target_type, item.target.target_value),
        )
        LOG.info("image %s: complete file found at %s (an earlier run was interrupted); recorded", record.id, path)
        self.tally.skip("already on disk (an earlier run was interrupted)")
        if unlinked:
            await self._link_other_sources(record.id, path, unlinked)
        return True

    def _find_final(self, item: WorkItem):
        """Runs in a worker thread: (path, media type, size, sha256) of a final-named file of this
        image in its planned folder that verifies, or None. Only `_place` writes final names, and
        only after verifying the bytes, so such a file is a finished download."""
        folder = item.stem.parent
        for media, name in self._final_names(item):
            path = folder / name
            if not path.is_file():
                continue
            with open(path, "rb") as fh:
                head = fh.read(SNIFF_BYTES)
            if detect_type(None, head) != media or not verify_media(path, media).ok:
                continue
            return path, media, path.stat().st_size, files.sha256_file(path)
        return None

    def _final_names(self, item: WorkItem) -> list[tuple[MediaType, str]]:
        """The names `_place` would give this image's file, one per media type."""
        names = []
        for media in ALL_TYPES:
            try:
                names.append((media, fit_filename(item.stem.parent, layouts.classic_filename(item.record.id, media.ext), self.params.max_path)))
            except (PathTooLong, ValueError):
                continue
        return names

    def _finish_found(self, path: Path, record: ImageRecord) -> None:
        self.roots.check(path, "record")
        if record.created_at:
            files.set_mtime(path, record.created_at)
        self._write_sidecars(path, record, None)
        files.fsync_dir(path.parent)

    async def _folder_listing(self, folder: Path) -> frozenset[int]:
        """The ids of the media files in `folder` when the job first used it, after sweeping
        its stale .part files (both once per folder)."""
        listing = self._folder_ids.get(folder)
        if listing is not None and listing.done():
            return listing.result()
        if listing is None:
            loop = asyncio.get_running_loop()
            listing = self._folder_ids[folder] = loop.create_future()
            ids: frozenset[int] = frozenset()
            try:
                ids = await loop.run_in_executor(None, self._sweep_parts, folder)
            except (OSError, UnsafePathError):
                pass  # the download reports what is wrong with the folder
            finally:
                listing.set_result(ids)
        return await asyncio.shield(listing)

    def _sweep_parts(self, folder: Path) -> frozenset[int]:
        files.ensure_inside(self.output_dir, folder)
        ids = set()
        for name in sweep_stale_parts(folder):
            stem, dot, ext = name.partition(".")
            if dot and stem.isdigit() and f".{ext.lower()}" in MEDIA_EXTS:
                ids.add(int(stem))
        return frozenset(ids)

    def _place(self, fetched, item: WorkItem) -> Path:
        """Runs in a worker thread: rename the verified .part to its final name, sidecars, mtime."""
        final_dir = item.stem.parent
        name = layouts.classic_filename(item.record.id, fetched.media.ext)
        final = final_dir / fit_filename(final_dir, name, self.params.max_path)
        files.ensure_inside(self.output_dir, final)
        self.roots.check(final, "write")
        os.replace(fetched.part_path, final)
        if item.record.created_at:
            files.set_mtime(final, item.record.created_at)
        self._write_sidecars(final, item.record, None)
        files.fsync_dir(final_dir)
        return final

    def _write_sidecars(self, media_path: Path, record: ImageRecord, tags: list[dict] | None) -> None:
        folder = media_path.parent
        sidecars.write_json_sidecar(folder / f"{record.id}.json", record.raw, tags=tags)
        if self.params.layout == "organized":
            return
        if record.has_meta:
            sidecars.write_meta_txt(folder / f"{record.id}_meta.txt", record.meta, model_name=record.checkpoint_name)
        else:
            sidecars.write_no_meta_txt(folder / f"{record.id}_no_meta.txt", record.id, record.username, self._site_base)

    async def _link_existing(self, item: WorkItem, existing: Path) -> None:
        """The image is on disk already: give this query its own link, never a second download."""
        target_path = item.stem.with_name(f"{item.stem.name}{existing.suffix}")
        if target_path != existing:
            tags = await self.library.tags_of(item.record.id)
            loop = asyncio.get_running_loop()
            try:
                how = await loop.run_in_executor(None, self._link_copy, existing, target_path, item.record, tags or None)
            except (OSError, PathTooLong, UnsafePathError, OutsideRootsError) as exc:
                self.tally.fail(str(item.record.id), f"could not link into the query folder: {exc}")
                item.target.failed += 1
                return
            if how != "exists":
                item.target.linked += 1
        await self.library.mark_source_linked(item.record.id, item.target.target_type, item.target.target_value, str(target_path))
        self.tally.skip("already downloaded")

    def _link_copy(self, src: Path, dst: Path, record: ImageRecord, tags) -> str:
        files.ensure_inside(self.output_dir, dst)
        self.roots.check(dst, "link into")
        dst.parent.mkdir(parents=True, exist_ok=True)
        # A file outside the roots (imported read-only) is copied: a hard link would let later
        # work on this copy reach the original.
        how = files.link_or_copy(src, dst, hardlink=self.roots.contains(src))
        self._write_sidecars(dst, record, tags)
        return how

    async def _link_other_sources(self, image_id: int, final: Path, unlinked) -> None:
        """Other queries (this or another process) that listed the image while it downloaded."""
        for src in unlinked:
            dst = Path(src.path)
            if not dst.suffix or dst.suffix == ".part" or dst.name == str(image_id):
                dst = dst.with_name(f"{image_id}{final.suffix}")
            if dst == final:
                continue
            record = await self._record_for(image_id)
            if not self.roots.contains(dst):  # another process may have added its folder since
                self.roots = (await self.library.roots()).with_folder(self.output_dir)
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self._link_copy_any_root, final, dst, record)
            except (OSError, PathTooLong, UnsafePathError, OutsideRootsError) as exc:
                LOG.warning("could not link image %s to %s: %s", image_id, dst, exc)
                continue
            await self.library.mark_source_linked(image_id, src.target_type, src.target_value, str(dst))

    def _link_copy_any_root(self, src: Path, dst: Path, record: ImageRecord | None) -> None:
        # Another process planned this path inside its own output folder, or an imported classic
        # record named it: only a path under a chosen folder gets the file.
        self.roots.check(dst, "link into")
        dst.parent.mkdir(parents=True, exist_ok=True)
        files.link_or_copy(src, dst)
        if record is not None:
            self._write_sidecars(dst, record, None)

    async def _record_for(self, image_id: int) -> ImageRecord | None:
        row = await self.library.image(image_id)
        if row is None or not row.record:
            return None
        try:
            return parse_image(row.record)
        except RecordError:
            return None

    async def _finish_deferred(self) -> None:
        """Images another process was downloading: wait for it, then link (or take over)."""
        pending = list(self._deferred)
        self._deferred.clear()
        while pending:
            await self.checkpoint()
            still = []
            for item in pending:
                row = await self.library.image(item.record.id)
                if row is not None and row.dl_state == "done" and row.path and await _exists(Path(row.path)):
                    await self._link_existing(item, Path(row.path))
                elif self._limit_reached(item):
                    self.tally.skip("limit reached (--max_images / --max_per_model)")
                else:
                    self._reserve(item)
                    force = row is not None and row.dl_state == "done"
                    if await self.library.claim_download(item.record.id, self.owner, force=force):
                        await self._download(item)
                    else:
                        self._unreserve(item)
                        still.append(item)
            pending = still
            if pending:
                await asyncio.sleep(DEFERRED_POLL_S)

    # -- tag mode summary ------------------------------------------------------------------------

    async def _write_tag_summaries(self) -> None:
        date = datetime.now().strftime("%Y%m%d")
        for target in self.targets:
            if target.mode != 3 or target.status not in ("ok",):
                continue
            rows = await self.library.tag_summary_rows(target.target_value)
            path = layouts.tag_summary_csv_path(self.output_dir, target.target_value, date)
            tag_dir = path.parent
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(["Current Tag", "Previously Downloaded Tag", "Checkpoint Name", "Relative Image Path", "Download URL"])
            for row in rows:
                rel = row["path"] or ""
                with contextlib.suppress(ValueError):
                    rel = os.path.relpath(rel, tag_dir) if rel else ""
                others = row["other_tags"] or [""]
                for other in others:
                    writer.writerow(csv_row([target.target_value, other, row["checkpoint_name"], rel, row["url"]]))
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, _write_text, self.roots.check(path, "write"), buf.getvalue())
            self.message(f"tag {target.identifier}: summary written to {path}")


def _write_text(path: Path, text: str) -> None:
    from civitgrab_desktop.core.config import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


async def _exists(path: Path) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, path.exists)
