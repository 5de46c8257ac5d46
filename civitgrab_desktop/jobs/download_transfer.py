"""The transfer stage of a download: the queue's workers fetch each image once and verify it.

N workers take items from the listing stage's bounded queue. An image is handled once per job (the
first item for an id runs; another identifier's item for it waits, then links the file or shares
the failure) and once across processes (a claim in the library, renewed by a heartbeat while the
job runs; an image another process holds is deferred and linked when that process is done). The
fetch streams into a per-attempt .part file and checks the bytes' structure as they arrive
(jobs/fetch.py); a complete final-named file a killed run left behind is verified and adopted
instead of fetched again. --max_images / --max_per_model are reserved before any await. A full
disk ends the job (`DiskFullError`).

A mixin of `DownloadJob` (jobs/download.py), whose `__init__` holds all the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from pathlib import Path

from civitgrab_desktop.core.civitai import urls
from civitgrab_desktop.core.civitai.client import CivitaiClient, CivitaiError
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.owners import DOWNLOAD_LEASE_S
from civitgrab_desktop.core.media import files
from civitgrab_desktop.core.media.sniff import SNIFF_BYTES, detect_type
from civitgrab_desktop.core.media.verify import verify_media
from civitgrab_desktop.core.organize.sanitize import PathTooLong
from civitgrab_desktop.core.roots import OutsideRootsError, UnsafePathError, ensure_inside
from civitgrab_desktop.jobs.download_items import (
    CLAIM_RENEWALS_PER_LEASE,
    DEFERRED_POLL_S,
    DISK_FULL_ERRNOS,
    MEDIA_EXTS,
    NOT_ATTEMPTED_DISK_FULL,
    DiskFullError,
    DownloadParams,
    WorkItem,
)
from civitgrab_desktop.jobs.fetch import fetch_to_part, sweep_stale_parts

LOG = logging.getLogger(__name__)


class TransferStage:
    """Workers, claims, fetch, verify, adopt; hands each verified file to the placement stage."""

    library: Library
    client: CivitaiClient
    params: DownloadParams
    owner: str
    output_dir: Path
    workers: int
    _queue: asyncio.Queue[WorkItem | None]
    _reserved: int
    _per_model: Counter
    _deferred: list[WorkItem]
    _handled: set[int]
    _in_flight: dict[int, asyncio.Future[None]]
    _failed_ids: dict[int, str]
    _folder_ids: dict[Path, asyncio.Future[frozenset[int]]]
    _disk_full: str | None

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

    # -- fetch and verify ------------------------------------------------------------------------

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
        ensure_inside(self.output_dir, folder)
        ids = set()
        for name in sweep_stale_parts(folder):
            stem, dot, ext = name.partition(".")
            if dot and stem.isdigit() and f".{ext.lower()}" in MEDIA_EXTS:
                ids.add(int(stem))
        return frozenset(ids)

    # -- a finished file the library does not know -----------------------------------------------

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

    # -- images another process is downloading ---------------------------------------------------

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


async def _exists(path: Path) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, path.exists)
