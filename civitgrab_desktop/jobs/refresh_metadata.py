"""Rewrite the metadata (EXIF + XMP) of WebP files civitgrab converted earlier, from the library,
without re-encoding them (`civitgrab-cli convert --refresh-metadata`, the Converter page's
"Refresh metadata" and the gallery's context menu).

Per file: it must be the WebP the library recorded for the image, and carry that image's id in
its own metadata (so a file that was replaced by something else is left alone). What the source
carried (A1111 text, ComfyUI graph) comes from the original when it is still on disk, else from
the WebP itself (see core/media/embed.py). The image chunks are copied byte for byte; the new
file is written next to the old one, fsynced and renamed over it, so an interruption leaves each
file either old or new. A file that already holds exactly the new metadata is not written.
The converter's `<id>.json` beside the WebP gets the library's tags as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.filters import ImageFilter
from civitgrab_desktop.core.media.embed import (
    SourceMetadata,
    build_metadata,
    file_image_id,
    source_metadata,
)
from civitgrab_desktop.core.media.webp import insert_metadata
from civitgrab_desktop.core.organize import sidecars
from civitgrab_desktop.core.redact import scrub_secrets
from civitgrab_desktop.core.roots import Roots
from civitgrab_desktop.jobs.convert_place import remove_stale_temps
from civitgrab_desktop.jobs.embed_info import record_info
from civitgrab_desktop.jobs.job import LibraryJob

LOG = logging.getLogger(__name__)
KIND = "refresh_metadata"
CONCURRENT_FILES = 2  # reading + fsyncing files: more would only queue on the disk

REFRESH_READ_ONLY_REASON = "read-only: the file is outside the folders you chose; trust its folder to rewrite its metadata"


class NotOurFile(Exception):
    """The file at the recorded path is not the WebP civitgrab wrote for this image."""


@dataclass
class RefreshParams:
    username: str | None = None
    image_ids: list[int] | None = None
    limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefreshParams:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class RefreshPlan:
    """What refresh_file needs (plain data: it runs in a worker thread)."""

    image_id: int
    webp_path: str
    original_path: str | None
    info: dict[str, Any]
    tags: list[dict[str, Any]]
    roots: Roots  # the folders whose files may be changed (core/roots.py)


def merged_source(webp_path: str, original_path: str | None) -> SourceMetadata:
    """The source's texts: from the original when it is on disk and carries them, else from the WebP."""
    own = source_metadata(webp_path)
    if not original_path or Path(original_path) == Path(webp_path) or not Path(original_path).is_file():
        return own
    original = source_metadata(original_path)
    return SourceMetadata(original.parameters or own.parameters, original.comfy or own.comfy)


def refresh_file(plan: RefreshPlan) -> tuple[bool, tuple[str, ...]]:
    """Rewrite one WebP's metadata; (written, fields cut in EXIF). Raises NotOurFile, OSError,
    ValueError (a malformed WebP)."""
    path = Path(plan.webp_path)
    if path.is_symlink() or not path.is_file():
        raise NotOurFile(f"{path} is not a regular file")
    if file_image_id(path) != plan.image_id:
        raise NotOurFile(f"{path.name} does not carry civitgrab's metadata for image {plan.image_id}; left as it is")
    plan.roots.check(path, "rewrite the metadata of")  # at the moment of use; OutsideRootsError is a ValueError
    remove_stale_temps(path)  # a refresh killed mid-write left a hidden temp file
    built = build_metadata(plan.info, plan.tags, merged_source(plan.webp_path, plan.original_path))
    written = insert_metadata(path, built.exif.data, built.xmp)
    written = _refresh_sidecar_tags(path.with_suffix(".json"), plan) or written
    return written, built.dropped


def _refresh_sidecar_tags(sidecar: Path, plan: RefreshPlan) -> bool:
    """The converter's `<id>.json` next to the WebP gets the library's tags too (everything else
    in it is kept). No sidecar, or one that is not ours or not JSON: left alone."""
    if sidecar.is_symlink():
        return False
    try:
        data = sidecars.read_json_sidecar(sidecar)
    except (OSError, sidecars.SidecarError):
        return False
    if data.get("id") != plan.image_id or data.get("tags") == scrub_secrets(list(plan.tags)):
        return False
    plan.roots.check(sidecar, "rewrite the tags of")
    sidecars.write_json_sidecar(sidecar, data, tags=plan.tags)  # the file as read, with the new tags
    return True


class RefreshMetadataJob(LibraryJob):
    kind = KIND

    def __init__(self, library: Library, params: RefreshParams, *, job_id: str = "", listener=None):
        super().__init__(job_id, listener)
        self.library = library
        self.params = params
        self.counts = {"rewritten": 0, "unchanged": 0, "exif_cut": 0}
        self.roots = Roots()  # read from the library when the job starts

    def _filter(self) -> ImageFilter:
        return ImageFilter(ids=self.params.image_ids, cv_state="done", type="image",
                           username=self.params.username or None)

    async def execute(self) -> None:
        self.roots = await self.library.roots()
        ids = await self.library.reader().image_ids(self._filter())
        if self.params.limit:
            ids = ids[: self.params.limit]
        self.tally.total = len(ids)
        if not ids:
            self.message("Nothing to refresh: no converted images match")
            return
        self.message(f"Rewriting the metadata of {len(ids)} converted image(s) from the library (no re-encoding)")
        pending: set[asyncio.Task] = set()
        try:
            for image_id in ids:
                await self.checkpoint()
                while len(pending) >= CONCURRENT_FILES:
                    _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                pending.add(asyncio.ensure_future(self._one(image_id)))
        finally:
            if pending:
                await asyncio.wait(pending)  # each file ends old or new; let the running ones finish

    async def _one(self, image_id: int) -> None:
        reader = self.library.reader()
        row = await reader.image(image_id)
        conversion = await reader.conversion_of(image_id)
        if row is None or conversion is None or not conversion.webp_path:
            self.tally.skip("no converted file recorded")
            self.progress()
            return
        if Path(conversion.webp_path).suffix.lower() != ".webp":
            self.tally.skip("not a WebP (an organized video)")
            self.progress()
            return
        if not self.roots.contains(conversion.webp_path):
            self.tally.skip(REFRESH_READ_ONLY_REASON)
            self.progress()
            return
        tags = _api_tags(await reader.tags_of(image_id))
        plan = RefreshPlan(image_id, conversion.webp_path, row.path, record_info(row), tags, self.roots)
        self.progress(str(image_id))
        loop = asyncio.get_running_loop()
        try:
            written, cut = await loop.run_in_executor(None, refresh_file, plan)
        except FileNotFoundError:
            self.tally.fail(str(image_id), f"the WebP is missing: {conversion.webp_path}")
        except NotOurFile as exc:
            self.tally.fail(str(image_id), str(exc))
        except (OSError, ValueError) as exc:
            self.tally.fail(str(image_id), f"{type(exc).__name__}: {exc}")
        else:
            self.tally.done += 1
            self.counts["rewritten" if written else "unchanged"] += 1
            if cut:
                self.counts["exif_cut"] += 1
                self.message(f"image {image_id}: {', '.join(cut)} cut in the EXIF to fit; whole in the XMP")
            with contextlib.suppress(OSError):
                self.tally.bytes_done += os.path.getsize(conversion.webp_path)
        if self.tally.failures and self.tally.failures[-1].item == str(image_id):
            self.message(f"image {image_id}: {self.tally.failures[-1].reason}", logging.WARNING)
        self.progress()

    async def finish(self) -> None:
        self.result.update(rewritten=self.counts["rewritten"], unchanged=self.counts["unchanged"],
                           exif_cut=self.counts["exif_cut"])
        with contextlib.suppress(Exception):
            await self.library.update_job(self.job_id, state=self.state.value, progress=self._progress_dict(),
                                          summary=self.summary())


def _api_tags(tags: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from civitgrab_desktop.jobs.convert import api_tags

    return api_tags(tags)
