"""The tags job: fetch the community tags of downloaded images and put them everywhere they belong.

Work is claimed in the library in small batches, so several processes (or app windows) share a
library without fetching an image twice, and a stopped job simply continues on the next run.
For each image the tags are stored in the library, written into the `<id>.json` sidecar next to
every copy of the file, and into the WebP's EXIF when the image was converted already.

Methods: `api` (tRPC `tag.getVotableTags`, fast), `browser` (the image page in a headless system
browser, slow), `auto` (the API; after its first refusal or unreadable answer, the browser for
the rest of the job, so a refusing service is not hammered).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.civitai import trpc
from civitgrab_desktop.core.civitai.browser_tags import DEFAULT_PAGES, BrowserTagFetcher
from civitgrab_desktop.core.civitai.browsers import BrowserUnavailable
from civitgrab_desktop.core.civitai.client import CivitaiClient, CivitaiError
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.rows import ImageRow
from civitgrab_desktop.core.library.store import new_owner
from civitgrab_desktop.core.model import TagVote
from civitgrab_desktop.core.organize.sidecars import SidecarError, update_json_sidecar_tags
from civitgrab_desktop.core.roots import OutsideRootsError, Roots
from civitgrab_desktop.jobs.embed_info import record_info
from civitgrab_desktop.jobs.job import JobState, JobStopped, LibraryJob, RateLimitedEvent

LOG = logging.getLogger(__name__)

METHODS = ("auto", "api", "browser")
MAX_WORKERS = 32
RENEW_CLAIMS_S = 60.0
# Fields the rendered page does not show; a tag read from it leaves them out of sidecars and EXIF.
NOT_ON_PAGE = ("type", "upVotes", "downVotes", "automated", "nsfwLevel")


@dataclass
class TagsParams:
    method: str = "auto"  # auto | api | browser
    workers: int = 8  # parallel fetches (browser pages: at most DEFAULT_PAGES)
    limit: int | None = None  # at most this many images
    retag: bool = False  # fetch again images whose tags are known
    max_age_days: float | None = None  # also refresh tags fetched longer ago than this
    browser_path: str | None = None  # Chromium/Chrome/Edge executable or channel; None: find one
    # Set by the job when --retag starts (epoch seconds): tags fetched before it are due. A
    # resumed --retag job reuses it instead of starting over.
    refetch_before: float | None = None
    image_ids: list[int] | None = None  # only these images ("fetch tags now" in the gallery)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        self.workers = max(1, min(MAX_WORKERS, int(self.workers or 8)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TagsParams:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class TagsJob(LibraryJob):
    kind = "tags"

    def __init__(
        self,
        library: Library,
        client: CivitaiClient,
        params: TagsParams,
        *,
        job_id: str = "",
        listener=None,
    ):
        super().__init__(job_id, listener)
        self.library = library
        self.client = client
        self.params = params
        self.owner = new_owner()
        self.methods: Counter = Counter()  # images tagged per method
        self.claimed = 0
        self.fallback_reason: str | None = None  # auto: why the browser took over
        self.stopped_early: str | None = None  # why no more images were claimed
        self._buffer: collections.deque[ImageRow] = collections.deque()
        self._refill_task: asyncio.Task | None = None
        self._no_more = False
        self._saves: set[asyncio.Task] = set()
        self._save_slots = asyncio.Semaphore(params.workers)
        self._browser: BrowserTagFetcher | None = None
        self._roots: Roots | None = None
        self.client.add_wait_listener(self._on_wait)

    # -- events and persistence --------------------------------------------------------------------

    def _on_wait(self, host: str, seconds: float, reason: str) -> None:
        self.emit(RateLimitedEvent(self.job_id, host, seconds, reason))

    def _progress_dict(self) -> dict[str, Any]:
        t = self.tally
        return {
            "done": t.done,
            "failed": t.failed,
            "skipped": t.skipped,
            "total": t.total,
            "claimed": self.claimed,
            "refetch_before": self.params.refetch_before,
        }

    @property
    def all_tagged(self) -> bool:
        """Every image this job claimed got its tags (and nothing cut the job short)."""
        return self.state == JobState.DONE and self.tally.failed == 0 and self.stopped_early is None

    # -- main ----------------------------------------------------------------------------------------

    async def execute(self) -> None:
        p = self.params
        if p.retag and p.max_age_days is None and p.refetch_before is None:
            p.refetch_before = time.time()
        await self.mark_running(self.owner)
        self.tally.total = await self._estimate_total()
        if self.tally.total is not None:
            self.message(f"{self.tally.total} images need tags; method {p.method}, {p.workers} workers")
        self.progress(force=True)
        renewer = asyncio.create_task(self._renew_claims())
        try:
            workers = [asyncio.create_task(self._worker(), name=f"tags-worker-{i}") for i in range(p.workers)]
            results = await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(*self._saves)  # every fetched image is saved, even on stop
        finally:
            renewer.cancel()
            for task in [*self._saves, self._refill_task]:
                if task is not None and not task.done():
                    task.cancel()
        for res in results:
            if isinstance(res, BaseException) and not isinstance(res, (JobStopped, asyncio.CancelledError)):
                raise res
        if self._no_more and not self._buffer and not self.stop_requested:
            self.tally.total = self.claimed  # the estimate may have counted another process's images

    async def finish(self) -> None:
        self.client.remove_wait_listener(self._on_wait)
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
        with contextlib.suppress(Exception):
            await self.library.release_claims(self.owner)
        self.result.update(
            method=self.params.method,
            methods=dict(self.methods),
            claimed=self.claimed,
            fallback_reason=self.fallback_reason,
            stopped_early=self.stopped_early,
        )
        if self._browser is not None and self._browser.choice is not None:
            self.result["browser"] = self._browser.choice.label
        with contextlib.suppress(Exception):
            await self.library.update_job(
                self.job_id, state=self.state.value, progress=self._progress_dict(), summary=self.summary()
            )

    async def _estimate_total(self) -> int | None:
        p = self.params
        try:
            if p.image_ids is not None:
                total = len(p.image_ids)
            elif p.retag:
                total = await self.library.count_images(dl_state="done")
            else:  # max_age_days adds some done images we cannot count cheaply; the total grows then
                total = await self.library.count_images(dl_state="done", tag_state=["never", "failed"])
        except Exception:
            return None
        return min(total, p.limit) if p.limit is not None else total

    async def _renew_claims(self) -> None:
        # Claims expire after the library's work lease; a slow browser run keeps its claims alive.
        while True:
            await asyncio.sleep(RENEW_CLAIMS_S)
            with contextlib.suppress(Exception):
                await self.library.renew_claims(self.owner)

    # -- claiming ------------------------------------------------------------------------------------

    async def _next_image(self) -> ImageRow | None:
        """The next claimed image. Claims run ahead of the workers (a batch is claimed while the
        previous one is still being fetched), so workers never wait for each other."""
        while self.stopped_early is None:
            if self._buffer:
                row = self._buffer.popleft()
                if len(self._buffer) < self.params.workers and not self._no_more:
                    self._refill()
                return row
            if self._no_more:
                return None
            await self._refill()
        return None

    def _refill(self) -> asyncio.Task:
        task = self._refill_task
        if task is None or task.done():
            if task is not None and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # a library error: the job fails with it
            task = self._refill_task = asyncio.create_task(self._claim_batch())
        return task

    async def _claim_batch(self) -> None:
        p = self.params
        want = p.workers
        if p.limit is not None:
            want = min(want, p.limit - self.claimed)
        if want <= 0 or self.stopped_early is not None or self.stop_requested:
            self._no_more = True
            return
        max_age = p.max_age_days
        if max_age is None and p.refetch_before is not None:
            max_age = max(0.0, time.time() - p.refetch_before) / 86400
        rows = await self.library.claim_for_tags(self.owner, want, retag=p.retag, max_age_days=max_age,
                                                 image_ids=p.image_ids)
        if not rows:
            self._no_more = True
            return
        self.claimed += len(rows)
        if self.tally.total is not None and self.claimed > self.tally.total:
            self.tally.total = self.claimed
        self._buffer.extend(rows)

    def _stop_claiming(self, reason: str) -> None:
        if self.stopped_early is None:
            self.stopped_early = reason
            self.message(f"No more images will be fetched: {reason}", logging.ERROR)

    # -- workers -------------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            try:
                await self.checkpoint()
            except JobStopped:
                return
            row = await self._next_image()
            if row is None:
                return
            self.progress(str(row.id))
            try:
                tags, method = await self._fetch(row.id)
            except CivitaiError as exc:
                await self._fail(row.id, exc.reason)
                continue
            except Exception as exc:  # one bad image never ends the job
                LOG.exception("fetching the tags of image %s failed", row.id)
                await self._fail(row.id, f"unexpected error: {exc}")
                continue
            # Saving overlaps the next fetch; at most `workers` saves wait at a time.
            await self._save_slots.acquire()
            task = asyncio.create_task(self._save(row, tags, method))
            self._saves.add(task)
            task.add_done_callback(self._saves.discard)

    async def _save(self, row: ImageRow, tags: list[TagVote], method: str) -> None:
        try:
            await self.library.store_tags(row.id, self.owner, tags, method)
            self.methods[method] += 1
            problems = await self._write_files(row, tags, method)
            if problems:
                await self._fail(row.id, "tags stored, but " + "; ".join(problems))
            else:
                self.tally.done += 1
        except Exception as exc:
            LOG.exception("saving the tags of image %s failed", row.id)
            await self._fail(row.id, f"unexpected error: {exc}")
        finally:
            self._save_slots.release()
            self.progress()

    async def _fail(self, image_id: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.library.mark_tags_failed(image_id, self.owner, reason)
        self.tally.fail(str(image_id), reason)
        LOG.info("image %s: %s", image_id, reason)

    # -- fetching ------------------------------------------------------------------------------------

    def _uses_browser(self) -> bool:
        return self.params.method == "browser" or self.fallback_reason is not None

    async def _fetch(self, image_id: int) -> tuple[list[TagVote], str]:
        if not self._uses_browser():
            try:
                return await trpc.get_votable_tags(self.client, image_id), "api"
            except (trpc.TrpcRefused, trpc.UnsupportedShape) as exc:
                if self.params.method == "api":
                    self._stop_claiming(f"the tag API refused or was not understood: {exc.reason}{self._key_hint(exc)}")
                    raise
                if self.fallback_reason is None:
                    self.fallback_reason = exc.reason
                    self.message(f"The tag API did not work ({exc.reason}); using the browser for the rest of this job")
        try:
            return await self._browser_fetcher().fetch(image_id), "browser"
        except BrowserUnavailable as exc:
            self._stop_claiming(exc.reason)
            raise
        except trpc.TrpcRefused as exc:
            self._stop_claiming(f"the image pages were refused too: {exc.reason}{self._key_hint(exc)}")
            raise

    def _key_hint(self, exc: CivitaiError) -> str:
        if exc.status == 401 and not self.client.has_key:
            return "; an API key may help (civitgrab-cli auth set, or --api-key)"
        return ""

    def _browser_fetcher(self) -> BrowserTagFetcher:
        if self._browser is None:
            self._browser = BrowserTagFetcher(
                self.client, pages=min(self.params.workers, DEFAULT_PAGES), browser_path=self.params.browser_path
            )
        return self._browser

    # -- files ---------------------------------------------------------------------------------------

    async def _write_files(self, row: ImageRow, tags: list[TagVote], method: str) -> list[str]:
        """Sidecars (and the WebP's EXIF) get the tags with the library's names: canonical
        whenever the library knows the tag id, even when the page showed a display name."""
        known = {t["id"]: t for t in await self.library.tags_of(row.id)}
        dicts = [_tag_dict(tag, known.get(tag.id), method) for tag in tags]
        paths = [row.path] if row.path else []
        paths += [s.path for s in await self.library.sources_for(row.id) if s.linked and s.path]
        webp = None
        if row.cv_state == "done":
            conversion = await self.library.conversion_of(row.id)
            if conversion is not None and conversion.webp_path:
                paths.append(conversion.webp_path)
                # A video placed in the organized layout has a sidecar there, but no EXIF.
                if Path(conversion.webp_path).suffix.lower() == ".webp":
                    webp = conversion.webp_path
        if self._roots is None:  # the folders whose files may be changed (core/roots.py)
            self._roots = await self.library.roots()
        plan = TagFiles(row.id, list(dict.fromkeys(paths)), row.record or None, dicts, webp, record_info(row),
                        self._roots, row.path)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, write_tag_files, plan)


def _tag_dict(tag: TagVote, known: dict[str, Any] | None, method: str) -> dict[str, Any]:
    data = tag.as_dict()
    if known is not None:
        data["name"] = known["name"]
    if tag.from_page:  # read from the rendered page: only id, name, score, flags are known
        for key in NOT_ON_PAGE:
            data.pop(key, None)
        if known is not None and known.get("type"):
            data["type"] = known["type"]
    return {k: v for k, v in data.items() if v is not None}


@dataclass
class TagFiles:
    """What write_tag_files needs (plain data: it runs in a worker thread)."""

    image_id: int
    media_paths: list[str]
    record: dict[str, Any] | None
    tags: list[dict[str, Any]]
    webp_path: str | None
    exif_info: dict[str, Any]  # embed_info.record_info(row)
    roots: Roots = Roots()  # files outside these are read-only: their tags live in the library only
    original_path: str | None = None  # the download, when still on disk (its generator texts)


def write_tag_files(plan: TagFiles) -> list[str]:
    """Put the tags into the sidecar next to every copy of the media file and into the WebP's
    EXIF and XMP; returns the problems (empty when everything was written). Files outside the
    chosen folders (imported read-only) are left as they are."""
    problems: list[str] = []
    sidecar_paths = dict.fromkeys(Path(p).parent / f"{plan.image_id}.json" for p in plan.media_paths if Path(p).exists())
    for sidecar in sidecar_paths:
        if not plan.roots.contains(sidecar):
            continue
        try:
            plan.roots.check(sidecar, "write")
            update_json_sidecar_tags(sidecar, plan.tags, record_raw=plan.record)
        except FileNotFoundError:
            continue  # no sidecar and no record to write one from
        except (OSError, SidecarError, OutsideRootsError) as exc:
            problems.append(f"could not write {sidecar}: {exc}")
    if plan.webp_path and Path(plan.webp_path).exists() and plan.roots.contains(plan.webp_path):
        from civitgrab_desktop.jobs.refresh_metadata import NotOurFile, RefreshPlan, refresh_file

        try:
            refresh_file(RefreshPlan(plan.image_id, plan.webp_path, plan.original_path, plan.exif_info, plan.tags,
                                     plan.roots))
        except (OSError, ValueError, NotOurFile) as exc:  # OutsideRootsError is a ValueError
            problems.append(f"could not write the tags into {plan.webp_path}: {exc}")
    return problems
