"""The records every part of core shares: plain dataclasses and tables, importing nothing of ours.

`core/civitai/records.py` parses the service's JSON into these; `core/library/` stores them;
`core/organize/` places files by them; jobs pass them between the three. The download modes are
here too: the CLI's `--mode 1..6`, saved queries and pasted links all speak them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class DownloadMode(IntEnum):
    """What one identifier of a download names. The numbers are the classic tool's `--mode`
    (1-4) and civitgrab's own (5, 6); they are stored in saved queries and job parameters."""

    USERNAME = 1
    MODEL = 2  # every version of a model
    TAG = 3  # the models carrying a tag, then their versions
    MODEL_VERSION = 4
    POST = 5
    IMAGE = 6


# Numeric browsing levels (one bit per image) and their labels.
NSFW_BITS = {1: "PG", 2: "PG-13", 4: "R", 8: "X", 16: "XXX", 32: "Blocked"}


def nsfw_threshold(pg13_is_nsfw: bool = False) -> int:
    """The lowest NSFW level: R, or PG-13 when the user asks for it (the site's rule)."""
    return 2 if pg13_is_nsfw else 4


def is_nsfw_level(level: int | None, pg13_is_nsfw: bool = False) -> bool:
    """Site semantics: R and above are NSFW; PG-13 only when the user asks for it."""
    return (level or 0) >= nsfw_threshold(pg13_is_nsfw)


# SQLite stores signed 64-bit integers: a bigger number from the service is no usable id, size or
# count (and would fail the whole page's library write).
INT64_MAX = 2**63 - 1


def has_meaningful_meta(meta: dict[str, Any]) -> bool:
    return any(v not in (None, "", [], {}) for v in meta.values())


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass
class ImageRecord:
    """One image or video as the service described it."""

    id: int
    url: str
    type: str = "image"  # image | video | audio
    width: int | None = None
    height: int | None = None
    nsfw_level: int = 0
    username: str | None = None
    post_id: int | None = None
    created_at: str | None = None
    base_model: str | None = None
    model_version_ids: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    checkpoint_name: str | None = None
    model_version_name: str | None = None
    stats: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt(self) -> str | None:
        return _text(self.meta.get("prompt"))

    @property
    def negative_prompt(self) -> str | None:
        return _text(self.meta.get("negativePrompt"))

    @property
    def has_meta(self) -> bool:
        return has_meaningful_meta(self.meta)

    @property
    def is_video(self) -> bool:
        return self.type == "video"

    @property
    def reactions(self) -> int:
        keys = ("likeCount", "heartCount", "laughCount", "cryCount")
        return min(INT64_MAX, sum(v for k, v in self.stats.items() if k in keys and isinstance(v, int)))


@dataclass
class TagVote:
    """One community tag of an image, as `tag.getVotableTags` gives it."""

    id: int
    name: str
    type: str | None = None
    score: int = 0
    up_votes: int = 0
    down_votes: int = 0
    automated: bool = False
    needs_review: bool = False
    concrete: bool = True
    nsfw_level: int | None = None
    # Read from the rendered page, not an answer: the name is the page's display name and type,
    # votes, automated and nsfwLevel are unknown.
    from_page: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "score": self.score,
            "upVotes": self.up_votes,
            "downVotes": self.down_votes,
            "automated": self.automated,
            "needsReview": self.needs_review,
            "concrete": self.concrete,
            "nsfwLevel": self.nsfw_level,
        }
