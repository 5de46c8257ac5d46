"""Fetch one media file to a `.part` file: streamed, typed, size-checked, verified, fsynced.

The type comes from Content-Type, then magic bytes, never from the URL. An HTML page, a short
body or bytes that do not decode are a failed attempt (retried by the client's policy), and the
`.part` file is removed; nothing here ever writes a final name.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from civitgrab_desktop.core.civitai.client import (
    BadPayloadError,
    CivitaiClient,
    TransportError,
    UnreadableAnswerError,
    redact_url,
)
from civitgrab_desktop.core.media.sniff import MediaType, detect_type
from civitgrab_desktop.core.media.verify import verify_media

CHUNK = 256 * 1024
FLUSH_AT = 1024 * 1024


@dataclass
class Fetched:
    part_path: Path
    media: MediaType
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None


class _PartWriter:
    """Buffers chunks on the loop and writes/hashes them in a worker thread."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = None
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunks: list[bytes]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in finish()/discard()
        for chunk in chunks:
            self._fh.write(chunk)
            self._hash.update(chunk)
            self.size += len(chunk)

    def finish(self) -> str:
        if self._fh is None:
            self.write([])
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        return self._hash.hexdigest()

    def discard(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        with contextlib.suppress(FileNotFoundError, OSError):
            self.path.unlink()


async def fetch_to_part(
    client: CivitaiClient,
    url: str,
    part_path: Path,
    *,
    stop_check: Callable[[], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Fetched:
    """Download `url` into `part_path` with the client's file retry policy.

    `stop_check` may raise to abort between chunks (a stop). A pause is not honoured mid-file:
    the file finishes, so a paused job never holds a transfer slot other jobs share."""
    loop = asyncio.get_running_loop()

    async def attempt() -> Fetched:
        writer = _PartWriter(part_path)
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
                        buffer.append(chunk)
                        buffered += len(chunk)
                        counted += len(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
                        if buffered >= FLUSH_AT:
                            await loop.run_in_executor(None, writer.write, buffer)
                            buffer, buffered = [], 0
                        if stop_check:
                            stop_check()
                except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError) as exc:
                    raise TransportError(f"transfer interrupted: {exc or type(exc).__name__}", url=redact_url(url)) from exc
                if media is None:
                    raise BadPayloadError("the server sent an empty body", url=redact_url(url))
                if expected is not None and counted != expected:
                    raise TransportError(f"short body: {counted} of {expected} bytes", url=redact_url(url))
                await loop.run_in_executor(None, writer.write, buffer)
            digest = await loop.run_in_executor(None, writer.finish)
            check = await loop.run_in_executor(None, verify_media, part_path, media)
            if not check.ok:
                # A decompression bomb is the same bytes next time: fail once, not after every retry.
                error = UnreadableAnswerError if check.permanent else BadPayloadError
                raise error(f"the file does not decode: {check.reason}", url=redact_url(url))
            return Fetched(part_path, media, writer.size, digest, check.width, check.height)
        except BaseException:
            if on_bytes and counted:
                on_bytes(-counted)
            await loop.run_in_executor(None, writer.discard)
            raise

    return await client.retrying(attempt, kind="file", what=redact_url(url))
