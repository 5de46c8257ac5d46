"""What the gallery and the database view do to an image: open it, show it in the file manager,
copy its prompt, open its CivitAI page, fetch its tags now, convert it now, delete it.

Deleting is careful: the library forgets the image first (refused while a job works on it), then
only files that (a) the library pointed to or sit next to them as this image's sidecars, (b) are
named after the image id, and (c) lie inside a folder the user chose (core/roots.py: the download
folder in the settings and the library's roots: every download folder and convert destination,
trusted classic folders), checked right before each file is removed, are removed. Anything else
is left on disk and reported.

Opening hands a file to the operating system, which may run it: only media files are opened (a
media extension and media magic bytes), and outside the chosen folders (an imported file) the
file must really be what its name says.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

from civitgrab_desktop.core.civitai.urls import image_page_url
from civitgrab_desktop.core.library.deleting import DeletedImage
from civitgrab_desktop.core.library.owners import new_owner
from civitgrab_desktop.core.media.sniff import MEDIA_SUFFIXES, SNIFF_BYTES, type_from_magic
from civitgrab_desktop.core.organize import layouts
from civitgrab_desktop.core.roots import OutsideRootsError, Roots

LOG = logging.getLogger(__name__)

BROWSE_ROOT = "CivitAI_Browse"


# -- opening ----------------------------------------------------------------------------------------


def openable(path: str | None) -> str | None:
    """Why `path` must not be handed to the OS (None: it may be opened). The file is resolved
    (symlinks too): its real name must carry a media extension and its bytes must be media."""
    if not path:
        return "no file"
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return "the file is not on disk"
    if not real.is_file():
        return "not a file"
    # What the OS may be asked to open: media it shows in a viewer or player, never a program.
    if real.suffix.lower() not in MEDIA_SUFFIXES or Path(path).suffix.lower() not in MEDIA_SUFFIXES:
        return f"{real.name} is not an image or video file"
    try:
        with open(real, "rb") as fh:
            kind = type_from_magic(fh.read(SNIFF_BYTES))
    except OSError as exc:
        return f"cannot read it: {exc}"
    if kind is None or not (kind.is_image or kind.is_video):
        return f"{real.name} does not contain an image or video"
    return None


def open_file(path: str | None) -> bool:
    """Open a media file in the OS viewer; refuses anything else (see `openable`)."""
    why = openable(path)
    if why is not None:
        LOG.warning("not opening %s: %s", path, why)
        return False
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).resolve())))


def reveal_in_folder(path: str | None) -> bool:
    """Show the file in the file manager (selected where the platform can), else its folder."""
    if not path:
        return False
    target = Path(path)
    if not target.exists():
        target = target.parent
        if not target.exists():
            return False
    try:
        if sys.platform == "win32" and target.is_file():
            subprocess.Popen(["explorer", "/select,", str(target)])  # noqa: S603,S607
            return True
        if sys.platform == "darwin" and target.is_file():
            subprocess.Popen(["open", "-R", str(target)])  # noqa: S603,S607
            return True
    except OSError as exc:
        LOG.debug("could not select %s in the file manager: %s", target, exc)
    folder = target if target.is_dir() else target.parent
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def copy_text(text: str) -> None:
    QGuiApplication.clipboard().setText(text)


def civitai_url(ctx, image_id: int) -> str:
    """The image's page on the configured CivitAI site (the main or the NSFW site, or the API base)."""
    return image_page_url(ctx.api_base, image_id)


def open_on_civitai(ctx, image_id: int) -> bool:
    return QDesktopServices.openUrl(QUrl(civitai_url(ctx, image_id)))


# -- deleting ---------------------------------------------------------------------------------------


@dataclass
class FileRemoval:
    removed: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (path, why it was left)


async def known_roots(ctx, library) -> Roots:
    """Folders whose files the app may delete: the configured download folder and the library's
    roots (every download folder, convert destination and trusted classic folder)."""
    folders: list[str] = []
    configured = ctx.settings.get("output_dir")
    if configured:
        folders.append(configured)
    folders.append(ctx.default_output_dir())
    try:
        roots = await library.reader().roots()
    except Exception as exc:
        LOG.warning("could not read the chosen folders: %s", exc)
        roots = Roots()
    for folder in [*roots.folders, *folders]:
        roots = roots.with_folder(folder)
    return roots


def files_to_remove(deleted: DeletedImage) -> list[Path]:
    """The image's files and, next to each, its sidecars (`<id>.json`, `<id>_meta.txt`,
    `<id>_no_meta.txt`)."""
    paths: list[Path] = []
    for text in deleted.files:
        path = Path(text)
        paths.append(path)
        for name in (
            layouts.json_sidecar_name(deleted.id),
            layouts.meta_txt_name(deleted.id),
            layouts.no_meta_txt_name(deleted.id),
        ):
            paths.append(path.with_name(name))
    return list(dict.fromkeys(paths))


def remove_files(deleted: Iterable[DeletedImage], roots: Roots) -> FileRemoval:
    """Delete what the library pointed to, under the rules in the module docstring (runs in a
    worker thread: plain file operations only)."""
    outcome = FileRemoval()
    for image in deleted:
        prefix = str(image.id)
        for path in files_to_remove(image):
            if not path.exists() and not path.is_symlink():
                continue
            stem = path.name.split(".", 1)[0]
            if stem != prefix and not stem.startswith(prefix + "_"):
                outcome.kept.append((str(path), "not named after the image"))
                continue
            if path.is_dir() and not path.is_symlink():
                outcome.kept.append((str(path), "a folder"))
                continue
            try:
                roots.check(path, "delete")
            except OutsideRootsError:
                outcome.kept.append((str(path), "outside the folders you chose"))
                continue
            try:
                path.unlink()
                outcome.removed.append(str(path))
            except OSError as exc:
                outcome.kept.append((str(path), str(exc)))
    return outcome


# -- jobs on one image -----------------------------------------------------------------------------


def tags_options(ctx) -> dict[str, Any]:
    """The Tag Scraper page's method (or the settings'), one worker, this image only."""
    options: dict[str, Any] = {
        "method": ctx.settings.get("tag_method"),
        "workers": 1,
        "browser_path": ctx.settings.get("browser_path") or None,
    }
    return options


async def fetch_tags_now(ctx, image_id: int, *, window=None):
    """Start a tags job for one image; returns its JobHandle."""
    from civitgrab_desktop.jobs.tags import TagsJob, TagsParams

    page = window.pages.get("tags") if window is not None else None
    options = tags_options(ctx)
    if page is not None:
        options["method"] = page.options_dict().get("method") or options["method"]
    library = await ctx.library()
    # retag: "now" means fetch again even when known; claimed like any tags job, so a CLI or
    # another window working on the same library never fetches this image at the same time.
    params = TagsParams.from_dict({**options, "retag": True, "image_ids": [int(image_id)]})
    job_id = await library.create_job("tags", params.to_dict(), owner=new_owner())
    client = ctx.new_client(concurrency=1)
    job = TagsJob(library, client, params, job_id=job_id)

    async def cleanup() -> None:
        await client.close()

    return ctx.jobs.start(job, kind="tags", title=f"Tags · image {image_id}", params=options, cleanup=cleanup)


def convert_options(ctx, window=None) -> dict[str, Any]:
    """The Converter page's options (destination, quality...), else the settings' defaults with
    an organized copy into <download folder>/CivitAI_Browse."""
    page = window.pages.get("convert") if window is not None else None
    if page is not None and hasattr(page, "options_dict"):
        try:
            options = dict(page.options_dict())
            if options.get("in_place") or options.get("dest"):
                return options
        except Exception:
            pass
    s = ctx.settings
    return {
        "quality": s.get("convert_quality"),
        "lossless": s.get("convert_lossless"),
        "phash_threshold": s.get("phash_threshold"),
        "pg13_is_nsfw": s.get("pg13_is_nsfw"),
        "in_place": False,
        "dest": str(Path(ctx.default_output_dir()) / BROWSE_ROOT),
        "videos": "copy",
    }


async def convert_now(ctx, image_id: int, options: dict[str, Any]):
    """Start a convert job for one image with `options`; returns its JobHandle."""
    from civitgrab_desktop.jobs.convert import ConvertJob, ConvertParams

    options = {**options, "workers": 1, "batch_size": 1, "limit": 1, "username": None, "model_version": None,
               "source": None, "nsfw_class": None, "only_tagged": False, "image_ids": [int(image_id)]}
    params = ConvertParams.from_dict(options)
    params.check()
    library = await ctx.library()
    job_id = await library.create_job("convert", params.to_dict(), owner=new_owner())
    job = ConvertJob(library, params, job_id=job_id)  # claims the image: never converted twice
    where = "in place" if params.in_place else "to folder"
    return ctx.jobs.start(job, kind="convert", title=f"WebP · image {image_id} · {where}", params=options,
                          output_dir=options.get("dest"))


async def refresh_metadata_now(ctx, image_ids: list[int]):
    """Rewrite the EXIF/XMP of these images' converted WebP files from the library (images not
    converted are passed over by the job); returns its JobHandle."""
    from civitgrab_desktop.gui.job_factories import build_refresh_job
    from civitgrab_desktop.jobs.refresh_metadata import KIND

    options = {"image_ids": [int(i) for i in image_ids]}
    library = await ctx.library()
    job_id = await library.create_job(KIND, options, owner=new_owner())
    job = build_refresh_job(library, options, job_id=job_id)
    what = f"image {image_ids[0]}" if len(image_ids) == 1 else f"{len(image_ids)} images"
    ctx.statusMessage.emit(f"Refreshing the metadata of {what}…", 4000)
    return ctx.jobs.start(job, kind=KIND, title=f"Refresh metadata · {what}", params=options)
