"""Gallery thumbnails for images (no Qt). Videos are the GUI's job (it grabs a frame with
QtMultimedia), so they are refused here with UnsupportedMedia.

Speed: JPEGs decode at reduced size (`draft`, DCT scaling) and other formats shrink with
`reduce()` before the final resample (Pillow's `thumbnail(reducing_gap=...)`), so a 2048 px
source costs a few ms. Thumbnails are a cache: written atomically (temp + rename) but not
fsynced; a file lost in a crash is just made again.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageOps

from civitgrab_desktop.core.media.files import atomic_output

THUMB_FORMATS = {"webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG"}
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm", ".mkv"}
_QUALITY = 82


class UnsupportedMedia(ValueError):
    """Not something this module can make a thumbnail of (a video, or not an image at all)."""


def thumb_cache_path(cache_dir: str | os.PathLike, image_id: int | str, size: int, fmt: str = "webp") -> Path:
    """`<cache>/<size>/<id mod 1000, 3 digits>/<id>.<fmt>`: at most ~1000 entries per folder level."""
    number = int(image_id)
    if number < 0:
        raise ValueError(f"image id must not be negative: {image_id!r}")
    ext = "jpeg" if THUMB_FORMATS.get(fmt.lower()) == "JPEG" else "webp"
    return Path(cache_dir) / str(int(size)) / f"{number % 1000:03d}" / f"{number}.{ext}"


def _box(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def _flatten(im: Image.Image) -> Image.Image:
    """JPEG has no alpha: composite onto white."""
    if "A" not in im.getbands():
        return im.convert("RGB")
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _load_small(src: str | os.PathLike, box: tuple[int, int]) -> Image.Image:
    with Image.open(src) as im:
        # Shrink before rotating (cheaper); a 90-degree turn swaps the box.
        rotated = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
        im.thumbnail((box[1], box[0]) if rotated else box, Image.Resampling.LANCZOS, reducing_gap=2.0)
        small = ImageOps.exif_transpose(im)  # always a copy, so it outlives the open file
    if small.mode not in ("RGB", "RGBA"):
        has_alpha = "A" in small.getbands() or "transparency" in small.info
        small = small.convert("RGBA" if has_alpha else "RGB")
    return small


def make_thumbnail(
    src: str | os.PathLike, dst: str | os.PathLike, size: int | tuple[int, int], *, fmt: str | None = None
) -> tuple[int, int]:
    """Write a thumbnail fitting `size` (an edge length or a (w, h) box) to `dst`; returns its size.

    The format follows `fmt`, else `dst`'s suffix (.jpeg/.jpg -> JPEG, anything else WebP).
    Raises UnsupportedMedia for videos and for files Pillow cannot read.
    """
    src, dst = Path(src), Path(dst)
    if src.suffix.lower() in VIDEO_SUFFIXES:
        raise UnsupportedMedia(f"{src.name} is a video; thumbnails of videos come from the GUI's frame grabber")
    fmt_key = (fmt or dst.suffix.lstrip(".") or "webp").lower()
    pil_format = THUMB_FORMATS.get(fmt_key, "WEBP")
    try:
        small = _load_small(src, _box(size))
    except Image.UnidentifiedImageError as exc:
        raise UnsupportedMedia(f"{src.name} is not an image Pillow can read") from exc
    except Image.DecompressionBombError as exc:
        raise UnsupportedMedia(f"{src.name} is too large to preview safely ({exc})") from exc
    if pil_format == "JPEG":
        small = _flatten(small)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dst, durable=False) as fh:
        small.save(fh, pil_format, quality=_QUALITY)
    return small.size
