"""File operations the organizer and converter share: hashing, link-or-copy, durable renames."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "atomic_output",
    "copy_atomic",
    "fsync_dir",
    "link_or_copy",
    "parse_iso_datetime",
    "set_mtime",
    "sha256_file",
]

LOG = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _FolderSyncs:
    """Per folder: the syncs started so far, and a lock held while one runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = 0


_folder_syncs: dict[str, _FolderSyncs] = {}
_folder_syncs_guard = threading.Lock()


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename or new file in `path` durable. A no-op where folders cannot be opened (Windows).

    Calls for one folder from several threads share syncs (a group commit): a caller whose
    changes are already covered by a sync that started after its call, and has finished,
    returns without one. Five downloads placing files in one folder pay one sync, not five."""
    if os.name == "nt":
        return
    key = os.fspath(path)
    with _folder_syncs_guard:
        syncs = _folder_syncs.get(key)
        if syncs is None:
            if len(_folder_syncs) >= 1024:
                _folder_syncs.clear()  # bounded; only sharing is lost, never a sync
            syncs = _folder_syncs[key] = _FolderSyncs()
        seen = syncs.started
    with syncs.lock:
        if syncs.started != seen:
            return  # a sync that began after our changes has finished while we waited
        syncs.started += 1
        _fsync_folder(path)


def _fsync_folder(path: str | os.PathLike) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (network, FUSE) refuse; nothing more we can do
        pass
    finally:
        os.close(fd)


def _same_content(src: Path, dst: Path) -> bool:
    try:
        if os.path.samefile(src, dst):
            return True
        if src.stat().st_size != dst.stat().st_size:
            return False
    except OSError:
        return False
    return sha256_file(src) == sha256_file(dst)


@contextlib.contextmanager
def atomic_output(
    dst: str | os.PathLike, *, durable: bool = True, keep_stat_of: str | os.PathLike | None = None
) -> Iterator[BinaryIO]:
    """Write through a temp file next to `dst`, renamed over it only when the block succeeds.

    `durable` fsyncs the file and the folder (skip it for caches); `keep_stat_of` copies that
    file's mode and times onto the result.
    """
    dst = Path(dst)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        if keep_stat_of is not None:
            shutil.copystat(keep_stat_of, tmp)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(dst.parent)


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy through a temp file next to `dst` (fsynced, then renamed); keeps src's mode and times."""
    with atomic_output(dst, keep_stat_of=src) as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out, _CHUNK)


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike, *, hardlink: bool = True) -> str:
    """Put `src`'s content at `dst`: "hardlink", else "copy" (other device, FAT, no permission).

    "exists" when `dst` already is that file or holds the same bytes. A different file already at
    `dst` raises FileExistsError: nothing on disk is ever overwritten by surprise.
    `hardlink=False` always copies (a read-only source must not share its inode with our files).
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"{src} is not a file")
    if dst.exists():
        if _same_content(src, dst):
            return "exists"
        raise FileExistsError(f"{dst} exists with different content")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not hardlink:
        copy_atomic(src, dst)
        return "copy"
    try:
        os.link(src, dst)
    except FileExistsError:
        if _same_content(src, dst):  # another process got there first
            return "exists"
        raise
    except OSError as exc:
        LOG.debug("hard link %s -> %s impossible (%s); copying", src, dst, exc)
        copy_atomic(src, dst)
        return "copy"
    fsync_dir(dst.parent)
    return "hardlink"


def parse_iso_datetime(value: str | None) -> dt.datetime | None:
    """An aware UTC datetime from the API's ISO 8601 text (`2024-01-02T03:04:05.678Z`); None if unusable.

    Text without an offset is taken as UTC, which is what the API sends.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def set_mtime(path: str | os.PathLike, iso_datetime: str | None) -> float | None:
    """Set the file's access and modification times to the image's `createdAt`.

    Returns the timestamp set, or None (file untouched) when the date is missing or unparsable.
    """
    when = parse_iso_datetime(iso_datetime)
    if when is None:
        return None
    stamp = when.timestamp()
    os.utime(path, (stamp, stamp))
    return stamp
