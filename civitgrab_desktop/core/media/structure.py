"""Is a PNG, JPEG or WebP complete and well formed? Checked by its structure, while it streams.

A full pixel decode costs tens of milliseconds and tens of MB per image; walking the container
costs a CRC or a byte scan over the data, which the download does anyway as it writes. What each
format lets us prove:

* PNG: the signature, IHDR first, every chunk's length and CRC-32, at least one IDAT, IEND last
  and nothing after it. The CRCs cover every byte, so junk, a flipped byte or a cut is caught.
* JPEG: SOI, then a walk of every marker segment and its length, a frame header (SOF) before the
  first scan (SOS), the entropy-coded data scanned to its next marker (only stuffed 0xFF00 and
  restart markers may appear inside it), EOI at the very end. Further images after EOI must be
  complete JPEGs too (MPO: the multi-picture files of phone cameras).
* WebP: RIFF size equal to the file size, then every chunk's size; the first chunk is VP8, VP8L
  or VP8X and its header is valid (VP8 key-frame start code, VP8L signature and version), an
  extended file carries its frames (VP8/VP8L, or ANIM + ANMF frames whose sub-chunks fit).

`StructureChecker.feed` takes the bytes as they arrive (any split) and fails as soon as they
cannot be the expected format; `finish` says whether the file ended where the structure ends.
Nothing here decodes pixels; see verify.py for the full decode, kept for the rare exception.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Generator
from dataclasses import dataclass

from civitgrab_desktop.core.media.sniff import JPEG, PNG, WEBP, MediaType


class StructureError(Exception):
    """The bytes are not a complete, well-formed file of the expected type; the message says why.
    `permanent`: the same bytes would fail again (an image too large to decode safely), so a
    download is not retried."""

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class Structure:
    """What a passing check learnt: the picture's size, when its header tells."""

    width: int | None = None
    height: int | None = None


# --- the incremental driver ------------------------------------------------------------------
# A format is a generator that yields what it needs next and receives it: _Read(n) -> the next n
# bytes; _Skip(n, crc) -> n bytes passed over (CRC-32 updated over them when crc is an int);
# _ScanToMarker() -> the byte after the next JPEG marker's 0xFF in entropy-coded data;
# _AtEnd() -> True when the file ends here (asked once the structure is complete).


@dataclass
class _Read:
    n: int


@dataclass
class _Skip:
    n: int
    crc: int | None = None


class _ScanToMarker:
    pass


class _AtEnd:
    pass


_Parser = Generator[object, object, Structure]
# In entropy-coded data 0xFF is followed by 0x00 (a stuffed byte), a restart marker (D0-D7) or
# more 0xFF fill bytes; anything else is the next marker.
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


class StructureChecker:
    """Feed the bytes of one file in order; `finish()` returns its Structure or raises."""

    def __init__(self, media: MediaType):
        parsers = {PNG: _png, JPEG: _jpeg, WEBP: _webp}
        if media not in parsers:
            raise ValueError(f"no structure check for {media.mime}")
        self.media = media
        self.offset = 0  # bytes taken so far
        self._gen: _Parser = parsers[media]()
        self._buf = bytearray()
        self._result: Structure | None = None
        self._request = self._gen.send(None)
        self._carry_ff = False  # a scan stopped on a trailing 0xFF: its meaning is in the next bytes

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        pos, end = 0, len(view)
        while pos < end:
            if self._result is not None:
                raise StructureError(f"bytes after the end of the {self.media.ext[1:].upper()} data")
            request = self._request
            if isinstance(request, _AtEnd):
                self._advance(False)  # more bytes follow: the format says whether they may
                continue
            if isinstance(request, _Read):
                take = min(request.n - len(self._buf), end - pos)
                self._buf += view[pos : pos + take]
                pos += take
                self.offset += take
                if len(self._buf) == request.n:
                    value = bytes(self._buf)
                    self._buf.clear()
                    self._advance(value)
            elif isinstance(request, _Skip):
                take = min(request.n, end - pos)
                if request.crc is not None:
                    request.crc = _crc32(view[pos : pos + take], request.crc)
                request.n -= take
                pos += take
                self.offset += take
                if request.n == 0:
                    self._advance(request.crc)
            else:  # _ScanToMarker
                pos = self._scan(view, pos, end)

    def _scan(self, view: memoryview, pos: int, end: int) -> int:
        if self._carry_ff:
            self._carry_ff = False
            byte = view[pos]
            self.offset += 1
            if byte not in (0x00, 0xFF) and not 0xD0 <= byte <= 0xD7:
                self._advance(byte)
                return pos + 1
            if byte == 0xFF:
                self._carry_ff = True
            pos += 1
            if pos >= end:
                return pos
        chunk = view[pos:end]
        found = _MARKER_IN_SCAN.search(chunk)
        if found is None:
            self._carry_ff = chunk[-1] == 0xFF if len(chunk) else False
            self.offset += end - pos
            return end
        marker_end = pos + found.end()
        self.offset += marker_end - pos
        self._advance(view[marker_end - 1])
        return marker_end

    def _advance(self, value: object) -> None:
        try:
            self._request = self._gen.send(value)
        except StopIteration as stop:
            self._result = stop.value
        except StructureError as exc:
            raise StructureError(f"{exc} (at byte {self.offset})") from None

    def finish(self) -> Structure:
        """The file ended: its Structure, or StructureError when it ended too early."""
        if isinstance(self._request, _AtEnd) and self._result is None:
            self._advance(True)
        if self._result is None:
            raise StructureError(f"the file ends after {self.offset} bytes, inside its structure (truncated)")
        return self._result


# zlib releases the GIL for buffers over 5 KB; a PNG's 64 KB chunks would hand the GIL to the
# event loop's thread and back a dozen times per MB. In 4 KB pieces the CRC keeps it (same speed).
_CRC_PIECE = 4096


def _crc32(data: memoryview, crc: int) -> int:
    for start in range(0, len(data), _CRC_PIECE):
        crc = zlib.crc32(data[start : start + _CRC_PIECE], crc)
    return crc


def check_structure(data: bytes, media: MediaType) -> Structure:
    """One-shot form of StructureChecker for bytes already in memory."""
    checker = StructureChecker(media)
    checker.feed(data)
    return checker.finish()


def has_structure_check(media: MediaType) -> bool:
    return media in (PNG, JPEG, WEBP)


# --- PNG -------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MAX_CHUNK = 2**31 - 1


def _png() -> _Parser:
    if (yield _Read(8)) != _PNG_SIGNATURE:
        raise StructureError("no PNG signature")
    width = height = None
    seen_idat = False
    first = True
    while True:
        header = yield _Read(8)
        length, kind = struct.unpack(">I4s", header)
        if length > _PNG_MAX_CHUNK:
            raise StructureError(f"PNG chunk length {length} is impossible")
        if not kind.isalpha() or not kind.isascii():
            raise StructureError(f"garbage PNG chunk type {kind!r}")
        if first and kind != b"IHDR":
            raise StructureError(f"the first PNG chunk is {kind.decode('ascii')!r}, not IHDR")
        if kind == b"IHDR":
            if not first or length != 13:
                raise StructureError("misplaced or malformed IHDR")
            body = yield _Read(13)
            width, height = struct.unpack(">II", body[:8])
            if not width or not height:
                raise StructureError("IHDR gives a zero width or height")
            crc = zlib.crc32(body, zlib.crc32(kind))
        else:
            crc = yield _Skip(length, zlib.crc32(kind))
        (stored,) = struct.unpack(">I", (yield _Read(4)))
        if stored != crc:
            raise StructureError(f"CRC mismatch in PNG chunk {kind.decode('ascii')!r} (corrupted bytes)")
        first = False
        if kind in (b"IDAT", b"fdAT"):
            seen_idat = True
        if kind == b"IEND":
            if length:
                raise StructureError("IEND chunk with data")
            if not seen_idat:
                raise StructureError("no IDAT chunk: the PNG has no picture data")
            if not (yield _AtEnd()):
                raise StructureError("bytes after the PNG's IEND chunk")
            return Structure(width, height)


# --- JPEG ------------------------------------------------------------------------------------

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOS, _EOI, _SOI, _TEM = 0xDA, 0xD9, 0xD8, 0x01


def _next_marker() -> Generator[object, object, int]:
    """The next marker byte between segments: 0xFF, optional 0xFF fill bytes, the marker."""
    if (yield _Read(1)) != b"\xff":
        raise StructureError("expected a JPEG marker (the data between segments is junk)")
    while True:
        byte = (yield _Read(1))[0]
        if byte != 0xFF:
            return byte


def _jpeg_image() -> Generator[object, object, tuple[int, int]]:
    """One JPEG image after its SOI, up to and including EOI; returns (width, height)."""
    size: tuple[int, int] | None = None
    scanned = False
    marker = yield from _next_marker()
    while True:
        if marker == _EOI:
            if size is None or not scanned:
                raise StructureError("JPEG ends without a frame header (SOF) and scan (SOS)")
            return size
        if marker in (_SOI, _TEM) or 0xD0 <= marker <= 0xD7 or marker == 0x00:
            raise StructureError(f"JPEG marker 0x{marker:02X} out of place")
        (length,) = struct.unpack(">H", (yield _Read(2)))
        if length < 2:
            raise StructureError(f"JPEG segment 0x{marker:02X} has an impossible length {length}")
        if marker in _SOF:
            if length < 8:
                raise StructureError("JPEG frame header (SOF) too short")
            body = yield _Read(length - 2)
            height, width = struct.unpack(">HH", body[1:5])
            if not width:
                raise StructureError("JPEG frame header gives a zero width")
            size = (width, height)
        elif marker == _SOS:
            if size is None:
                raise StructureError("JPEG scan (SOS) before any frame header (SOF)")
            yield _Skip(length - 2)
            scanned = True
            marker = yield _ScanToMarker()  # the entropy-coded data runs to the next marker
            continue
        else:
            yield _Skip(length - 2)
        marker = yield from _next_marker()


def _jpeg() -> _Parser:
    if (yield _Read(2)) != b"\xff\xd8":
        raise StructureError("no JPEG start-of-image marker")
    width, height = yield from _jpeg_image()
    while not (yield _AtEnd()):  # more bytes: only further complete images (MPO) may follow
        if (yield _Read(2)) != b"\xff\xd8":
            raise StructureError("bytes after the JPEG's end-of-image marker (EOI)")
        yield from _jpeg_image()
    return Structure(width, height)


# --- WebP ------------------------------------------------------------------------------------

_WEBP_FRAMES = (b"VP8 ", b"VP8L")


def _chunk_header() -> Generator[object, object, tuple[bytes, int]]:
    fourcc, size = struct.unpack("<4sI", (yield _Read(8)))
    if not all(32 <= b < 127 for b in fourcc):
        raise StructureError(f"garbage WebP chunk name {fourcc!r}")
    return fourcc, size


def _frame(fourcc: bytes, size: int) -> Generator[object, object, tuple[int, int]]:
    """A VP8 or VP8L chunk's payload (after its header): its header checked, the rest passed over."""
    if fourcc == b"VP8 ":
        if size < 10:
            raise StructureError("VP8 chunk too short")
        head = yield _Read(10)
        tag = head[0] | head[1] << 8 | head[2] << 16
        if tag & 1:
            raise StructureError("VP8 frame is not a key frame")
        if head[3:6] != b"\x9d\x01\x2a":
            raise StructureError("VP8 frame has no start code")
        if (tag >> 5) > size - 10:
            raise StructureError("VP8 first partition runs past its chunk")
        width, height = struct.unpack("<HH", head[6:10])
        dims = (width & 0x3FFF, height & 0x3FFF)
        rest = size - 10
    else:
        if size < 5:
            raise StructureError("VP8L chunk too short")
        head = yield _Read(5)
        if head[0] != 0x2F:
            raise StructureError("VP8L chunk has no signature")
        bits = int.from_bytes(head[1:5], "little")
        if bits >> 29:
            raise StructureError("VP8L version is not 0")
        dims = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        rest = size - 5
    if not dims[0] or not dims[1]:
        raise StructureError("WebP frame with a zero width or height")
    yield _Skip(rest + (size & 1))
    return dims


def _anmf(size: int) -> _Parser:
    """An animation frame: 16 header bytes, then its own chunks (ALPH?, VP8/VP8L, unknown)."""
    if size < 16 + 8:
        raise StructureError("ANMF chunk too short")
    yield _Skip(16)
    left = size - 16
    has_frame = False
    while left:
        if left < 8:
            raise StructureError("truncated chunk inside an ANMF frame")
        fourcc, sub = yield from _chunk_header()
        padded = sub + (sub & 1)
        if 8 + padded > left:
            raise StructureError(f"chunk {fourcc!r} runs past its ANMF frame")
        if fourcc in _WEBP_FRAMES:
            yield from _frame(fourcc, sub)
            has_frame = True
        else:
            yield _Skip(padded)
        left -= 8 + padded
    if size & 1:
        yield _Skip(1)
    if not has_frame:
        raise StructureError("ANMF frame without a VP8/VP8L bitstream")
    return Structure()


def _webp() -> _Parser:
    riff, riff_size, webp = struct.unpack("<4sI4s", (yield _Read(12)))
    if riff != b"RIFF" or webp != b"WEBP":
        raise StructureError("no RIFF/WEBP header")
    if riff_size < 4 + 8 or riff_size & 1:
        raise StructureError(f"impossible RIFF size {riff_size}")
    left = riff_size - 4  # bytes of chunks the RIFF header promises
    width = height = None
    extended = animated = False
    frames = 0
    first = True
    while left:
        if left < 8:
            raise StructureError("truncated chunk header at the end of the RIFF data")
        fourcc, size = yield from _chunk_header()
        padded = size + (size & 1)
        if 8 + padded > left:
            raise StructureError(f"chunk {fourcc.decode('ascii')!r} runs past the RIFF size")
        left -= 8 + padded
        if first and fourcc not in (*_WEBP_FRAMES, b"VP8X"):
            raise StructureError(f"the first WebP chunk is {fourcc!r}, not VP8, VP8L or VP8X")
        if fourcc == b"VP8X":
            if not first or size < 10:
                raise StructureError("misplaced or malformed VP8X chunk")
            head = yield _Read(10)
            extended, animated = True, bool(head[0] & 0x02)
            width = int.from_bytes(head[4:7], "little") + 1
            height = int.from_bytes(head[7:10], "little") + 1
            yield _Skip(padded - 10)
        elif fourcc in _WEBP_FRAMES:
            dims = yield from _frame(fourcc, size)
            if not extended:
                width, height = dims
            frames += 1
        elif fourcc == b"ANMF":
            yield from _anmf(size)
            frames += 1
        else:
            yield _Skip(padded)
        first = False
    if frames == 0:
        raise StructureError(f"no {'ANMF' if animated else 'VP8/VP8L'} frame in the WebP")
    if not (yield _AtEnd()):
        raise StructureError("bytes after the RIFF data (the RIFF size is not the file size)")
    return Structure(width, height)
