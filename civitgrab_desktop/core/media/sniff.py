"""What a download is, from its Content-Type and first bytes (never from the URL's extension).

Rule: the Content-Type decides, unless the bytes say otherwise. Bytes that look like HTML are an
error page whatever the header claims, and bytes that are clearly another media type win over the
header (a CDN that labels a PNG `image/jpeg` must not give us `123.jpeg` holding a PNG).
HTML comes back as the distinct `HTML` result so the caller can reject it with a reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MediaType:
    ext: str  # with the dot: ".png"
    mime: str
    kind: str  # "image" | "video" | "html"

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    @property
    def is_video(self) -> bool:
        return self.kind == "video"


PNG = MediaType(".png", "image/png", "image")
JPEG = MediaType(".jpeg", "image/jpeg", "image")  # the seed's extension for JPEGs
WEBP = MediaType(".webp", "image/webp", "image")
GIF = MediaType(".gif", "image/gif", "image")
MP4 = MediaType(".mp4", "video/mp4", "video")
MOV = MediaType(".mov", "video/quicktime", "video")
WEBM = MediaType(".webm", "video/webm", "video")
MKV = MediaType(".mkv", "video/x-matroska", "video")
HTML = MediaType(".html", "text/html", "html")

ALL_TYPES = (PNG, JPEG, WEBP, GIF, MP4, MOV, WEBM, MKV)
# The file names a media file may carry: every type's extension, and .jpg.
MEDIA_SUFFIXES = frozenset({t.ext for t in ALL_TYPES} | {".jpg"})
# How many leading bytes detect_type wants to see.
SNIFF_BYTES = 64

_BY_MIME = {
    "image/png": PNG,
    "image/apng": PNG,
    "image/jpeg": JPEG,
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "image/webp": WEBP,
    "image/gif": GIF,
    "video/mp4": MP4,
    "video/x-m4v": MP4,
    "video/webm": WEBM,
    "video/quicktime": MOV,
    "video/x-matroska": MKV,
    "text/html": HTML,
    "application/xhtml+xml": HTML,
}
# ISO-BMFF brands that are still images (HEIF/AVIF), not videos we can play.
_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<title", b"<script", b"<meta")


def type_from_content_type(content_type: str | None) -> MediaType | None:
    if not content_type:
        return None
    mime = content_type.split(";", 1)[0].strip().lower()
    return _BY_MIME.get(mime)


def looks_like_html(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(_HTML_STARTS)


def _ftyp_type(head: bytes) -> MediaType | None:
    brand = head[8:12]
    if brand in _IMAGE_BRANDS:
        return None
    return MOV if brand == b"qt  " else MP4


def _ebml_type(head: bytes) -> MediaType:
    # The DocType string sits in the EBML header; a short head may not reach it.
    return MKV if b"matroska" in head[:128] else WEBM


def type_from_magic(head: bytes) -> MediaType | None:
    """The media type the first bytes prove, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[4:8] == b"ftyp":
        return _ftyp_type(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _ebml_type(head)
    if looks_like_html(head):
        return HTML
    return None


def _same_family(a: MediaType, b: MediaType) -> bool:
    """MP4/MOV share a container; WebM/Matroska too. The header's finer word is kept then."""
    families = ({MP4, MOV}, {WEBM, MKV})
    return a == b or any(a in f and b in f for f in families)


def detect_type(content_type: str | None, head: bytes) -> MediaType | None:
    """The type to save a download as; `HTML` for an error page; None when unknown."""
    declared = type_from_content_type(content_type)
    sniffed = type_from_magic(head)
    if sniffed is HTML:
        return HTML
    if declared is None:
        return sniffed
    if sniffed is None or _same_family(declared, sniffed):
        return declared
    return sniffed


def is_media_file(path: str | os.PathLike) -> bool:
    """Is `path` an image or video by its name and by its first bytes? (A file some record merely
    names, such as a classic tool's entry, may be anything: a key, a document.)"""
    if Path(path).suffix.lower() not in MEDIA_SUFFIXES:
        return False
    try:
        with open(path, "rb") as fh:
            kind = type_from_magic(fh.read(SNIFF_BYTES))
    except OSError:
        return False
    return kind is not None and (kind.is_image or kind.is_video)
