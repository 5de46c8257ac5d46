"""What a download job works with: its parameters, one `Target` per identifier, the `Stream`s a
target is listed from, the `WorkItem`s the listing stage queues for the transfer stage, and the
names each mode goes by. Plain data; the stages are jobs/download_listing.py, download_transfer.py
and download_placement.py, composed by jobs/download.py.
"""

from __future__ import annotations

import errno
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.media.sniff import ALL_TYPES
from civitgrab_desktop.core.model import DownloadMode, ImageRecord

MODE_NAMES = {
    DownloadMode.USERNAME: "username",
    DownloadMode.MODEL: "model",
    DownloadMode.TAG: "tag",
    DownloadMode.MODEL_VERSION: "modelVersion",
    DownloadMode.POST: "post",
    DownloadMode.IMAGE: "image",
}
MODE_LABELS = {
    DownloadMode.USERNAME: "username",
    DownloadMode.MODEL: "model ID",
    DownloadMode.TAG: "tag",
    DownloadMode.MODEL_VERSION: "model version ID",
    DownloadMode.POST: "post",
    DownloadMode.IMAGE: "image",
}
# what a summary line calls a target of each mode: "model 1001"
MODE_WORDS = {
    DownloadMode.USERNAME: "username",
    DownloadMode.MODEL: "model",
    DownloadMode.TAG: "tag",
    DownloadMode.MODEL_VERSION: "version",
    DownloadMode.POST: "post",
    DownloadMode.IMAGE: "image",
}
DEFAULT_CAP_THRESHOLD = 49_000
DEFERRED_POLL_S = 0.5
MEDIA_EXTS = frozenset(media.ext for media in ALL_TYPES)  # the extensions `_place` gives files
# A full disk (or quota) ends the job: every further item would be fetched only to fail.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
NOT_ATTEMPTED_DISK_FULL = "not attempted: the disk is full"
CLAIM_RENEWALS_PER_LEASE = 4  # claims are renewed four times per lease while the job runs
FIRST_REGISTERED = 10  # items of a page registered (and queued) before the rest of it


class DiskFullError(Exception):
    """The output folder's disk is full: the job ends (failed) instead of trying every item."""


@dataclass
class DownloadParams:
    mode: DownloadMode
    identifiers: list[str]
    output_dir: str = "image_downloads"
    original: bool = True  # False: the CDN's resized JPEG (classic --quality 1)
    nsfw: str = "x"
    layout: str = "classic"  # classic | organized (CivitAI_Browse/...)
    sort: bool = True  # classic layout: model-name subfolders
    max_path: int = 240
    redownload: bool = False
    max_images: int | None = None
    max_per_model: int | None = None
    no_videos: bool = False
    videos_only: bool = False
    filter_tags: list[str] = field(default_factory=list)
    prompt_check: bool = True  # tag mode: every word of the tag must be in the prompt
    deep_scan: bool = False
    cap_threshold: int = DEFAULT_CAP_THRESHOLD
    stop_after_known: int | None = None  # incremental update: stop a listing after N known items
    pg13_is_nsfw: bool = False

    def __post_init__(self) -> None:
        self.mode = DownloadMode(self.mode)  # saved parameters and queries hold the number

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DownloadParams:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Target:
    """One identifier of the query, as the library's `sources` records it."""

    mode: DownloadMode
    identifier: str
    target_type: str
    target_value: str
    status: str = "pending"  # ok | not found | no items | error | stopped
    reason: str = ""
    listed: int = 0  # items the service returned
    new: int = 0
    had: int = 0
    downloaded: int = 0
    linked: int = 0
    failed: int = 0
    filtered: int = 0
    cap_hit: bool = False
    passes: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True  # every stream listed to its natural end
    gone: int = 0
    gone_reason: str = ""  # why images were (or were not) marked gone
    listed_ids: set[int] = field(default_factory=set)
    # Ids this identifier already gave a verdict for (queued or filtered): deep-scan passes and
    # repeated pages list them again, and each counts once.
    handled_ids: set[int] = field(default_factory=set)


@dataclass
class Stream:
    """One listing to walk: its query, and what the listed items belong to."""

    label: str
    params: dict[str, Any]
    model_id: int | None = None
    version_name: str | None = None
    is_pass: bool = False  # deep-scan passes do not count as the listing


@dataclass
class WorkItem:
    record: ImageRecord
    target: Target
    stem: Path  # planned file path without extension
    model_id: int | None
    listed_done: bool = False  # the library had it downloaded when it was listed
