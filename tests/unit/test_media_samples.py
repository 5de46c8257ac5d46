"""Sample media made in-process (real Pillow encodes), shared by the media tests."""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

FFMPEG = shutil.which("ffmpeg")


def photo(size: tuple[int, int] = (256, 192), seed: int = 0) -> Image.Image:
    """A smooth, photo-like RGB picture (gradients and soft shapes), so lossy codecs behave as on real images."""
    rng = random.Random(seed)
    base = Image.merge(
        "RGB",
        [
            Image.linear_gradient("L").resize(size),
            Image.radial_gradient("L").resize(size),
            Image.linear_gradient("L").rotate(90).resize(size),
        ],
    )
    draw = ImageDraw.Draw(base)
    for _ in range(12):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randrange(8, max(9, min(size) // 3))
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return base.filter(ImageFilter.GaussianBlur(1.5))


def encoded(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def frames(count: int = 4, size: tuple[int, int] = (64, 48)) -> list[Image.Image]:
    out = []
    for i in range(count):
        im = Image.new("RGBA", size, (255, 255, 255, 0))
        ImageDraw.Draw(im).rectangle((i * 8, 4, i * 8 + 20, 30), fill=(200, 40 * i, 30, 255))
        out.append(im)
    return out


# --- hand-built video containers (no ffmpeg needed) -----------------------------------------


def mp4_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def tiny_mp4(width: int = 320, height: int = 240, mdat: bytes = b"\x00" * 64) -> bytes:
    """ftyp + moov(mvhd, trak(tkhd)) + mdat: the structure verify_media checks, nothing playable."""
    ftyp = mp4_box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    mvhd = mp4_box(b"mvhd", b"\x00" * 100)
    tkhd_payload = b"\x00\x00\x00\x03" + b"\x00" * 72 + struct.pack(">II", width << 16, height << 16)
    trak = mp4_box(b"trak", mp4_box(b"tkhd", tkhd_payload))
    moov = mp4_box(b"moov", mvhd + trak)
    return ftyp + moov + mp4_box(b"mdat", mdat)


def ebml(element_id: int, payload: bytes) -> bytes:
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    size = b"\x01" + len(payload).to_bytes(7, "big")  # 8-byte size vint
    return id_bytes + size + payload


def tiny_webm(width: int = 320, height: int = 240) -> bytes:
    header = ebml(0x1A45DFA3, ebml(0x4282, b"webm"))
    video = ebml(0xE0, ebml(0xB0, width.to_bytes(2, "big")) + ebml(0xBA, height.to_bytes(2, "big")))
    tracks = ebml(0x1654AE6B, ebml(0xAE, ebml(0xD7, b"\x01") + video))
    info = ebml(0x1549A966, ebml(0x2AD7B1, (1000000).to_bytes(3, "big")))
    cluster = ebml(0x1F43B675, ebml(0xE7, b"\x00") + ebml(0xA3, b"\x81\x00\x00\x80" + b"\x00" * 32))
    return header + ebml(0x18538067, info + tracks + cluster)


def ffmpeg_video(path: Path, codec: str) -> Path:
    """A real 0.5 s test-pattern video (only when ffmpeg is installed)."""
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
         "-t", "0.5", "-c:v", codec, "-y", str(path)],
        check=True,
        timeout=60,
    )
    return path


def test_samples_are_what_they_claim():
    assert Image.open(io.BytesIO(encoded(photo(), "PNG"))).size == (256, 192)
    assert tiny_mp4()[4:8] == b"ftyp"
    assert tiny_webm()[:4] == b"\x1a\x45\xdf\xa3"
