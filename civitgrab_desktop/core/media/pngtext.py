"""Text chunks of a PNG (A1111/Forge/ComfyUI write their generation settings there).

Read by walking the chunks, not by decoding the image: it is fast, and it also finds text chunks
written after the image data, which Pillow only reports after a full `load()`.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_TEXT = 16 * 1024 * 1024  # ignore absurd chunks rather than allocate them


def _decode_latin1_text(raw: bytes) -> str:
    # tEXt is Latin-1 by spec, but some tools write UTF-8 into it.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_text_chunk(kind: bytes, data: bytes) -> tuple[str, str] | None:
    keyword, sep, rest = data.partition(b"\x00")
    if not sep:
        return None
    key = keyword.decode("latin-1")
    try:
        if kind == b"tEXt":
            return key, _decode_latin1_text(rest)
        if kind == b"zTXt":  # compression method byte, then zlib data
            return key, _decode_latin1_text(zlib.decompress(rest[1:]))
        # iTXt: compression flag, method, language\0, translated keyword\0, UTF-8 text
        flag = rest[0]
        _lang, _, rest = rest[2:].partition(b"\x00")
        _translated, _, text = rest.partition(b"\x00")
        if flag:
            text = zlib.decompress(text)
        return key, text.decode("utf-8", errors="replace")
    except (zlib.error, IndexError):
        return None


def _chunks(fh: BinaryIO):
    while True:
        header = fh.read(8)
        if len(header) < 8:
            return
        length, kind = struct.unpack(">I4s", header)
        yield length, kind
        if kind == b"IEND":
            return


def png_text(path: str | os.PathLike) -> dict[str, str]:
    """All text chunks of a PNG as {keyword: text} (first one wins); {} for anything else."""
    found: dict[str, str] = {}
    with open(path, "rb") as fh:
        if fh.read(8) != PNG_SIGNATURE:
            return found
        for length, kind in _chunks(fh):
            if kind in (b"tEXt", b"zTXt", b"iTXt") and length <= _MAX_TEXT:
                data = fh.read(length)
                fh.seek(4, os.SEEK_CUR)  # CRC
                parsed = _parse_text_chunk(kind, data)
                if parsed and parsed[0] not in found:
                    found[parsed[0]] = parsed[1]
            else:
                fh.seek(length + 4, os.SEEK_CUR)
    return found


def png_parameters(path: str | os.PathLike) -> str | None:
    """The A1111-style `parameters` text of a PNG, or None."""
    return png_text(path).get("parameters") or None
