"""WebP's RIFF container: read the chunks, swap the EXIF chunk, write them back.

Used to rewrite metadata (EXIF and XMP) without re-encoding the picture. piexif's own WebP insert is
not used: it drops only one of several EXIF chunks, places EXIF before ANIM in animations (the
spec wants it after the frames) and cannot read EXIF from a file without a VP8X chunk.
Layout (https://developers.google.com/speed/webp/docs/riff_container):
  RIFF <size> WEBP, then VP8X? ICCP? ANIM? (ANMF* | ALPH? VP8/VP8L) EXIF? XMP? unknown*
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EXIF_HEADER = b"Exif\x00\x00"

# VP8X flag bits
FLAG_ICC = 0x20
FLAG_ALPHA = 0x10
FLAG_EXIF = 0x08
FLAG_XMP = 0x04
FLAG_ANIMATION = 0x02

IMAGE_CHUNKS = (b"VP8 ", b"VP8L", b"ALPH", b"ANMF", b"ANIM")


class WebPFormatError(ValueError):
    """The bytes are not a well-formed WebP file."""


@dataclass(frozen=True)
class Chunk:
    fourcc: bytes
    data: bytes


def parse_chunks(data: bytes) -> list[Chunk]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise WebPFormatError("not a WebP file")
    riff_end = 8 + struct.unpack("<I", data[4:8])[0]
    if riff_end > len(data):
        raise WebPFormatError("RIFF size runs past the end of the file (truncated)")
    chunks, pos = [], 12
    while pos < riff_end:
        if riff_end - pos < 8:
            raise WebPFormatError("truncated chunk header")
        fourcc = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        start = pos + 8
        if start + size > riff_end:
            raise WebPFormatError(f"chunk {fourcc!r} runs past the end of the file")
        chunks.append(Chunk(fourcc, data[start : start + size]))
        pos = start + size + (size & 1)
    return chunks


def build_webp(chunks: list[Chunk]) -> bytes:
    body = b"".join(c.fourcc + struct.pack("<I", len(c.data)) + c.data + b"\x00" * (len(c.data) & 1) for c in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def exif_payload(chunks: list[Chunk]) -> bytes | None:
    """The TIFF-structured EXIF data of the file (without an `Exif\\0\\0` prefix), or None."""
    for chunk in chunks:
        if chunk.fourcc == b"EXIF":
            data = chunk.data
            return data[len(EXIF_HEADER) :] if data.startswith(EXIF_HEADER) else data
    return None


def _simple_canvas(chunk: Chunk) -> tuple[int, int, bool]:
    """(width, height, has_alpha) from a simple-format VP8 or VP8L bitstream."""
    data = chunk.data
    if chunk.fourcc == b"VP8 ":
        if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a":
            raise WebPFormatError("bad VP8 frame header")
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    if len(data) < 5 or data[0] != 0x2F:
        raise WebPFormatError("bad VP8L header")
    bits = struct.unpack("<I", data[1:5])[0]
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)


def _vp8x(flags: int, width: int, height: int) -> Chunk:
    return Chunk(b"VP8X", bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))


def xmp_payload(chunks: list[Chunk]) -> bytes | None:
    """The XMP packet of the file, or None."""
    return next((c.data for c in chunks if c.fourcc == b"XMP "), None)


def with_exif(chunks: list[Chunk], exif: bytes | None) -> list[Chunk]:
    """The chunks with every EXIF chunk replaced by `exif` (None or b"": removed) and VP8X fixed."""
    return with_metadata(chunks, exif, xmp_payload(chunks))


def with_metadata(chunks: list[Chunk], exif: bytes | None, xmp: bytes | None) -> list[Chunk]:
    """The chunks with every EXIF and XMP chunk replaced by `exif` and `xmp` (None or b"":
    removed), both after the image data as the spec orders them, and the VP8X flags fixed."""
    payload = exif[len(EXIF_HEADER) :] if exif and exif.startswith(EXIF_HEADER) else exif
    rest = [c for c in chunks if c.fourcc not in (b"EXIF", b"XMP ")]
    if not rest:
        raise WebPFormatError("no image data")
    flags = (FLAG_EXIF if payload else 0) | (FLAG_XMP if xmp else 0)
    if rest[0].fourcc == b"VP8X":
        old = rest[0].data[0] & ~(FLAG_EXIF | FLAG_XMP)
        rest[0] = Chunk(b"VP8X", bytes([old | flags]) + rest[0].data[1:])
    elif flags:
        # A simple-format file needs a VP8X header before it may carry metadata.
        width, height, alpha = _simple_canvas(rest[0])
        rest.insert(0, _vp8x(flags | (FLAG_ALPHA if alpha else 0), width, height))
    # after the image (and any unknown chunks a tool placed before the metadata stay before it)
    last_image = max(i for i, c in enumerate(rest) if c.fourcc in IMAGE_CHUNKS or c.fourcc == b"VP8X")
    extra = [Chunk(b"EXIF", payload)] if payload else []
    extra += [Chunk(b"XMP ", xmp)] if xmp else []
    return rest[: last_image + 1] + extra + rest[last_image + 1 :]


def image_chunks(chunks: list[Chunk]) -> list[Chunk]:
    """The chunks that hold the picture itself (compare these to prove it was not re-encoded)."""
    return [c for c in chunks if c.fourcc in IMAGE_CHUNKS]
