"""Fetch one media file to a temporary `.part` file: streamed, typed, size-checked, verified, fsynced.

The type comes from Content-Type, then magic bytes, never from the URL. Images are checked by
their structure while the bytes stream (core/media/structure.py: PNG CRCs, the JPEG marker walk,
WebP chunk sizes), in the same worker-thread pass that writes and hashes them; videos get their
container walked once complete. An HTML page, a short body or bytes that break the structure are
a failed attempt (retried by the client's policy) and the `.part` file is removed. A full pixel
decode runs only for formats without a structure check (GIF), off the event loop.

Each attempt writes its own `.part` file, named for this host, process and attempt and created
with O_EXCL | O_NOFOLLOW: two transfers never share one, and a planted symlink is never followed.
The files of killed processes are swept by `sweep_stale_parts`. Nothing here ever writes a final name.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import itertools
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from civitgrab_desktop.core.civitai.client import (
    BadPayloadError,
    CivitaiClient,
    TransportError,
    UnreadableAnswerError,
    redact_url,
)
from civitgrab_desktop.core.library.owners import DOWNLOAD_LEASE_S, pid_alive, this_host
from civitgrab_desktop.core.media.sniff import MediaType, detect_type
from civitgrab_desktop.core.media.structure import StructureChecker, StructureError, has_structure_check
from civitgrab_desktop.core.media.verify import verify_media

CHUNK = 256 * 1024
FLUSH_AT = 1024 * 1024
# The transfers' writes get threads of their own: in the loop's shared executor they would
# queue behind the fsyncs of files being placed, and a transfer waiting for its write stops
# reading from the network.
IO_THREADS = 8
PART_SUFFIX = ".part"
_PART_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


@dataclass
class Fetched:
    part_path: Path
    media: MediaType
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    then_value: Any = None
    then_error: Exception | None = None

    def then_result(self) -> Any:
        """What the `then` step of fetch_to_part returned; raises what it raised."""
        if self.then_error is not None:
            raise self.then_error
        return self.then_value


_HOST_TAG = hashlib.blake2b(this_host().encode("utf-8"), digest_size=4).hexdigest()
_PART_RE = re.compile(r"\.(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[0-9a-f]{12,}\.part$")
# A transfer writes continuously (a stalled one times out in a minute), so a part file untouched
# for this long belongs to no live transfer, whichever host wrote it.
STALE_PART_AGE_S = 2 * DOWNLOAD_LEASE_S


_attempts = itertools.count()
_process_token = secrets.token_hex(4)


def part_name(stem_name: str) -> str:
    """A temporary name no other attempt or process uses: `<id>.<host>-<pid>-<random>.part`
    (the random part: this process's token and its attempt number, no system call per name)."""
    return f"{stem_name}.{_HOST_TAG}-{os.getpid()}-{_process_token}{next(_attempts):04x}{PART_SUFFIX}"


def sweep_stale_parts(folder: Path) -> set[str]:
    """Remove the `.part` files in `folder` that no live transfer writes: those of processes of
    this host that are gone, and any untouched for STALE_PART_AGE_S. Returns the names of what
    is left in the folder (empty when it does not exist)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return set()
    now = time.time()
    left = set()
    for entry in entries:
        left.add(entry.name)
        if not entry.name.endswith(PART_SUFFIX):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) and not entry.is_symlink():
                continue
            found = _PART_RE.search(entry.name)
            dead = found is not None and found["host"] == _HOST_TAG and not pid_alive(int(found["pid"]))
            if dead or now - entry.stat(follow_symlinks=False).st_mtime > STALE_PART_AGE_S:
                os.unlink(entry.path)
                left.discard(entry.name)
        except OSError:
            continue
    return left


def create_part(path: Path) -> int:
    """Create `path` for writing: never an existing file, never through a symlink."""
    try:
        return os.open(path, _PART_FLAGS, 0o666)
    except FileNotFoundError:  # the folder is new (usually it exists: no mkdir call then)
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, _PART_FLAGS, 0o666)


_io_pool: ThreadPoolExecutor | None = None
_io_pool_lock = threading.Lock()


def io_pool() -> ThreadPoolExecutor:
    global _io_pool
    with _io_pool_lock:
        if _io_pool is None:
            _io_pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="civitgrab-transfer-io")
        return _io_pool


class _PartWriter:
    """Writes, hashes and structure-checks the chunks in a worker thread (one pass per flush)."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None
        # A cancelled transfer discards its writer from another thread while a write may still
        # run: the descriptor is closed only between writes (a closed number can be reused at
        # once by another open, and the write would land in that file).
        self._lock = threading.Lock()
        self._discarded = False
        self._hash = hashlib.sha256()
        self._checker: StructureChecker | None = None
        self.media: MediaType | None = None
        self.size = 0

    def start(self, media: MediaType) -> None:
        self.media = media
        if has_structure_check(media):
            self._checker = StructureChecker(media)

    def write(self, chunks: list[bytes]) -> None:
        with self._lock:
            self._write(chunks)

    def _write(self, chunks: list[bytes]) -> None:
        if self._discarded:
            raise OSError(errno.ECANCELED, "the transfer was abandoned")
        if self._fd is None:
            self._fd = create_part(self.path)
        if not chunks:
            return
        # One buffer per flush: one hash update, one write; each call that releases the GIL
        # is a chance for the event loop's thread and this one to trade it back and forth.
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self._checker is not None:
            self._checker.feed(data)  # fail fast: no need to write the rest of a broken file
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._hash.update(data)
        self.size += len(data)

    def finish(self, last: list[bytes]) -> tuple[str, int | None, int | None]:
        """Write the `last` chunks, fsync and close; (sha256, width, height). Raises
        StructureError for a broken file (one thread hop for the end of every transfer)."""
        with self._lock:
            self._write(last)
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        if self._checker is not None:
            found = self._checker.finish()
            return self._hash.hexdigest(), found.width, found.height
        check = verify_media(self.path, self.media)  # videos: the container walk; GIF: a decode
        if not check.ok:
            raise StructureError(check.reason, permanent=check.permanent)
        return self._hash.hexdigest(), check.width, check.height

    def discard(self) -> None:
        with self._lock:
            self._discarded = True
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
            with contextlib.suppress(FileNotFoundError, OSError):
                self.path.unlink()


async def fetch_to_part(
    client: CivitaiClient,
    url: str,
    folder: Path,
    stem_name: str,
    *,
    stop_check: Callable[[], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    then: Callable[[Fetched], Any] | None = None,
) -> Fetched:
    """Download `url` into a new `.part` file in `folder` (named from `stem_name`, unique per
    attempt) with the client's file retry policy.

    `then(fetched)` runs in the same worker thread right after the file is complete, verified
    and fsynced (the caller places it: one thread hop per file instead of two). What it returns
    or raises is kept in `fetched.then_result()`; it is not part of the attempt (never retried).

    `stop_check` may raise to abort between chunks (a stop). A pause is not honoured mid-file:
    the file finishes, so a paused job never holds a transfer slot other jobs share."""
    loop = asyncio.get_running_loop()

    async def attempt() -> Fetched:
        writer = _PartWriter(folder / part_name(stem_name))
        counted = 0
        try:
            async with client.transfers, client.open(url) as resp:
                expected = resp.content_length
                buffer: list[bytes] = []
                buffered = 0
                media: MediaType | None = None
                try:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        if media is None:
                            media = detect_type(resp.headers.get("Content-Type"), chunk)
                            if media is None or media.kind not in ("image", "video"):
                                what = "an HTML page" if media is not None and media.kind == "html" else "something that is not media"
                                raise BadPayloadError(f"the server sent {what} instead of the file", url=redact_url(url))
                            writer.start(media)
                        buffer.append(chunk)
                        buffered += len(chunk)
                        counted += len(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
                        if buffered >= FLUSH_AT:
                            await _write(loop, writer, buffer, url)
                            buffer, buffered = [], 0
                        if stop_check:
                            stop_check()
                except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError) as exc:
                    raise TransportError(f"transfer interrupted: {exc or type(exc).__name__}", url=redact_url(url)) from exc
                if media is None:
                    raise BadPayloadError("the server sent an empty body", url=redact_url(url))
                if expected is not None and counted != expected:
                    raise TransportError(f"short body: {counted} of {expected} bytes", url=redact_url(url))
            try:
                return await loop.run_in_executor(io_pool(), _finish, writer, buffer, then)
            except StructureError as exc:
                # A decompression bomb (a GIF, the one image format still decoded here) is the same
                # bytes next time: fail once, not after every retry.
                error = UnreadableAnswerError if exc.permanent else BadPayloadError
                raise error(f"the file is broken: {exc}", url=redact_url(url)) from None
            except OSError as exc:
                raise _LocalWriteError(exc) from exc
        except _LocalWriteError as exc:
            if on_bytes and counted:
                on_bytes(-counted)
            await loop.run_in_executor(None, writer.discard)
            raise exc.error from None
        except BaseException:
            if on_bytes and counted:
                on_bytes(-counted)
            await loop.run_in_executor(None, writer.discard)
            raise

    return await client.retrying(attempt, kind="file", what=redact_url(url))


def _finish(writer: _PartWriter, last: list[bytes], then: Callable[[Fetched], Any] | None) -> Fetched:
    """In a worker thread: complete the part file, then run `then` on it."""
    digest, width, height = writer.finish(last)
    fetched = Fetched(writer.path, writer.media, writer.size, digest, width, height)
    if then is not None:
        try:
            fetched.then_value = then(fetched)
        except Exception as exc:  # the caller's step: handed back, not a failed transfer
            fetched.then_error = exc
    return fetched


class _LocalWriteError(Exception):
    """Writing the `.part` failed (a local problem such as a full disk, not the network)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


async def _write(loop: asyncio.AbstractEventLoop, writer: _PartWriter, chunks: list[bytes], url: str) -> None:
    try:
        await loop.run_in_executor(io_pool(), writer.write, chunks)
    except StructureError as exc:
        raise BadPayloadError(f"the file is broken: {exc}", url=redact_url(url)) from None
    except OSError as exc:
        raise _LocalWriteError(exc) from exc
