"""What the filter bar asks for, as plain data (no Qt): a `GalleryQuery` and the sort orders.

The gallery and the database view share the filter bar; each turns the query into a library
`ImageFilter` (the gallery adds "downloaded only").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from civitgrab_desktop.core.library.filters import ImageFilter
from civitgrab_desktop.core.model import NSFW_BITS

# The short labels are the site's (core.model.NSFW_BITS); the filter bar adds a long label and
# the badge a colour.
_LONG_LABEL_AND_COLOUR = {
    1: ("PG — safe", "#2f9e62"),
    2: ("PG-13 — soft", "#2b86b8"),
    4: ("R — mature", "#d9862a"),
    8: ("X — explicit", "#d6453d"),
    16: ("XXX — extreme", "#9b2fc4"),
    32: ("Blocked by CivitAI", "#6b7080"),
}
# value, short label, long label, colour (badge background)
NSFW_LEVELS: tuple[tuple[int, str, str, str], ...] = tuple(
    (value, short, *_LONG_LABEL_AND_COLOUR[value]) for value, short in NSFW_BITS.items()
)
NSFW_LABEL = NSFW_BITS
NSFW_COLOUR = {value: colour for value, _short, _long, colour in NSFW_LEVELS}


def nsfw_label(level: int | None) -> str:
    return NSFW_LABEL.get(int(level or 0), "?")


@dataclass(frozen=True)
class SortOrder:
    key: str
    label: str
    column: str  # a key of core.library.browsing.BROWSE_ORDERS
    descending: bool


SORT_ORDERS: tuple[SortOrder, ...] = (
    SortOrder("newest", "Newest first", "created_at", True),
    SortOrder("oldest", "Oldest first", "created_at", False),
    SortOrder("downloaded", "Recently downloaded", "downloaded_at", True),
    SortOrder("reactions", "Most reactions", "reactions", True),
    SortOrder("id_desc", "Id, highest first", "id", True),
    SortOrder("id_asc", "Id, lowest first", "id", False),
)
SORT_BY_KEY = {s.key: s for s in SORT_ORDERS}
DEFAULT_SORT = "newest"

TAG_STATES = (("done", "Tags fetched"), ("never", "No tags yet"), ("failed", "Tag fetch failed"))
MEDIA_TYPES = (("image", "Images"), ("video", "Videos"))


@dataclass(frozen=True)
class GalleryQuery:
    text: str = ""  # full-text search: prompt, username, model names, tag names
    media_type: str | None = None  # image | video
    nsfw_levels: tuple[int, ...] = ()  # empty: every level
    username: str = ""
    model_version: str = ""
    tag: str = ""
    tag_state: str | None = None  # done | never | failed
    converted: bool | None = None
    date_from: date | None = None  # created on or after (local calendar day)
    date_to: date | None = None  # created on or before

    def to_filter(self, *, fts: bool = True, **base: Any) -> ImageFilter:
        """The library filter; `base` adds fixed conditions (e.g. dl_state='done'). Without
        `fts` the search text becomes a LIKE substring search."""
        fields: dict[str, Any] = dict(base)
        text = " ".join(self.text.split())
        if text:
            fields["text" if fts else "search"] = text
        if self.media_type:
            fields["type"] = self.media_type
        if self.nsfw_levels:
            fields["nsfw_levels"] = sorted(set(self.nsfw_levels))
        if self.username.strip():
            fields["username"] = self.username.strip()
        if self.model_version.strip():
            fields["model_version_name"] = self.model_version.strip()
        if self.tag.strip():
            fields["tags"] = [self.tag.strip()]
        if self.tag_state:
            fields["tag_state"] = self.tag_state
        if self.converted is True:
            fields["cv_state"] = "done"
        elif self.converted is False:
            fields["cv_state"] = ["never", "failed", "skipped"]
        if self.date_from is not None:
            fields["created_after"] = self.date_from.isoformat()
        if self.date_to is not None:
            fields["created_before"] = (self.date_to + timedelta(days=1)).isoformat()
        return ImageFilter(**fields)

    def active_filters(self) -> int:
        """How many filters (not counting the search text) are set."""
        return sum(
            bool(v)
            for v in (
                self.media_type,
                self.nsfw_levels,
                self.username.strip(),
                self.model_version.strip(),
                self.tag.strip(),
                self.tag_state,
                self.converted is not None,
                self.date_from or self.date_to,
            )
        )

    def is_empty(self) -> bool:
        return not self.text.strip() and not self.active_filters()

    def to_state(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "media_type": self.media_type,
            "nsfw_levels": list(self.nsfw_levels),
            "username": self.username,
            "model_version": self.model_version,
            "tag": self.tag,
            "tag_state": self.tag_state,
            "converted": self.converted,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> GalleryQuery:
        state = state or {}

        def day(value: Any) -> date | None:
            try:
                return date.fromisoformat(value) if value else None
            except (TypeError, ValueError):
                return None

        levels = tuple(int(v) for v in state.get("nsfw_levels") or () if str(v).isdigit())
        media = state.get("media_type") if state.get("media_type") in ("image", "video") else None
        tag_state = state.get("tag_state") if state.get("tag_state") in ("done", "never", "failed") else None
        converted = state.get("converted") if isinstance(state.get("converted"), bool) else None
        return cls(
            text=str(state.get("text") or ""),
            media_type=media,
            nsfw_levels=levels,
            username=str(state.get("username") or ""),
            model_version=str(state.get("model_version") or ""),
            tag=str(state.get("tag") or ""),
            tag_state=tag_state,
            converted=converted,
            date_from=day(state.get("date_from")),
            date_to=day(state.get("date_to")),
        )
