"""File placement for the convert job (worker side): temp names, sidecars, finishing an in-place
conversion, and putting videos into the organized layout.

In place, other query folders may hold a hard link (or a copy) of the original. Each one is
replaced by a link to the WebP under the WebP's name, so no folder loses the image; a file there
that is not the original (different inode and content) is left alone and reported. The original
itself is removed last, after the WebP was verified and every copy was replaced.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.media import files
from civitgrab_desktop.core.media.embed import file_image_id
from civitgrab_desktop.core.media.sniff import SNIFF_BYTES, type_from_magic
from civitgrab_desktop.core.media.verify import verify_media
from civitgrab_desktop.core.organize import sidecars
from civitgrab_desktop.jobs.convert_tasks import ItemFailed, ItemSkipped, TaskResult, VideoTask


def temp_name(final: Path) -> Path:
    """A hidden name next to `final`; never a final name, so a crash leaves no half file there."""
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")


def remove_stale_temps(final: Path) -> None:
    """Temp files of `final` and of its `.json` sidecar left by a killed run (we hold the claim:
    nobody else writes them). Hidden names, never final ones: only space is at stake."""
    for name in (final.name, final.with_suffix(".json").name):
        with contextlib.suppress(OSError):
            for stale in final.parent.glob(f".{glob_escape(name)}.*.tmp"):
                with contextlib.suppress(OSError):
                    stale.unlink()


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def link_over(src: Path, dst: Path, *, hardlink: bool = True) -> str:
    """Make `dst` the same file as `src` (hard link, else a copy), replacing what is at `dst`
    atomically. Returns "hardlink" or "copy". `hardlink=False` always copies: a read-only file
    (outside the chosen folders) must never share its inode with a file we may change later."""
    if hardlink and _same_file(src, dst):  # a killed run got this far already
        return "hardlink"
    tmp = temp_name(dst)
    try:
        try:
            if not hardlink:
                raise OSError("a copy was asked for")
            os.link(src, tmp)
            how = "hardlink"
        except OSError:
            with open(src, "rb") as inp, open(tmp, "xb") as out:
                shutil.copyfileobj(inp, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            shutil.copystat(src, tmp)
            how = "copy"
        os.replace(tmp, dst)
    finally:
        # rename() of a hard link onto another link of the same file does nothing and succeeds:
        # the temp link would stay. After a real rename the temp name is gone already.
        with contextlib.suppress(OSError):
            tmp.unlink()
    files.fsync_dir(dst.parent)
    return how


def written_for(path: Path, image_id: int) -> bool:
    """Is `path` a WebP the converter wrote for `image_id` (our XMP record, or the first
    format's EXIF, with this id)? The converter only puts a file under a final name after it
    was verified; the tags job rewrites the metadata of recorded conversions only."""
    return file_image_id(path) == image_id


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_sidecar(media: Path, record: dict[str, Any], tags: list[dict[str, Any]], extra: dict | None) -> None:
    """`<id>.json` next to `media`: the full API record, the tags, and what the converter adds."""
    if record:
        sidecars.write_json_sidecar(media.with_suffix(".json"), record, tags=tags, extra=extra)


def _is_copy_of_original(path: Path, original: os.stat_result | None, sha256: str | None) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    if original is not None and os.path.samestat(st, original):
        return True
    return bool(sha256) and files.sha256_file(path) == sha256


def finish_in_place(task, original_stat: os.stat_result | None, final: Path, result: TaskResult,
                    extra: dict | None) -> None:
    """After the WebP is verified at `final`: replace every copy of the original in other query
    folders with a link to it, then remove the original. Fills result.moved_paths."""
    src = Path(task.src)
    for copy in task.copies:
        old = Path(copy)
        new = old.with_name(final.name)
        if old in (src, final) or new == final:
            continue
        if not (task.roots.contains(old) and task.roots.contains(new)):
            result.notes.append(f"image {task.image_id}: left {old} as it is: it is outside the folders you chose")
            continue
        remove_stale_temps(new)
        if old.exists() and not _same_file(old, final):
            if not _is_copy_of_original(old, original_stat, task.sha256):
                result.notes.append(f"image {task.image_id}: left {old} in place: it is not a copy of the original")
                continue
            link_over(final, new)
            if new != old:
                old.unlink()
                files.fsync_dir(old.parent)
        elif not new.exists():
            continue  # that folder had lost the file already; nothing to point at
        elif not _same_file(new, final):
            if not written_for(new, task.image_id):
                result.notes.append(f"image {task.image_id}: left {new} in place: civitgrab did not write it")
                continue
            link_over(final, new)  # a killed run's link to an earlier encode: share this one
        # (again after a killed run: its sidecar may be the download's, or half written)
        write_sidecar(new, task.record, task.tags, extra)
        if new != old:
            result.moved_paths[str(old)] = str(new)
    if src != final and src.exists():
        task.roots.check(src, "delete")
        src.unlink()
        files.fsync_dir(src.parent)
    result.original_removed = True


def place_video(task: VideoTask) -> TaskResult:
    """Copy (hard link when possible) or move a video into the organized layout, with its sidecar.
    The container is checked first (complete, playable structure); it is never transcoded."""
    src = Path(task.src)
    if not src.is_file():
        moved = _moved_before(task)
        if moved is not None:
            return moved
        raise ItemFailed(f"the video file is missing: {src}")
    with open(src, "rb") as fh:
        kind = type_from_magic(fh.read(SNIFF_BYTES))
    if kind is None or not kind.is_video:
        raise ItemSkipped(f"not a video file ({kind.mime if kind else 'unknown format'})")
    check = verify_media(src, kind)
    if not check.ok:
        raise ItemFailed(f"the video is damaged: {check.reason}")
    out_dir = Path(task.out_dir)
    dst = out_dir / f"{task.image_id}{src.suffix.lower() or kind.ext}"
    task.roots.check(dst, "write")
    out_dir.mkdir(parents=True, exist_ok=True)
    size = src.stat().st_size
    remove_stale_temps(dst)
    changeable = task.roots.contains(src)  # a read-only original is copied, never moved or linked
    notes = []
    if task.move and not changeable:
        notes.append(f"image {task.image_id}: copied {src} instead of moving it: it is outside the folders you chose")
    if dst == src:
        how = "in place"
    elif task.move and changeable:
        how = _move(src, dst)
    else:
        how = link_over(src, dst, hardlink=changeable)
    write_sidecar(dst, task.record, task.tags, None)
    if how == "moved":
        _carry_sidecars(src, dst, task.image_id)
    return TaskResult(
        task.image_id, "converted", how=how, webp_path=str(dst), src_bytes=size, webp_bytes=size,
        original_removed=how == "moved", notes=notes,
    )


def _carry_sidecars(src: Path, dst: Path, image_id: int) -> None:
    """A moved video takes its sidecars along: the old `<id>.json` is replaced by the one just
    written beside `dst` (which has everything it had), the classic `<id>_meta.txt` /
    `<id>_no_meta.txt` move next to it. Only files that name this image are touched."""
    old_json = src.with_name(f"{image_id}.json")
    if old_json != dst.with_suffix(".json") and old_json.is_file():
        with contextlib.suppress(OSError, sidecars.SidecarError):
            if sidecars.read_json_sidecar(old_json).get("id") == image_id:
                old_json.unlink()
    for suffix in ("_meta.txt", "_no_meta.txt"):
        old = src.with_name(f"{image_id}{suffix}")
        new = dst.with_name(old.name)
        if old != new and old.is_file():
            with contextlib.suppress(OSError):
                os.replace(old, new)
    files.fsync_dir(src.parent)
    files.fsync_dir(dst.parent)


def _moved_before(task: VideoTask) -> TaskResult | None:
    """A run killed after moving this video but before recording it: the video is at its place
    in the organized folder (same content as the download). Finish the bookkeeping."""
    if not task.move or not task.sha256 or not task.roots.contains(task.src):
        return None
    src = Path(task.src)
    dst = Path(task.out_dir) / f"{task.image_id}{src.suffix.lower()}"
    task.roots.check(dst, "write")
    if dst == src or not dst.is_file() or files.sha256_file(dst) != task.sha256:
        return None
    remove_stale_temps(dst)
    write_sidecar(dst, task.record, task.tags, None)
    _carry_sidecars(src, dst, task.image_id)
    size = dst.stat().st_size
    return TaskResult(
        task.image_id, "converted", how="moved", webp_path=str(dst), src_bytes=size, webp_bytes=size,
        original_removed=True, notes=[f"image {task.image_id}: finished a move interrupted before it was recorded"],
    )


def _move(src: Path, dst: Path) -> str:
    if _same_file(src, dst):  # an earlier copy run linked it there: rename() would do nothing
        src.unlink()
    else:
        try:
            os.replace(src, dst)
        except OSError:  # another file system: copy, then remove the original
            link_over(src, dst)
            src.unlink()
    files.fsync_dir(dst.parent)
    files.fsync_dir(src.parent)
    return "moved"
