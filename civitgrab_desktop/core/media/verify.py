"""Is a file a complete image or video? The thorough check, for the exceptions.

Downloads check images by their structure while they stream (structure.py), which is cheaper
and catches as much; this module decodes them in full, for the files that have no structure
check (GIF), the rare ones found on disk without a record (jobs/download_transfer.py), and
converts.
Images are decoded in full: Pillow's `verify()` checks the structure (PNG CRCs), then a second
open + `load()` decodes the pixels, which catches truncation `verify()` misses (JPEG). For
animations the last frame is decoded too, so a file cut in a later frame fails.
Videos are not decoded (too slow, needs codecs); their container is checked instead: every box or
element must fit inside the file, so a truncated download fails, and the parts a player needs
first (MP4 `ftyp` + `moov`, WebM EBML header + Segment with Tracks and a Cluster) must be there.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from civitgrab_desktop.core.media.sniff import GIF, JPEG, MKV, MOV, MP4, PNG, WEBM, WEBP, MediaType

_PIL_FORMATS = {PNG: {"PNG"}, JPEG: {"JPEG", "MPO"}, WEBP: {"WEBP"}, GIF: {"GIF"}}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str = ""
    width: int | None = None
    height: int | None = None
    permanent: bool = False  # the same bytes would fail again (too large to decode): no retry


class _Broken(Exception):
    """The container is not what it should be; the message is the reason."""


def verify_media(source: str | os.PathLike | bytes, expected: MediaType) -> VerifyResult:
    """Check `source` (a path or the bytes) is a complete file of type `expected`."""
    try:
        if expected in _PIL_FORMATS:
            return _verify_image(source, expected)
        with _open(source) as fh:
            size = _stream_size(fh)
            if expected in (MP4, MOV):
                return _verify_mp4(fh, size)
            if expected in (WEBM, MKV):
                return _verify_ebml(fh, size)
    except _Broken as exc:
        return VerifyResult(False, str(exc))
    except OSError as exc:
        return VerifyResult(False, f"cannot read the file: {exc}")
    return VerifyResult(False, f"{expected.mime} is not a media type we keep")


def _open(source: str | os.PathLike | bytes) -> BinaryIO:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    return open(source, "rb")


def _stream_size(fh: BinaryIO) -> int:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    return size


# --- images ----------------------------------------------------------------------------------


def _verify_image(source: str | os.PathLike | bytes, expected: MediaType) -> VerifyResult:
    # Imported here: downloads check images by structure, so most runs never need Pillow.
    from PIL import Image

    try:
        with _open(source) as fh, Image.open(fh) as im:
            if im.format not in _PIL_FORMATS[expected]:
                return VerifyResult(False, f"the file is {im.format}, expected {expected.mime}")
            im.verify()
        with _open(source) as fh, Image.open(fh) as im:
            width, height = im.size
            im.load()
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                im.seek(frames - 1)
                im.load()
    except Image.DecompressionBombError as exc:
        return VerifyResult(False, f"the image is too large to decode safely ({exc})", permanent=True)
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, struct.error...)
        if isinstance(exc, Image.UnidentifiedImageError):
            return VerifyResult(False, f"not a readable image (expected {expected.mime})")
        return VerifyResult(False, f"broken image: {type(exc).__name__}: {exc}")
    return VerifyResult(True, "", width, height)


# --- MP4 / QuickTime -------------------------------------------------------------------------


def _boxes(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload offset, payload end) of each box in [start, end); raises _Broken on overrun."""
    pos = start
    while pos < end:
        if end - pos < 8:
            raise _Broken(f"{end - pos} stray bytes at offset {pos} (truncated box header)")
        fh.seek(pos)
        size, kind = struct.unpack(">I4s", fh.read(8))
        header = 8
        if size == 1:
            raw = fh.read(8)
            if len(raw) < 8:
                raise _Broken("truncated 64-bit box size")
            size = struct.unpack(">Q", raw)[0]
            header = 16
        elif size == 0:  # "to the end of the file"
            size = end - pos
        if not all(32 <= b < 127 for b in kind):
            raise _Broken(f"garbage box type {kind!r} at offset {pos}")
        if size < header:
            raise _Broken(f"box {kind.decode()!r} at offset {pos} has an impossible size {size}")
        if pos + size > end:
            raise _Broken(f"box {kind.decode()!r} at offset {pos} runs past the end (truncated file)")
        yield kind, pos + header, pos + size
        pos += size


def _tkhd_size(fh: BinaryIO, start: int, end: int) -> tuple[int, int] | None:
    fh.seek(start)
    version = fh.read(1)
    # width/height (16.16 fixed point) are the last 8 bytes of tkhd
    offset = 76 if version == b"\x00" else 88
    if end - start < offset + 8:
        return None
    fh.seek(start + offset)
    width, height = struct.unpack(">II", fh.read(8))
    return width >> 16, height >> 16


def _video_size(fh: BinaryIO, moov_start: int, moov_end: int) -> tuple[int | None, int | None]:
    for kind, start, end in _boxes(fh, moov_start, moov_end):
        if kind != b"trak":
            continue
        for child, c_start, c_end in _boxes(fh, start, end):
            if child == b"tkhd":
                size = _tkhd_size(fh, c_start, c_end)
                if size and size[0] and size[1]:
                    return size
    return None, None


def _verify_mp4(fh: BinaryIO, size: int) -> VerifyResult:
    top = [(kind, start, end) for kind, start, end in _boxes(fh, 0, size)]
    kinds = [kind for kind, _, _ in top]
    if b"ftyp" not in kinds:
        raise _Broken("no 'ftyp' box: not an MP4/QuickTime file")
    moov = next(((s, e) for k, s, e in top if k == b"moov"), None)
    if moov is None:
        raise _Broken("no 'moov' box (the index a player needs; truncated or still being written)")
    if b"mvhd" not in [kind for kind, _, _ in _boxes(fh, *moov)]:
        raise _Broken("'moov' box has no 'mvhd' header")
    width, height = _video_size(fh, *moov)
    return VerifyResult(True, "", width, height)


# --- WebM / Matroska (EBML) ------------------------------------------------------------------

_EBML = 0x1A45DFA3
_DOCTYPE = 0x4282
_SEGMENT = 0x18538067
_TRACKS = 0x1654AE6B
_CLUSTER = 0x1F43B675
_TRACK_ENTRY = 0xAE
_VIDEO = 0xE0
_PIXEL_WIDTH = 0xB0
_PIXEL_HEIGHT = 0xBA


def _read_vint(fh: BinaryIO, keep_marker: bool) -> tuple[int | None, int]:
    """(value, length) of an EBML variable-size integer; value None = "unknown size"."""
    first = fh.read(1)
    if not first:
        raise _Broken("truncated EBML element")
    b0 = first[0]
    length = 1
    while length <= 8 and not b0 & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise _Broken("invalid EBML number")
    rest = fh.read(length - 1)
    if len(rest) < length - 1:
        raise _Broken("truncated EBML element")
    value = b0 if keep_marker else b0 & (0xFF >> length)
    for b in rest:
        value = (value << 8) | b
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return None, length
    return value, length


def _elements(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[int, int, int | None]]:
    """(id, payload offset, payload end or None if unknown-size) of each element in [start, end)."""
    pos = start
    while pos < end:
        fh.seek(pos)
        element_id, id_len = _read_vint(fh, keep_marker=True)
        size, size_len = _read_vint(fh, keep_marker=False)
        data = pos + id_len + size_len
        if size is None:
            yield element_id, data, None
            return
        if data + size > end:
            raise _Broken(f"EBML element 0x{element_id:X} at offset {pos} runs past the end (truncated file)")
        yield element_id, data, data + size
        pos = data + size


def _children(fh: BinaryIO, start: int, end: int, wanted: int) -> Iterator[tuple[int, int]]:
    for element_id, c_start, c_end in _elements(fh, start, end):
        if element_id == wanted and c_end is not None:
            yield c_start, c_end


def _read_bytes(fh: BinaryIO, start: int, end: int) -> bytes:
    fh.seek(start)
    return fh.read(end - start)


def _read_uint(fh: BinaryIO, start: int, end: int) -> int:
    return int.from_bytes(_read_bytes(fh, start, end), "big")


def _webm_size(fh: BinaryIO, tracks: tuple[int, int]) -> tuple[int | None, int | None]:
    for entry in _children(fh, *tracks, _TRACK_ENTRY):
        for video in _children(fh, *entry, _VIDEO):
            dims = {eid: (s, e) for eid, s, e in _elements(fh, *video) if e is not None}
            if _PIXEL_WIDTH in dims and _PIXEL_HEIGHT in dims:
                return _read_uint(fh, *dims[_PIXEL_WIDTH]), _read_uint(fh, *dims[_PIXEL_HEIGHT])
    return None, None


def _verify_ebml(fh: BinaryIO, size: int) -> VerifyResult:
    top = _elements(fh, 0, size)
    first = next(top, None)
    if first is None or first[0] != _EBML or first[2] is None:
        raise _Broken("no EBML header: not a WebM/Matroska file")
    for start, end in _children(fh, first[1], first[2], _DOCTYPE):
        doctype = _read_bytes(fh, start, end).rstrip(b"\x00")
        if doctype not in (b"webm", b"matroska"):
            raise _Broken(f"EBML document type {doctype!r} is not WebM/Matroska")
    segment = next(top, None)
    if segment is None or segment[0] != _SEGMENT:
        raise _Broken("no Segment after the EBML header (truncated file)")
    seg_end = segment[2] if segment[2] is not None else size
    tracks = None
    has_cluster = False
    for element_id, start, end in _elements(fh, segment[1], seg_end):
        if element_id == _TRACKS and end is not None:
            tracks = (start, end)
        elif element_id == _CLUSTER:
            has_cluster = True
        if end is None:  # a live-style unknown-size element: cannot skip past it cheaply
            break
    if tracks is None:
        raise _Broken("no Tracks element in the Segment")
    if not has_cluster:
        raise _Broken("no Cluster (no frames) in the Segment")
    width, height = _webm_size(fh, tracks)
    return VerifyResult(True, "", width, height)
