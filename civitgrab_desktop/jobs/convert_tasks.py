"""What the convert job hands its worker processes and what they hand back (picklable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from civitgrab_desktop.core.roots import Roots


class ItemFailed(Exception):
    """This item cannot be converted; the message is the reason recorded in the library."""


class HashMismatch(ItemFailed):
    """The written WebP decodes at the right size but looks too different from the original."""


class ItemSkipped(Exception):
    """Not something the converter handles (never claimed again); the message says why."""


# The reason an image outside every chosen folder is not converted in place (core/roots.py);
# trusting its folder later makes it convertible again (library roots_store.READ_ONLY_SKIP).
READ_ONLY_REASON = "read-only: the file is outside the folders you chose; trust its folder to convert it in place"


@dataclass(frozen=True)
class EncodeOptions:
    quality: int = 90
    lossless: bool = False
    method: int = 4  # libwebp's effort, cwebp's default
    phash_threshold: int = 4


@dataclass(frozen=True)
class ImageTask:
    image_id: int
    src: str
    out_dir: str  # <id>.webp goes here (next to the original in place)
    in_place: bool
    options: EncodeOptions
    info: dict[str, Any]  # embed_info.record_info(row): the record fields for the EXIF and XMP
    tags: list[dict[str, Any]]  # API shape (upVotes, needsReview...)
    record: dict[str, Any]  # the full API record, for the JSON sidecar
    sha256: str | None = None  # of the original at download time
    created_at: str | None = None
    copies: tuple[str, ...] = ()  # in place: other query folders' links of the original
    roots: Roots = Roots()  # where files may be written or removed (checked before each change)


@dataclass(frozen=True)
class VideoTask:
    image_id: int
    src: str
    out_dir: str
    move: bool
    tags: list[dict[str, Any]]
    record: dict[str, Any]
    sha256: str | None = None  # of the download: recognizes a move a killed run did not record
    roots: Roots = Roots()  # where files may be written or removed (checked before each change)


@dataclass
class TaskResult:
    image_id: int
    status: str  # converted | failed | skipped
    reason: str = ""
    how: str = ""  # encoded | encoded-lossless | exif-only | adopted | hardlink | copy | moved
    webp_path: str | None = None  # for a video: its path in the organized layout
    src_phash: str | None = None
    webp_phash: str | None = None
    distance: int | None = None
    src_bytes: int = 0
    webp_bytes: int = 0
    original_removed: bool = False
    moved_paths: dict[str, str] = field(default_factory=dict)
    exif_dropped: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
