"""Perceptual hashes, to prove a WebP still shows the same picture as its source.

Before hashing, the EXIF orientation is applied (the converter applies it too) and transparency is
flattened onto white: lossy WebP may change the colour of fully transparent pixels, which nobody
sees but a plain greyscale hash would.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import imagehash
from PIL import Image, ImageOps

# JPEG draft decode target for the fast path: phash looks at 32x32, so 256 px is plenty.
_DRAFT_SIZE = (256, 256)


class ConversionCheck(NamedTuple):
    src_hash: str
    webp_hash: str
    distance: int
    same_size: bool


def _prepared(im: Image.Image) -> Image.Image:
    im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    return im.convert("RGB")


def _hash_image(im: Image.Image) -> str:
    return str(imagehash.phash(_prepared(im)))


def phash_of(source: str | os.PathLike | Image.Image, fast: bool = True) -> str:
    """64-bit pHash as 16 hex digits (first frame of an animation). `fast` lets JPEGs decode at
    reduced size (DCT scaling), ~5x quicker, shifting the hash by a bit or two."""
    if isinstance(source, Image.Image):
        return _hash_image(source)
    with Image.open(source) as im:
        if fast and im.format == "JPEG":
            im.draft("RGB", _DRAFT_SIZE)
        return _hash_image(im)


def hash_distance(a_hex: str, b_hex: str) -> int:
    """Hamming distance between two hashes from phash_of."""
    if len(a_hex) != len(b_hex):
        raise ValueError("hashes of different sizes cannot be compared")
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


def _oriented_size(path: str | os.PathLike) -> tuple[int, int]:
    with Image.open(path) as im:
        width, height = im.size
        if im.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated 90 degrees
            return height, width
        return width, height


def verify_conversion(src: str | os.PathLike, webp: str | os.PathLike) -> ConversionCheck:
    """Hash both at full decode (accuracy over speed: this guards deleting the original)."""
    src_hash = phash_of(src, fast=False)
    webp_hash = phash_of(webp, fast=False)
    same_size = _oriented_size(src) == _oriented_size(webp)
    return ConversionCheck(src_hash, webp_hash, hash_distance(src_hash, webp_hash), same_size)
