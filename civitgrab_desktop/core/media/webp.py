"""The converter's core: JPG/PNG/GIF/WebP -> WebP with our EXIF, and EXIF rewrites in place.

Every function here is a plain module-level function taking and returning picklable values, so
the convert job can run them in worker processes.

Decisions:
- Animations (APNG, GIF, animated WebP) stay animated: every frame, its duration and the loop count.
- The ICC profile is kept, except for CMYK sources (the profile describes CMYK, not our RGB).
- Modes: RGB/RGBA kept; P, LA, PA become RGBA when they have transparency, RGB otherwise;
  16-bit greyscale is scaled (not clipped) to 8 bits.
- EXIF orientation: CivitAI originals rarely carry one, but when a still image does, the pixels
  are rotated (exif_transpose) so the WebP looks the same; our EXIF has no Orientation tag.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, ImageSequence

from civitgrab_desktop.core.media.exif import (
    EXIF_MAX_BYTES,
    ExifBuild,
    build_exif,
    exif_info_from_record,
    read_exif,
)
from civitgrab_desktop.core.media.files import atomic_output
from civitgrab_desktop.core.media.pngtext import png_parameters
from civitgrab_desktop.core.media.webp_riff import (
    build_webp,
    image_chunks,
    parse_chunks,
    with_exif,
    with_metadata,
)

# The converter's whole API in one place (EXIF and PNG-text helpers live in their own modules).
__all__ = [
    "EXIF_MAX_BYTES",
    "WEBP_MAX_SIDE",
    "ConvertError",
    "ConvertOutcome",
    "DecodedWebP",
    "ExifBuild",
    "build_exif",
    "convert_to_webp",
    "decode_webp",
    "exif_info_from_record",
    "insert_exif",
    "insert_metadata",
    "png_parameters",
    "read_exif",
]

WEBP_MAX_SIDE = 16383


class ConvertError(ValueError):
    """The source cannot be converted (too large for WebP, unreadable...)."""


@dataclass(frozen=True)
class ConvertOutcome:
    width: int
    height: int
    frames: int
    src_bytes: int
    webp_bytes: int


def _to_webp_mode(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in ("RGB", "RGBA"):
        return im
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        im = im.convert("I").point(lambda v: v * (1 / 257))  # 16-bit -> 8-bit, scaled not clipped
        return im.convert("L").convert("RGB")
    has_alpha = mode in ("LA", "La", "PA", "RGBa") or (mode == "P" and "transparency" in im.info)
    return im.convert("RGBA" if has_alpha else "RGB")


def _frame_durations(im: Image.Image) -> list[int]:
    durations = []
    for frame in ImageSequence.Iterator(im):
        frame.load()  # WebP sets a frame's duration only once it is decoded
        durations.append(int(frame.info.get("duration", 100) or 0))
    im.seek(0)
    return durations


def _save_fsynced(im: Image.Image, dst: Path, **params) -> int:
    with open(dst, "wb") as fh:
        im.save(fh, "WEBP", **params)
        fh.flush()
        os.fsync(fh.fileno())
        return os.fstat(fh.fileno()).st_size


def convert_to_webp(
    src: str | os.PathLike,
    dst_tmp: str | os.PathLike,
    *,
    exif: bytes,
    xmp: bytes | None = None,
    quality: int = 90,
    lossless: bool = False,
    method: int = 4,
) -> ConvertOutcome:
    """Encode `src` as WebP into `dst_tmp` (written and fsynced; the caller verifies and renames)."""
    src, dst_tmp = Path(src), Path(dst_tmp)
    params = {"quality": int(quality), "lossless": bool(lossless), "method": int(method), "exif": exif or b""}
    if xmp:
        params["xmp"] = xmp
    with Image.open(src) as im:
        if max(im.size) > WEBP_MAX_SIDE:
            raise ConvertError(f"{im.width}x{im.height} is larger than WebP allows ({WEBP_MAX_SIDE} per side)")
        icc = im.info.get("icc_profile")
        if icc and im.mode != "CMYK":
            params["icc_profile"] = icc
        frames = getattr(im, "n_frames", 1) if getattr(im, "is_animated", False) else 1
        if frames > 1:
            params.update(save_all=True, duration=_frame_durations(im), loop=int(im.info.get("loop", 0)))
            size = im.size
            webp_bytes = _save_fsynced(im, dst_tmp, **params)
        else:
            still = _to_webp_mode(ImageOps.exif_transpose(im))
            size = still.size
            webp_bytes = _save_fsynced(still, dst_tmp, **params)
    return ConvertOutcome(size[0], size[1], frames, src.stat().st_size, webp_bytes)


@dataclass(frozen=True)
class DecodedWebP:
    size: tuple[int, int]
    frames: int  # every one of them was decoded
    first: Image.Image  # the first frame (mode RGB, RGBX or RGBA)


def decode_webp(data: bytes) -> DecodedWebP:
    """Decode every frame of a WebP file held in `data`; raises (ValueError, OSError...) when it
    is not a complete WebP. Returns its size, frame count and first frame.

    Pillow's own libwebp decoder is called directly when it has the shape Pillow 13 gives it:
    Image.open() + load() copies each frame twice more (bytes, BytesIO, raw unpack), a third of
    the decode time. Anything unexpected there falls back to the public API, which decodes the
    same bitstream with the same libwebp.
    """
    try:
        return _decode_direct(data)
    except Exception:
        pass
    with Image.open(io.BytesIO(data)) as im:
        if im.format != "WEBP":
            raise ValueError(f"the file is {im.format}, not WebP")
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            im.seek(frames - 1)
            im.load()
            im.seek(0)
        im.load()
        return DecodedWebP(im.size, frames, im.copy())


def _decode_direct(data: bytes) -> DecodedWebP:
    from PIL import _webp

    decoder = _webp.WebPAnimDecoder(data)
    size, _loop, _background, frames, rawmode = decoder.get_info()
    if rawmode not in ("RGBX", "RGBA") or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"unexpected decoder info {rawmode!r}, {frames!r}")
    first = None
    for _ in range(frames):
        ret = decoder.get_next()
        if ret is None:
            raise ValueError("a frame of the WebP cannot be decoded")
        if first is None:
            first = ret[0]
    if not isinstance(first, bytes) or len(first) != size[0] * size[1] * 4:
        raise ValueError("unexpected decoder output")
    return DecodedWebP(tuple(size), frames, Image.frombuffer(rawmode, tuple(size), first, "raw", rawmode, 0, 1))


def insert_exif(webp_path: str | os.PathLike, exif_bytes: bytes | None) -> None:
    """Replace the EXIF of a WebP without re-encoding it (the image chunks are copied byte for
    byte); None or b"" removes it. Atomic (temp file, fsync, rename); keeps the file's mode and
    mtime (the mtime is the image's createdAt)."""
    path = Path(webp_path)
    data = build_webp(with_exif(parse_chunks(path.read_bytes()), exif_bytes))
    with atomic_output(path, keep_stat_of=path) as fh:
        fh.write(data)


def insert_metadata(webp_path: str | os.PathLike, exif_bytes: bytes | None, xmp: bytes | None) -> bool:
    """Replace the EXIF and XMP of a WebP without re-encoding it (the image chunks are copied
    byte for byte, and checked to be). Atomic: a temp file next to it, fsynced, renamed over it,
    the folder fsynced; an interruption leaves the old file or the new one. Keeps the file's mode
    and mtime. Returns False (and writes nothing) when the file already holds exactly this."""
    path = Path(webp_path)
    old = path.read_bytes()
    chunks = parse_chunks(old)
    new_chunks = with_metadata(chunks, exif_bytes, xmp)
    if image_chunks(new_chunks) != image_chunks(chunks):
        raise ValueError("rewriting the metadata would change the image data")
    data = build_webp(new_chunks)
    if data == old:
        return False
    with atomic_output(path, keep_stat_of=path) as fh:
        fh.write(data)
    return True
