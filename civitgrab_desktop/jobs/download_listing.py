"""The listing stage of a download: what the service lists for each identifier, filtered, planned
and recorded, and queued for the transfer stage.

For each identifier of the query (`Target`): its streams (one per user, post or image; one per
model version for modes 2, 3 and 4), walked page by page; mode 1's deep scan (other orders, the SFW
stream, the user's model versions) when a stream hit the service's ~50,000-item cap; the listing-end
check that tells a capped stream from one of exactly N full pages (jobs/listing_end.py); each page
filtered (video, NSFW level, tag words in the prompt), given its planned path (placement stage) and
recorded in the library before its items are queued; and after a complete, unfiltered listing, the
images this query found before and no longer lists are checked for gone (jobs/gone.py).

A mixin of `DownloadJob` (jobs/download.py), whose `__init__` holds all the state.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from civitgrab_desktop.core.civitai import rest, urls
from civitgrab_desktop.core.civitai.client import CivitaiClient, CivitaiError
from civitgrab_desktop.core.civitai.records import NSFW_CHOICES
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.store import Source
from civitgrab_desktop.core.model import DownloadMode, ImageRecord
from civitgrab_desktop.jobs import gone, listing_end
from civitgrab_desktop.jobs.download_items import (
    FIRST_REGISTERED,
    MODE_LABELS,
    MODE_NAMES,
    DownloadParams,
    Stream,
    Target,
    WorkItem,
)

LOG = logging.getLogger(__name__)


class ListingStage:
    """List, filter, plan and record; feed the queue."""

    library: Library
    client: CivitaiClient
    params: DownloadParams
    targets: list[Target]
    _queue: asyncio.Queue[WorkItem | None]
    _seen_ids: set[int]

    async def _list_all(self) -> None:
        mode = self.params.mode
        for identifier in self.params.identifiers:
            await self.checkpoint()
            value = identifier.strip()
            if mode == DownloadMode.TAG:
                value = value.replace("_", " ").strip()
            target = Target(mode, identifier.strip(), MODE_NAMES[mode], value)
            self.targets.append(target)
            try:
                streams = await self._streams_for(target)
                if streams is None:
                    continue
                for stream in streams:
                    await self._walk(stream, target)
                if self.params.deep_scan and mode == DownloadMode.USERNAME and target.cap_hit:
                    await self._deep_scan(target)
                await self._mark_disappeared(target)
                target.handled_ids = set()  # its listing is over: free the memory
                # A post or image that lists nothing does not exist (or is not public).
                one_item = mode in (DownloadMode.POST, DownloadMode.IMAGE)
                if target.status == "pending" and not target.listed and one_item:
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

    async def _streams_for(self, target: Target) -> list[Stream] | None:
        p = self.params
        base = {"nsfw": p.nsfw}
        if p.videos_only:
            base["type"] = "video"
        if target.mode == DownloadMode.USERNAME:
            return [Stream(f"user {target.identifier}", rest.listing_params(username=target.identifier, sort="Newest", **base))]
        if target.mode == DownloadMode.POST:
            return [Stream(f"post {target.identifier}", rest.listing_params(postId=int(target.identifier), sort="Newest", **base))]
        if target.mode == DownloadMode.IMAGE:
            return [Stream(f"image {target.identifier}", rest.listing_params(imageId=int(target.identifier), **base))]
        if target.mode == DownloadMode.MODEL_VERSION:
            version = await rest.get_version(self.client, int(target.identifier))
            return [
                Stream(
                    f"version {version.id}",
                    rest.listing_params(modelVersionId=version.id, sort="Newest", **base),
                    model_id=version.model_id,
                    version_name=version.name,
                )
            ]
        if target.mode == DownloadMode.MODEL:
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
                and target.mode == DownloadMode.USERNAME
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
        if target.mode == DownloadMode.TAG and p.prompt_check:
            words_needed += target.target_value.lower().split()
        for tag in p.filter_tags:
            words_needed += tag.replace("_", " ").lower().split()
        if words_needed:
            prompt = (record.prompt or "").lower()
            words = set(re.findall(r"[\w-]+", prompt))
            if not all(w in words for w in words_needed):
                return "prompt does not contain the tag words"
        return None

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
