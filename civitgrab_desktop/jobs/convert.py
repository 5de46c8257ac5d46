"""The convert job: downloaded JPG/PNG (and GIF) to WebP with the record and tags in EXIF,
verified before anything is removed; videos copied or moved into the organized layout.

Images are claimed from the library in batches (atomic across processes, so two windows or a
window and the CLI never convert the same image) and converted in worker processes
(jobs/convert_worker.py). The job records each result as it arrives, so a killed run loses at most
the images that were in flight; a rerun claims only what is not done.

Where files go:
- `dest` (the default): `<dest>/CivitAI_Browse/{Images,Videos}/{SFW,NSFW}/<version>/<user>/<id>.webp`
  plus `<id>.json`. The originals stay; nothing is deleted (videos: copied, or moved on request).
  A `dest` that is itself named CivitAI_Browse is used as that folder (not nested again).
- `in_place`: `<id>.webp` next to the original, which is removed after verification; other query
  folders' links of the original are replaced by links to the WebP (jobs/convert_place.py), and
  the library's paths follow. Videos are not touched in place.
The library keeps one conversion per image: an image converted to `dest` is not converted again
in place later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.filters import ImageFilter
from civitgrab_desktop.core.library.rows import ImageRow
from civitgrab_desktop.core.library.store import new_owner
from civitgrab_desktop.core.organize import layouts
from civitgrab_desktop.core.organize.sanitize import PathTooLong
from civitgrab_desktop.core.roots import Roots, UnsafePathError
from civitgrab_desktop.jobs import convert_worker
from civitgrab_desktop.jobs.convert_tasks import (
    READ_ONLY_REASON,
    EncodeOptions,
    ImageTask,
    TaskResult,
    VideoTask,
)
from civitgrab_desktop.jobs.embed_info import record_info
from civitgrab_desktop.jobs.job import JobState, LibraryJob

LOG = logging.getLogger(__name__)

SOURCE_TYPES = {"username": "username", "user": "username", "model": "model", "modelversion": "modelVersion",
                "model_version": "modelVersion", "version": "modelVersion", "tag": "tag"}
RENEW_EVERY_S = 60.0
# Imported once in the forkserver, so each worker starts warm (scipy: imagehash's DCT).
WORKER_PRELOAD = ("civitgrab_desktop.jobs.convert_worker", "scipy.fftpack")


@dataclass
class ConvertParams:
    quality: int = 90
    lossless: bool = False
    workers: int | None = None  # processes; None/0: one per core
    batch_size: int = 100
    only_tagged: bool = False
    in_place: bool = False
    dest: str | None = None  # folder receiving CivitAI_Browse/ (required unless in_place)
    videos: str | None = "copy"  # copy | move | None (leave them where they are)
    phash_threshold: int = 4
    pg13_is_nsfw: bool = False
    username: str | None = None
    model_version: str | None = None
    source: str | None = None  # "type:value", e.g. "username:alice"
    nsfw_class: str | None = None  # sfw | nsfw
    limit: int | None = None
    method: int = 4
    image_ids: list[int] | None = None  # only these images ("convert now" in the gallery)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvertParams:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def check(self) -> None:
        """Raise ValueError with a clear message for options that cannot work."""
        if not 1 <= int(self.quality) <= 100:
            raise ValueError(f"quality must be 1-100, not {self.quality}")
        if not self.in_place and not self.dest:
            raise ValueError("choose a destination folder, or convert in place")
        if self.videos not in (None, "copy", "move"):
            raise ValueError(f"videos must be copy, move or none, not {self.videos!r}")
        if self.nsfw_class not in (None, "sfw", "nsfw"):
            raise ValueError(f"nsfw class must be sfw or nsfw, not {self.nsfw_class!r}")
        if not 0 <= int(self.phash_threshold) <= 64:
            raise ValueError(f"the pHash threshold must be 0-64, not {self.phash_threshold}")
        parse_source(self.source)

    @property
    def dest_root(self) -> Path | None:
        """The folder that holds CivitAI_Browse/."""
        if not self.dest:
            return None
        dest = Path(self.dest).expanduser().resolve()
        return dest.parent if dest.name == layouts.BROWSE_ROOT else dest

    @property
    def include_videos(self) -> bool:
        return not self.in_place and self.videos is not None


def parse_source(text: str | None) -> tuple[str, str] | None:
    """`username:alice` -> ("username", "alice"); the library's source target types."""
    if not text:
        return None
    kind, sep, value = str(text).partition(":")
    target = SOURCE_TYPES.get(kind.strip().lower())
    if not sep or not value.strip() or target is None:
        raise ValueError(f"source must look like username:alice, model:123, modelVersion:456 or tag:anime, not {text!r}")
    return target, value.strip()


def api_tags(tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """library.tags_of rows in the API's shape (what the EXIF and the sidecar carry)."""
    return [
        {
            "id": t.get("id"),
            "name": t.get("name"),
            "type": t.get("type"),
            "score": t.get("score"),
            "upVotes": t.get("up_votes"),
            "downVotes": t.get("down_votes"),
            "automated": bool(t.get("automated")),
            "needsReview": bool(t.get("needs_review")),
        }
        for t in tags
    ]


def pool_context():
    """forkserver where there is one: workers start from a clean process (not a copy of this one
    with its threads) that already imported the worker's modules; spawn elsewhere (Windows, and
    macOS, where fork is unsafe with system frameworks)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))
    return ctx


class ConvertJob(LibraryJob):
    kind = "convert"

    def __init__(self, library: Library, params: ConvertParams, *, job_id: str = "", listener=None):
        super().__init__(job_id, listener)
        params.check()
        self.library = library
        self.params = params
        self.owner = new_owner()
        self.workers = max(1, int(params.workers or os.cpu_count() or 1))
        self.options = EncodeOptions(int(params.quality), bool(params.lossless), int(params.method),
                                     int(params.phash_threshold))
        self.roots = Roots()  # read from the library when the job starts
        self._pool: ProcessPoolExecutor | None = None
        self._lifeline = None  # a pipe whose EOF tells the workers this process is gone
        self._queue: deque[ImageRow] = deque()
        # asyncio view -> (the pool's future, image id); only the pool's future can be cancelled
        # safely (cancelling the asyncio view of a running task would lose its result).
        self._inflight: dict[asyncio.Future, tuple[Future, int, ProcessPoolExecutor]] = {}
        self._claimed = 0
        self._exhausted = False
        self._last_renew = 0.0
        self.counts = {"converted": 0, "exif_only": 0, "videos": 0, "exif_overflow": 0,
                       "src_bytes": 0, "webp_bytes": 0}
        # What earlier runs of this job (stopped, killed, then resumed) finished: the job's
        # recorded progress adds this run to it. Failures are not carried: a rerun retries them.
        self.prior = {"done": 0, "skipped": 0, "bytes_saved": 0}

    # -- persistence -----------------------------------------------------------------------------

    def _progress_dict(self) -> dict[str, Any]:
        t, before = self.tally, self.prior
        total = None if t.total is None else t.total + before["done"] + before["skipped"]
        return {"done": before["done"] + t.done, "failed": t.failed, "skipped": before["skipped"] + t.skipped,
                "total": total, "bytes_saved": before["bytes_saved"] + self.bytes_saved}

    async def _load_prior(self) -> None:
        with contextlib.suppress(Exception):
            row = await self.library.get_job(self.job_id)
            progress = (row.progress if row is not None else None) or {}
            for key in self.prior:
                value = progress.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    self.prior[key] = value

    @property
    def bytes_saved(self) -> int:
        return self.counts["src_bytes"] - self.counts["webp_bytes"]

    @property
    def all_converted(self) -> bool:
        """Every claimed image converted or legitimately skipped (the CLI's exit 0)."""
        return self.state == JobState.DONE and self.tally.failed == 0

    # -- main ------------------------------------------------------------------------------------

    async def execute(self) -> None:
        if self.job_id:
            await self._load_prior()
            await self.mark_running(self.owner)
        self._describe()
        await self._load_roots()
        self.tally.total = await self._count_due()
        if not self.tally.total:
            await self._explain_nothing_due()
        loop = asyncio.get_running_loop()
        self._last_renew = loop.time()
        while True:
            if self.stop_requested or not self._resume.is_set():
                await self._drain()
                await self.checkpoint()  # waits while paused; raises JobStopped on stop
            await self._fill()
            if not self._inflight:
                break
            done, _ = await asyncio.wait(list(self._inflight), return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                await self._collect(fut)
            if loop.time() - self._last_renew > RENEW_EVERY_S:
                self._last_renew = loop.time()
                await self.library.renew_claims(self.owner)
        self.tally.total = self.tally.done + self.tally.failed + self.tally.skipped

    async def finish(self) -> None:
        with contextlib.suppress(Exception):
            await self._drain()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            # Nothing runs any more (drained): the workers exit as soon as they read the sentinel.
            await asyncio.get_running_loop().run_in_executor(None, functools.partial(pool.shutdown, cancel_futures=True))
        if self._lifeline is not None:
            for end in self._lifeline:
                end.close()
            self._lifeline = None
        with contextlib.suppress(Exception):
            await self.library.release_claims(self.owner)
        self.result.update(
            bytes_saved=self.bytes_saved,
            src_bytes=self.counts["src_bytes"],
            webp_bytes=self.counts["webp_bytes"],
            videos=self.counts["videos"],
            exif_only=self.counts["exif_only"],
            exif_overflow=self.counts["exif_overflow"],
            mode="in place" if self.params.in_place else "dest",
            dest=str(self._browse_root()) if not self.params.in_place else None,
        )
        if self.prior["done"] or self.prior["skipped"]:
            whole = self._progress_dict()
            self.result.update(earlier_done=self.prior["done"], job_done=whole["done"],
                               job_skipped=whole["skipped"], job_bytes_saved=whole["bytes_saved"])
        with contextlib.suppress(Exception):
            await self.library.update_job(self.job_id, state=self.state.value, progress=self._progress_dict(),
                                          summary=self.summary())

    async def _load_roots(self) -> None:
        """The folders this job may change files in: the destination (the user chose it for this
        job) and the roots the library knows (download folders, trusted classic folders)."""
        if not self.params.in_place and self.params.dest_root is not None:
            await self.library.add_root(self.params.dest_root, "convert")
        self.roots = await self.library.roots()

    def _describe(self) -> None:
        p = self.params
        what = "lossless WebP" if p.lossless else f"WebP quality {p.quality}"
        if p.in_place:
            self.message(f"Converting to {what} in place: each original is removed after its WebP is verified "
                         "(videos stay as they are)")
        else:
            kept = "originals are kept; videos are moved" if p.videos == "move" else "originals are kept"
            self.message(f"Converting to {what} into {self._browse_root()} ({kept})")

    def _browse_root(self) -> Path:
        root = self.params.dest_root
        return (root / layouts.BROWSE_ROOT) if root else Path()

    def _filter_kwargs(self) -> dict[str, Any]:
        p = self.params
        return dict(only_tagged=p.only_tagged, username=p.username or None, model_version_name=p.model_version or None,
                    source=parse_source(p.source), nsfw=p.nsfw_class, pg13_is_nsfw=p.pg13_is_nsfw,
                    include_videos=p.include_videos)

    async def _explain_nothing_due(self) -> None:
        """Say why a run finds nothing to do (the filters, tags not fetched yet, all done)."""
        with contextlib.suppress(Exception):
            if self.params.only_tagged:
                kwargs = {**self._filter_kwargs(), "only_tagged": False}
                waiting = await self.library.count_images(ImageFilter(dl_state="done", cv_state=["never", "failed"], **kwargs))
                if waiting:
                    self.message(f"Nothing to convert yet: {waiting} downloaded image(s) have no tags fetched "
                                 "(--only-tagged); fetch them first with: civitgrab-cli tags")
                    return
            self.message("Nothing to convert: every downloaded image that matches is converted already")

    async def _count_due(self) -> int:
        f = ImageFilter(ids=self.params.image_ids, dl_state="done", cv_state=["never", "failed"], **self._filter_kwargs())
        count = await self.library.count_images(f)
        return min(count, self.params.limit) if self.params.limit else count

    # -- scheduling ------------------------------------------------------------------------------

    async def _fill(self) -> None:
        """Keep every worker busy (plus one queued task each), claiming batches as needed."""
        while len(self._inflight) < self.workers * 2 and not self.stop_requested and self._resume.is_set():
            if not self._queue and not await self._claim_batch():
                return
            row = self._queue.popleft()
            task = await self._task_for(row)
            if task is None:
                continue
            self.progress(str(row.id))
            if self._pool is None:
                self._pool = self._new_pool()
            work = self._pool.submit(convert_worker.run_task, task)
            self._inflight[asyncio.wrap_future(work)] = (work, row.id, self._pool)

    def _new_pool(self) -> ProcessPoolExecutor:
        ctx = pool_context()
        if self._lifeline is None:
            self._lifeline = ctx.Pipe(duplex=False)  # (read end for the workers, write end kept here)
        return ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=convert_worker.init_worker,
                                   initargs=(self._lifeline[0],))

    async def _claim_batch(self) -> bool:
        if self._exhausted:
            return False
        size = self.params.batch_size
        if self.params.limit:
            size = min(size, self.params.limit - self._claimed)
        rows = (await self.library.claim_for_convert(self.owner, size, image_ids=self.params.image_ids,
                                                     **self._filter_kwargs()) if size > 0 else [])
        if not rows:
            self._exhausted = True
            return False
        self._claimed += len(rows)
        # Largest pictures first: the last ones to finish are small, so no worker sits idle long
        # at the end while another still encodes a big one.
        rows.sort(key=lambda r: ((r.width or 0) * (r.height or 0), r.bytes or 0), reverse=True)
        self._queue.extend(rows)
        return True

    async def _drain(self) -> None:
        """Pause/stop: hand back what was claimed but not started; finish (and record) what runs."""
        for fut, (work, image_id, _pool) in list(self._inflight.items()):
            if work.cancel():  # not started yet (a running conversion cannot be cancelled)
                del self._inflight[fut]
                await self.library.release_claims(self.owner, image_id=image_id)
        if self._inflight:
            done, _ = await asyncio.wait(list(self._inflight))
            for fut in done:
                await self._collect(fut)
        while self._queue:
            row = self._queue.popleft()
            await self.library.release_claims(self.owner, image_id=row.id)
        self._claimed = self.tally.done + self.tally.failed + self.tally.skipped
        self._exhausted = False

    # -- per item --------------------------------------------------------------------------------

    async def _task_for(self, row: ImageRow) -> ImageTask | VideoTask | None:
        """The worker's task for a claimed row, or None when the row was settled here."""
        p = self.params
        if row.type == "audio":
            await self._record(TaskResult(row.id, "skipped", "audio is not converted"))
            return None
        if row.is_video and not p.include_videos:
            await self.library.release_claims(self.owner, image_id=row.id)  # left for a later run
            return None
        if not row.path:
            await self._record(TaskResult(row.id, "failed", "the library has no file for this image"))
            return None
        if p.in_place and not self.roots.contains(row.path):
            await self._record(TaskResult(row.id, "skipped", READ_ONLY_REASON))
            return None
        try:
            if p.in_place:
                out_dir = Path(row.path).parent
            else:
                out_dir = layouts.browse_target_dir(p.dest_root, row, pg13_is_nsfw=p.pg13_is_nsfw)
        except (UnsafePathError, PathTooLong, ValueError) as exc:
            await self._record(TaskResult(row.id, "failed", f"unusable output path: {exc}"))
            return None
        tags = api_tags(await self.library.tags_of(row.id))
        if row.is_video:
            return VideoTask(row.id, row.path, str(out_dir), p.videos == "move", tags, row.record, row.sha256,
                             roots=self.roots)
        copies: tuple[str, ...] = ()
        if p.in_place:
            sources = await self.library.sources_for(row.id)
            copies = tuple(dict.fromkeys(s.path for s in sources if s.linked and s.path and s.path != row.path))
        return ImageTask(
            image_id=row.id, src=row.path, out_dir=str(out_dir), in_place=p.in_place, options=self.options,
            info=record_info(row), tags=tags, record=row.record, sha256=row.sha256,
            created_at=row.created_at, copies=copies, roots=self.roots,
        )

    async def _collect(self, fut: asyncio.Future) -> None:
        work, image_id, pool = self._inflight.pop(fut)
        try:
            result = fut.result()
        except BrokenProcessPool:
            result = TaskResult(image_id, "failed", "the converter process died (out of memory, or a hostile file?)")
            if pool is self._pool:  # start a fresh pool for the rest
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        except Exception as exc:
            result = TaskResult(image_id, "failed", f"unexpected error: {type(exc).__name__}: {exc}")
        await self._record(result)
        self.progress()

    async def _record(self, r: TaskResult) -> None:
        if r.status == "converted":
            encoded = r.how in ("encoded", "encoded-lossless")
            lossless = r.how == "encoded-lossless" or (self.options.lossless and encoded)
            await self.library.record_conversion(
                r.image_id, self.owner, moved_paths=r.moved_paths or None, webp_path=r.webp_path,
                quality=self.options.quality if encoded and not lossless else None, lossless=lossless,
                src_phash=r.src_phash, webp_phash=r.webp_phash, distance=r.distance, src_bytes=r.src_bytes,
                webp_bytes=r.webp_bytes, original_removed=r.original_removed,
            )
            self.tally.done += 1
            self.tally.bytes_done += r.src_bytes
            is_video = r.how in ("hardlink", "copy", "moved", "in place")
            self.counts["videos"] += is_video
            self.counts["exif_only"] += r.how == "exif-only"
            self.counts["converted"] += not is_video
            if not is_video:
                self.counts["src_bytes"] += r.src_bytes
                self.counts["webp_bytes"] += r.webp_bytes
            if r.exif_dropped:
                self.counts["exif_overflow"] += 1
                self.message(
                    f"image {r.image_id}: the metadata would not fit in the EXIF; cut "
                    f"{', '.join(r.exif_dropped)} there (the XMP and the JSON sidecar have it whole)"
                )
        elif r.status == "skipped":
            await self.library.mark_convert_skipped(r.image_id, self.owner, r.reason)
            self.tally.skip(r.reason)
        else:
            await self.library.mark_convert_failed(r.image_id, self.owner, r.reason)
            self.tally.fail(str(r.image_id), r.reason)
            self.message(f"image {r.image_id}: {r.reason}", logging.WARNING)
        for note in r.notes:
            self.message(note, logging.WARNING)
