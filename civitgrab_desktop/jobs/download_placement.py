"""The placement stage of a download: where each image's file goes, and every other copy of it.

The planned path of each listed image (the classic layout by mode and identifier, with model-name
subfolders when sorted, or the organized CivitAI_Browse layout); the verified .part renamed to its
final name with the image's date as mtime and its sidecars (JSON, and `_meta.txt` /
`_no_meta.txt` in the classic layouts); a query that finds an image already on disk gets a hard
link (a copy when the file lies outside the user's folders) with its own sidecars, and so do other
queries that listed it while it downloaded. Every write is checked against the chosen roots at the
moment of use. Mode 3 ends with a CSV summary per tag.

A mixin of `DownloadJob` (jobs/download.py), whose `__init__` holds all the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import os
from datetime import datetime
from pathlib import Path

from civitgrab_desktop.core.atomic_write import atomic_write_text
from civitgrab_desktop.core.civitai.records import RecordError, parse_image
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.csv_export import csv_row
from civitgrab_desktop.core.media import files
from civitgrab_desktop.core.media.sniff import ALL_TYPES, MediaType
from civitgrab_desktop.core.model import DownloadMode, ImageRecord
from civitgrab_desktop.core.organize import layouts, sidecars
from civitgrab_desktop.core.organize.sanitize import PathTooLong, fit_filename
from civitgrab_desktop.core.roots import OutsideRootsError, Roots, UnsafePathError, ensure_inside
from civitgrab_desktop.jobs.download_items import DownloadParams, Target, WorkItem

LOG = logging.getLogger(__name__)


class PlacementStage:
    """Plan paths, place verified files, link copies for other queries, write sidecars and CSVs."""

    library: Library
    params: DownloadParams
    output_dir: Path
    roots: Roots
    targets: list[Target]
    _site_base: str

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
                target.target_value if target.mode == DownloadMode.TAG else target.identifier,
                model_id=model_id,
                record=record,
                sort=self.params.sort,
                max_path=self.params.max_path,
            )
        return folder / str(record.id)

    def _place(self, fetched, item: WorkItem) -> Path:
        """Runs in a worker thread: rename the verified .part to its final name, sidecars, mtime."""
        final_dir = item.stem.parent
        name = layouts.classic_filename(item.record.id, fetched.media.ext)
        final = final_dir / fit_filename(final_dir, name, self.params.max_path)
        ensure_inside(self.output_dir, final)
        self.roots.check(final, "write")
        os.replace(fetched.part_path, final)
        if item.record.created_at:
            files.set_mtime(final, item.record.created_at)
        self._write_sidecars(final, item.record, None)
        files.fsync_dir(final_dir)
        return final

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

    def _write_sidecars(self, media_path: Path, record: ImageRecord, tags: list[dict] | None) -> None:
        folder = media_path.parent
        sidecars.write_json_sidecar(folder / f"{record.id}.json", record.raw, tags=tags)
        if self.params.layout == "organized":
            return
        if record.has_meta:
            sidecars.write_meta_txt(folder / f"{record.id}_meta.txt", record.meta, model_name=record.checkpoint_name)
        else:
            sidecars.write_no_meta_txt(folder / f"{record.id}_no_meta.txt", record.id, record.username, self._site_base)

    # -- linking what is on disk already ---------------------------------------------------------

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
        ensure_inside(self.output_dir, dst)
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

    # -- tag mode summary ------------------------------------------------------------------------

    async def _write_tag_summaries(self) -> None:
        date = datetime.now().strftime("%Y%m%d")
        for target in self.targets:
            if target.mode != DownloadMode.TAG or target.status not in ("ok",):
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
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
