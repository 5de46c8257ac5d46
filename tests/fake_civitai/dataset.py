"""The fake CivitAI's data: users, models, versions, images and community tags.

Everything is built from a fixed seed, so ids, uuids, dates, names, tags and media bytes are the same
on every machine and every run. Media bytes are generated lazily (on first request) and cached.

Named fixtures (tests rely on these; ``Dataset.named`` maps the image-level ones to ids)
========================================================================================

Users (``/api/v1/images?username=``; usernames are citext, so any letter case matches):

``alice`` (25 images)
    PNG / JPEG / WebP mix, 64 to 1024 px, every NSFW level (1, 2, 4, 8, 16 and one 32 Blocked).
    Flat meta with prompts, a ``Model`` name and ``civitaiResources``. 3 items have ``meta`` None
    ("no metadata"); 3 have meta (prompt, seed, ...) but no ``Model``, no checkpoint resource and
    ``baseModel`` null ("invalid metadata"); 2 have a URN ``Model`` (the checkpoint resource's
    ``modelVersionName`` is the fallback). Spread over versions 2001, 2002, 2003, 2004, 2007 (all
    queried by other tests, so the same image is found by several modes: cross-mode dedupe), two
    also list LoRA version 2020, two have no model version at all.
``bob_art`` (12 items)
    9 images + 2 MP4 (H.264, 64x64 and 96x96) + 1 WebM (VP9, 96x96); the videos are in version 2012.
``MixedCase`` (5 images)
    ``username=mixedcase`` / ``MIXEDCASE`` return the same items (citext).
``ghost``
    A deleted user. The service skips the username filter for it (the known real bug) and returns
    OTHER users' items with status 200: the server lists the global feed for ``username=ghost``.
    ``images_for_user("ghost")`` is ``[]`` (it owns nothing); ``query_images(username="ghost")``
    mirrors what the server returns.
``empty_user``
    Exists with 0 images: ``{"items":[],"metadata":{}}``.
``hostile`` (12 images)
    ``meta.Model``, ``civitaiResources[].modelVersionName`` and model/version names such as
    ``../../etc/passwd``, ``CON``, ``nul.txt``, a 300-character name, ``<>:"/\\|?*``, trailing dots
    and spaces, control characters, CJK, Arabic, emoji, combining marks and the URN
    ``urn:air:sdxl:checkpoint:civitai:101055@128078``; prompts contain lines like ``Model: evil``.
    ``named["nested_meta"]``: ``meta`` is nested ``{"id":..,"meta":{..}}`` even on the search path.
    ``named["wrong_types"]``: ``width`` is the string ``"512"`` and ``stats`` is null (id and url
    are valid).
``bigcap`` (600 images)
    64 px JPEGs, 100 in each of versions 2014..2019; half are PG, the rest spread over 2..16.
    For deep-scan tests with a small item cap (``FakeCivitai.set_item_cap``).
``carol`` (15), ``dave_ai`` (12), ``erin`` (12), ``frank_gen`` (12), ``grace`` (10), ``heidi`` (8)
    Filler users that populate the model versions and the global feed. ``heidi`` has a WebM and an
    MP4. Fillers hold the other meta shapes: ``comfy`` JSON string, resources-only (no ``Model``),
    size-only meta (``{"Size": ..}``), and a few Blocked (32) items.
``bench`` (``build_dataset(bench_images=N)`` only)
    N small JPEGs (~256 px, ~25-30 KB), version 2021, ids from 30,000,001, minimal meta, no tags.
    ``Dataset.prewarm(ids)`` renders their bytes ahead of a throughput run.

Models (``/api/v1/models``): id, name, versions (id name), tags

* 1001 Anime Diffusion XL: 2001 v1.0, 2002 v2.0; anime, illustration, style
* 1002 Landscape Master: 2003 v3.0; landscape, photography, scenery
* 1003 Sci-Fi Dreams: 2004 Alpha, 2005 Beta, 2006 Gamma; sci-fi, concept art, spaceship
* 1004 Portrait Pro: 2007 v1, 2008 v1.5 Pruned; portrait, photorealistic, woman
* 1005 ``../../etc/passwd`` (hostile): 2009 ``CON``, 2010 ``nul.txt``, 2011 ``v1.0. . ``; hostile, anime
* 1006 Motion Clips (MotionModule): 2012 v1; animation, video
* 1007 Old Relic (Archived: ``files: []``, ``/model-versions/2013`` → 404 Missing model file): 2013 v0.1;
  landscape
* 1008 BigCap Base: 2014..2019 "part 1".."part 6"; stress test
* 1009 MixedCase LoRA (LORA): 2020 v1; portrait, character
* 1010 Bench Model: 2021 v1; benchmark
* 1011 Empty Model (LORA, no images): 2022 v1; sci-fi, robot
* 1012 ``Unicode 模型 نموذج 🎨`` (hostile): 2023 ``版本 一``, 2024 ``e\u0301te\u0301 ☃``; hostile

``/api/v1/tags`` lists ~450 model tags (the ones above plus generated ``<adjective> <noun>``
names), so paging by ``page`` until an empty page is meaningful. A tag name that exists (model tag
or community tag) but has no model gives an empty ``/models`` result; an unknown name gives ALL
models (the real quirk).

Community tags (``tag.getVotableTags``): a ~70-name vocabulary including names whose page display
name differs (``1girl``→woman, ``2girls``→women, ``1boy``→man, ``ass``→butt, ...), Moderation tags
(``suggestive`` nsfwLevel 4, ``nudity`` 8, ``explicit nudity`` 16; the page shows them by their
moderation label, ``suggestive content``), non-concrete votes (dropped by the server unless their
lastUpvote is after now + 24 h, the real cutoff), ``needsReview`` votes, WD14 + Rekognition mixes (the server
drops the Rekognition ones). Most images have 4-14 votes (many show more than 6 tags on the page);
about 1 in 10 has none. ``named["tags_showcase"]`` (alice's first image) has a hand-made set: a
renamed tag, a Moderation tag, ties on score, a needsReview tag, a non-concrete tag upvoted after
the cutoff (kept, hourglass and no ``title`` on the page) and a stale non-concrete one (dropped),
more than 6 visible in total.

``named["many_tags"]`` (a PG image of carol) has 150 concrete tags, more than the default ``take``
of 100: only ``take`` larger than 100 returns them all.

Other named images: ``named["alice_no_meta"]``, ``named["alice_invalid_meta"]``,
``named["alice_urn"]``, ``named["bob_mp4"]``, ``named["bob_webm"]``, ``named["blocked"]``,
``named["large_png"]`` (alice's 1024x1024 JPEG is ``named["large_jpeg"]``).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import uuid as uuidlib
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

SEED = 20260801
DAY_MS = 86_400_000
BASE_EPOCH_MS = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
# "Now" for the dataset: freshness of tag upvotes is measured against this, never the wall clock.
DATASET_NOW_MS = int(datetime(2026, 8, 1, tzinfo=UTC).timestamp() * 1000)
# src/server/common/constants.ts `tagVoting.voteDuration` (24 h). tag.service.ts getVotableTags keeps
# a non-concrete tag only if `lastUpvote > now + voteDuration` (sic: a cutoff in the future), and
# VotableTag.tsx hides the `Score:` title while `lastUpvote + voteDuration > now` ("isVoting").
VOTE_DURATION_MS = DAY_MS
FRESH_UPVOTE_MS = DAY_MS  # how the generator spreads recent upvotes (most end up filtered out)
DEFAULT_TAKE = 100  # tag.service.ts getVotableTags: `take = 100`

NSFW_STRINGS = {1: "None", 2: "Soft", 4: "Mature", 8: "X", 16: "X", 32: "Blocked"}  # §3.3
CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "webm": "video/webm",
}
VIDEO_FORMATS = {"mp4", "webm"}
# §7.3: when a WD14 tag exists, Rekognition tags are dropped unless Moderation or one of these.
REKOGNITION_KEEP = {"anime", "cartoon", "comics", "manga", "man", "woman", "men", "women"}
# src/libs/moderation.ts `moderationCategories`: (value, label) of every category and child. The
# page shows a Moderation tag by its label, lower-cased (`moderationDisplayNames`).
_MODERATION_LABELS = [
    ("explicit nudity", "Explicit Adult Content"),
    ("nudity", "Nudity"),
    ("graphic male nudity", "Explicit Male Nudity"),
    ("graphic female nudity", "Explicit Female Nudity"),
    ("sexual activity", "Sexual Acts"),
    ("illustrated explicit nudity", "Illustrated Nudity"),
    ("adult toys", "Adult Products"),
    ("suggestive", "Suggestive Content"),
    ("female swimwear or underwear", "Female Swimwear/Underwear"),
    ("male swimwear or underwear", "Male Swimwear/Underwear"),
    ("partial nudity", "Partial Nudity"),
    ("revealing clothes", "Sexy Attire"),
    ("sexual situations", "Sexual Situations"),
    ("violence", "Violence"),
    ("graphic violence or gore", "Intense Violence/Gore"),
    ("physical violence", "Physical Violence"),
    ("weapon violence", "Weapon-related Violence"),
    ("self injury", "Self-harm"),
    ("visually disturbing", "Visually Disturbing"),
    ("emaciated bodies", "Emaciated Figures"),
    ("corpses", "Deceased Bodies"),
    ("hanging", "Hanging"),
    ("explosions and blasts", "Explosions"),
    ("disturbing", "Disturbing"),
    ("rude gestures", "Offensive Gestures"),
    ("middle finger", "Offensive gestures"),
    ("hate symbols", "Hate Symbols"),
    ("nazi party", "Nazi-related Content"),
    ("white supremacy", "White Supremacist Content"),
    ("extremist", "Extremist Content"),
]
# src/libs/tags.ts getTagDisplayName: names the page shows instead of the API name (the moderation
# labels first, then the hard-coded overrides, as `tagNameOverrides` spreads them).
DISPLAY_NAMES = {
    **{value: label.lower() for value, label in _MODERATION_LABELS},
    "1girl": "woman",
    "2girls": "women",
    "3girls": "women",
    "4girls": "women",
    "5girls": "women",
    "6+girls": "women",
    "multiple girls": "women",
    "1boy": "man",
    "2boys": "men",
    "3boys": "men",
    "4boys": "men",
    "5boys": "men",
    "6+boys": "men",
    "multiple boys": "men",
    "pussy": "vagina",
    "ass": "butt",
    "ass focus": "butt focus",
    "huge ass": "huge butt",
}


def display_name(name: str) -> str:
    """The tag name the image page shows (§8 getTagDisplayName)."""
    return DISPLAY_NAMES.get(name, name)


def iso_ms(ms: int) -> str:
    """ISO-8601 with milliseconds and Z, as the service emits dates."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso_ms(text: str) -> int:
    dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(round(dt.timestamp() * 1000))


# ----------------------------------------------------------------------------- records


@dataclass
class User:
    id: int
    username: str
    deleted: bool = False
    created_at: str = ""


@dataclass
class Tag:
    """A community tag (the Tag table): id, name, type, its own nsfw level."""

    id: int
    name: str
    type: str  # UserGenerated | Label | Moderation | System
    nsfw_level: int = 1


@dataclass
class TagVote:
    """One community tag on one image (the image's tag cache row), with the tag's fields copied."""

    id: int
    name: str
    type: str
    nsfw_level: int
    score: int
    up_votes: int = 0
    down_votes: int = 0
    automated: bool = False
    needs_review: bool = False
    concrete: bool = True
    last_upvote: str | None = None  # ISO date or None
    source: str = "User"  # User | WD14 | Rekognition | Computed (not emitted; drives the §7.3 rule)

    def api_dict(self) -> dict[str, Any]:
        """The tag.getVotableTags item, keys in the §7.3 order (lastUpvote as an ISO string)."""
        return {
            "score": self.score,
            "upVotes": self.up_votes,
            "downVotes": self.down_votes,
            "automated": self.automated,
            "needsReview": self.needs_review,
            "concrete": self.concrete,
            "lastUpvote": self.last_upvote,
            "id": self.id,
            "type": self.type,
            "nsfwLevel": self.nsfw_level,
            "name": self.name,
        }


@dataclass
class ModelTag:
    """A model tag as ``/api/v1/tags`` lists it."""

    id: int
    name: str
    model_count: int
    nsfw_level: int = 1
    unfeatured: bool = False


@dataclass
class ModelVersion:
    id: int
    model_id: int
    name: str
    base_model: str
    created_at: str
    published_at: str
    trained_words: list[str] = field(default_factory=list)
    download_count: int = 0
    thumbs_up: int = 0
    file_kb: float = 6617.0


@dataclass
class Model:
    id: int
    name: str
    type: str  # Checkpoint | LORA | MotionModule | ...
    creator: str
    tags: list[str]
    version_ids: list[int]
    created_at: str
    description: str = ""
    mode: str | None = None  # None | "Archived" | "TakenDown"
    download_count: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    comment_count: int = 0
    collected_count: int = 0


@dataclass
class ImageItem:
    """One image or video. ``meta`` is the flat generation data (None = no metadata)."""

    id: int
    uuid: str
    username: str
    user_id: int
    post_id: int
    created_at: str
    nsfw_level: int  # a single bit: 1, 2, 4, 8, 16 or 32
    type: str  # image | video
    media_format: str  # png | jpeg | webp | mp4 | webm
    width: int
    height: int
    meta: dict[str, Any] | None
    model_version_ids: list[int]
    base_model: str | None
    stats: dict[str, int]
    tags: list[TagVote]
    hash: str
    name: str  # original file name (image.get `name`)
    collected_count: int = 0
    visual_seed: int = 0
    clip: str | None = None  # for videos: file under media/
    media_file: str | None = None  # benchmarks: the original bytes are this file (real-size media)
    meta_nested_always: bool = False  # quirk: nested meta even on the search path
    # image.service.ts getImagesFromFeedSearch: `NOT availability = Private` unless the viewer owns it
    availability: str = "Public"
    overrides: dict[str, Any] = field(default_factory=dict)  # raw /images JSON overrides (wrong types)

    @cached_property
    def created_ms(self) -> int:
        return parse_iso_ms(self.created_at)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.media_format]

    @property
    def is_video(self) -> bool:
        return self.type == "video"

    @property
    def url_ext(self) -> str:
        """The extension the service puts in URLs: from the type, not the real format (§3.3)."""
        return "mp4" if self.is_video else "jpeg"

    @property
    def reactions(self) -> int:
        s = self.stats
        return s["likeCount"] + s["heartCount"] + s["laughCount"] + s["cryCount"]

    def media_key(self) -> tuple:
        """Everything that determines the media bytes (the media cache key)."""
        return self._media_key

    @cached_property
    def _media_key(self) -> tuple:
        text = a1111_parameters(self) if self.media_format == "png" else ""
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()
        return (self.uuid, self.media_format, self.width, self.height, self.visual_seed, self.clip, digest)


# --------------------------------------------------------------------- meta / PNG text


def a1111_parameters(img: ImageItem) -> str:
    """The A1111 ``parameters`` text (PNG tEXt) for an image's meta; "" when it has none."""
    meta = img.meta
    if not meta or "prompt" not in meta:
        return ""
    lines = [str(meta.get("prompt", ""))]
    if meta.get("negativePrompt"):
        lines.append(f"Negative prompt: {meta['negativePrompt']}")
    parts = []
    for label, key in (
        ("Steps", "steps"),
        ("Sampler", "sampler"),
        ("CFG scale", "cfgScale"),
        ("Seed", "seed"),
        ("Size", "Size"),
        ("Model hash", "Model hash"),
        ("Model", "Model"),
        ("Clip skip", "Clip skip"),
    ):
        if key in meta and meta[key] not in (None, ""):
            parts.append(f"{label}: {meta[key]}")
    parts.append("Version: v1.10.1")
    lines.append(", ".join(parts))
    return "\n".join(lines)


# ----------------------------------------------------------------------- the dataset


SORTS = ("Most Reactions", "Most Comments", "Most Collected", "Newest", "Oldest", "Random")


def _mix(n: int) -> int:
    """A stable pseudo-random rank for the Random sort."""
    return int.from_bytes(hashlib.blake2b(n.to_bytes(8, "big"), digest_size=6).digest(), "big")


def sort_value(img: ImageItem, sort: str, legacy: bool = False) -> tuple[int, bool]:
    """(primary value, descending?) for an image under a sort. Ties break on id the same way."""
    if legacy and sort in ("Most Reactions", "Most Comments", "Most Collected"):
        return img.id, True  # §3.4: modelId-only requests collapse engagement sorts to newest-by-id
    if sort == "Newest":
        return img.created_ms, True
    if sort == "Oldest":
        return img.created_ms, False
    if sort == "Most Comments":
        return img.stats["commentCount"], True
    if sort == "Most Collected":
        return img.collected_count, True
    if sort == "Random":
        return _mix(img.id), False
    return img.reactions, True  # Most Reactions (default)


def sort_is_desc(sort: str, legacy: bool = False) -> bool:
    """Whether a sort runs descending (the direction does not depend on the item)."""
    if legacy and sort in ("Most Reactions", "Most Comments", "Most Collected"):
        return True
    return sort not in ("Oldest", "Random")


def order_key(primary: int, item_id: int, desc: bool) -> tuple[int, int]:
    return (-primary, -item_id) if desc else (primary, item_id)


class Dataset:
    """All the data the fake serves, with the accessors tests use to compute expectations.

    ``users`` (by exact username), ``models``, ``versions``, ``images`` (by id) and ``tags`` (the
    community tag vocabulary, by id) are plain dicts; ``model_tags`` is the ``/api/v1/tags`` list.
    ``fork()`` gives an overlay that shares the base objects but can publish and delete on its
    own (each ``FakeCivitai`` serves a fork, so nothing leaks into a shared dataset).
    """

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.models: dict[int, Model] = {}
        self.versions: dict[int, ModelVersion] = {}
        self.images: dict[int, ImageItem] = {}
        self.tags: dict[int, Tag] = {}
        self.model_tags: list[ModelTag] = []
        self.named: dict[str, int] = {}
        self.bench_images = 0
        self._users_lower: dict[str, User] = {}
        self._by_user: dict[int, list[int]] = {}
        self._by_version: dict[int, list[int]] = {}
        self._by_uuid: dict[str, int] = {}
        self._lock = threading.RLock()
        self._rev = 0
        self._select_cache: dict[tuple, tuple[list[ImageItem], list[tuple[int, int]]]] = {}
        self._publish_rng = random.Random(SEED + 99)

    # -- construction helpers ------------------------------------------------------------

    def _add_user(self, user: User) -> None:
        self.users[user.username] = user
        self._users_lower[user.username.lower()] = user
        self._by_user.setdefault(user.id, [])

    def _index(self, img: ImageItem) -> None:
        self.images[img.id] = img
        self._by_user.setdefault(img.user_id, []).append(img.id)
        for vid in img.model_version_ids:
            self._by_version.setdefault(vid, []).append(img.id)
        self._by_uuid[img.uuid] = img.id

    def fork(self) -> Dataset:
        """A cheap overlay: same objects, private indexes, so publish/delete stay local."""
        with self._lock:
            d = Dataset.__new__(Dataset)
            d.users = dict(self.users)
            d.models = dict(self.models)
            d.versions = dict(self.versions)
            d.images = dict(self.images)
            d.tags = dict(self.tags)
            d.model_tags = list(self.model_tags)
            d.named = dict(self.named)
            d.bench_images = self.bench_images
            d._users_lower = dict(self._users_lower)
            d._by_user = {k: list(v) for k, v in self._by_user.items()}
            d._by_version = {k: list(v) for k, v in self._by_version.items()}
            d._by_uuid = dict(self._by_uuid)
            d._lock = threading.RLock()
            d._rev = 0
            d._select_cache = {}
            d._publish_rng = random.Random(SEED + 99)
            return d

    # -- lookups ---------------------------------------------------------------------------

    def user(self, username: str) -> User | None:
        """citext lookup: any letter case matches."""
        return self._users_lower.get(username.strip().lower())

    def image(self, image_id: int) -> ImageItem | None:
        return self.images.get(image_id)

    def image_by_uuid(self, uuid: str) -> ImageItem | None:
        iid = self._by_uuid.get(uuid)
        return self.images.get(iid) if iid is not None else None

    def _sorted(self, items: Iterable[ImageItem], sort: str = "Newest") -> list[ImageItem]:
        def key(i: ImageItem) -> tuple[int, int]:
            p, desc = sort_value(i, sort)
            return order_key(p, i.id, desc)

        return sorted(items, key=key)

    def images_for_user(self, username: str, mask: int = 31, sort: str = "Newest") -> list[ImageItem]:
        """The user's own images whose level is in ``mask`` (newest first). citext; [] if unknown."""
        with self._lock:
            u = self.user(username)
            if u is None:
                return []
            ids = self._by_user.get(u.id, [])
            return self._sorted((self.images[i] for i in ids if self.images[i].nsfw_level & mask), sort)

    def images_for_version(self, version_id: int, mask: int = 31, sort: str = "Newest") -> list[ImageItem]:
        with self._lock:
            ids = self._by_version.get(version_id, [])
            return self._sorted((self.images[i] for i in ids if self.images[i].nsfw_level & mask), sort)

    def images_for_model(self, model_id: int, mask: int = 31, sort: str = "Newest") -> list[ImageItem]:
        with self._lock:
            m = self.models.get(model_id)
            if m is None:
                return []
            seen: dict[int, ImageItem] = {}
            for vid in m.version_ids:
                for i in self._by_version.get(vid, []):
                    img = self.images[i]
                    if img.nsfw_level & mask:
                        seen[i] = img
            return self._sorted(seen.values(), sort)

    def tag_exists(self, name: str) -> bool:
        low = name.strip().lower()
        return any(t.name.lower() == low for t in self.model_tags) or any(
            t.name.lower() == low for t in self.tags.values()
        )

    def models_with_tag(self, name: str) -> list[Model]:
        """Models whose ``tags`` contain ``name`` (exact, case-insensitive), by id.

        The server returns ALL models when no tag has that name (§4.2); this accessor does not."""
        low = name.strip().lower()
        return [m for m in sorted(self.models.values(), key=lambda m: m.id) if low in (t.lower() for t in m.tags)]

    def model_nsfw_level(self, model: Model) -> int:
        level = 0
        for vid in model.version_ids:
            for i in self._by_version.get(vid, []):
                lv = self.images[i].nsfw_level
                if lv != 32:
                    level |= lv
        return level or 1

    def version_showcase(self, version_id: int, mask: int = 31, limit: int = 10) -> list[ImageItem]:
        """The images a version lists in ``modelVersions[].images`` (oldest first, up to 10)."""
        with self._lock:
            ids = sorted(self._by_version.get(version_id, []))
            out = [self.images[i] for i in ids if self.images[i].nsfw_level & mask]
            return out[:limit]

    def votable_tags(self, image_id: int, take: int = DEFAULT_TAKE) -> list[TagVote]:
        """src/server/services/tag.service.ts getVotableTags (image): the tag cache ordered by score
        desc / tagId asc (src/server/redis/caches.ts imageTagsCache), sliced to `take` (default
        100), the Rekognition rule, then concrete tags, or ones whose lastUpvote is after
        now + voteDuration (an anonymous caller has no own votes)."""
        img = self.images.get(image_id)
        if img is None:
            return []
        ordered = sorted(img.tags, key=lambda v: (-v.score, v.id))[: max(0, take)]
        if any(v.source == "WD14" for v in ordered):
            ordered = [
                v
                for v in ordered
                if v.source != "Rekognition" or v.type == "Moderation" or v.name in REKOGNITION_KEEP
            ]
        out = []
        for v in ordered:
            fresh = v.last_upvote is not None and parse_iso_ms(v.last_upvote) > DATASET_NOW_MS + VOTE_DURATION_MS
            if v.concrete or fresh:
                out.append(v)
        return out

    def expected_tags(self, image_id: int, take: int = DEFAULT_TAKE) -> list[dict[str, Any]]:
        """What tag.getVotableTags returns for the image (API dicts, §7.3 key order)."""
        return [v.api_dict() for v in self.votable_tags(image_id, take)]

    def all_tags(self, image_id: int) -> list[dict[str, Any]]:
        """Every tag getVotableTags can return for the image (a `take` large enough for all)."""
        img = self.images.get(image_id)
        return self.expected_tags(image_id, take=len(img.tags) if img else 0)

    def page_tag_order(self, image_id: int, *, can_view_nsfw: bool = True) -> list[dict[str, Any]]:
        """The order the image page shows the tags in (VotableTags.tsx): non-public tags first,
        then API order; without canViewNsfw (the green site) non-public tags are not shown."""
        tags = self.expected_tags(image_id)
        mature = [t for t in tags if t["nsfwLevel"] != 1]
        return ([] if not can_view_nsfw else mature) + [t for t in tags if t["nsfwLevel"] == 1]

    def media(self, image_id: int) -> tuple[bytes, str]:
        """The original bytes and their real Content-Type (generated once, cached)."""
        from .media import original_bytes

        img = self.images[image_id]
        return original_bytes(img), img.content_type

    def prewarm(self, image_ids: Iterable[int] | None = None) -> int:
        """Generate (and cache) the original bytes of these images (default: all), e.g. before a
        throughput benchmark so the server does not render on first request. Returns the count."""
        from .media import original_bytes

        ids = list(self.images) if image_ids is None else list(image_ids)
        for iid in ids:
            original_bytes(self.images[iid])
        return len(ids)

    # -- the server's image query -------------------------------------------------------

    def query_images(
        self,
        *,
        username: str | None = None,
        user_id: int | None = None,
        model_id: int | None = None,
        version_id: int | None = None,
        post_id: int | None = None,
        image_id: int | None = None,
        mask: int = 1,
        media_type: str | None = None,
        tag_ids: tuple[int, ...] | None = None,
        base_models: tuple[str, ...] | None = None,
        sort: str = "Most Reactions",
    ) -> list[ImageItem]:
        """What ``/api/v1/images`` lists for these filters, in order (every page together, no cap).

        A deleted user (``ghost``) does not filter at all (the real bug). An unknown username
        raises ``KeyError`` (the server answers 404, or 500 with the toggle)."""
        return self.select(
            username=username,
            user_id=user_id,
            model_id=model_id,
            version_id=version_id,
            post_id=post_id,
            image_id=image_id,
            mask=mask,
            media_type=media_type,
            tag_ids=tag_ids,
            base_models=base_models,
            sort=sort,
        )[0]

    def select(
        self,
        *,
        username: str | None = None,
        user_id: int | None = None,
        model_id: int | None = None,
        version_id: int | None = None,
        post_id: int | None = None,
        image_id: int | None = None,
        mask: int = 1,
        media_type: str | None = None,
        tag_ids: tuple[int, ...] | None = None,
        base_models: tuple[str, ...] | None = None,
        sort: str = "Most Reactions",
        viewer_id: int | None = None,
    ) -> tuple[list[ImageItem], list[tuple[int, int]]]:
        """Sorted items plus their order keys (for keyset cursors). Cached until a mutation.
        Private posts' images are left out unless ``viewer_id`` owns them (image.service.ts
        getImagesFromFeedSearch: ``NOT availability = Private OR userId = <viewer>``)."""
        legacy = image_id is not None or (model_id is not None and version_id is None)
        uid = None
        if username:
            u = self.user(username)
            if u is None:
                raise KeyError(username)
            if not u.deleted:
                uid = u.id
        cache_key = (
            uid,
            user_id,
            model_id,
            version_id,
            post_id,
            image_id,
            mask,
            media_type,
            tag_ids,
            base_models,
            sort,
            viewer_id,
        )
        with self._lock:
            hit = self._select_cache.get(cache_key)
            if hit is not None:
                return hit
            if image_id is not None:
                cand = [self.images[image_id]] if image_id in self.images else []
            elif version_id is not None:
                cand = [self.images[i] for i in self._by_version.get(version_id, [])]
            elif uid is not None:
                cand = [self.images[i] for i in self._by_user.get(uid, [])]
            elif model_id is not None:
                m = self.models.get(model_id)
                ids: set[int] = set()
                for vid in m.version_ids if m else []:
                    ids.update(self._by_version.get(vid, []))
                cand = [self.images[i] for i in ids]
            else:
                cand = list(self.images.values())
            model_versions = set(self.models[model_id].version_ids) if model_id in self.models else set()
            out = []
            for img in cand:
                if not img.nsfw_level & mask:
                    continue
                if uid is not None and img.user_id != uid:
                    continue
                if user_id is not None and img.user_id != user_id:
                    continue
                if version_id is not None and version_id not in img.model_version_ids:
                    continue
                if model_id is not None and not model_versions.intersection(img.model_version_ids):
                    continue
                if post_id is not None and img.post_id != post_id:
                    continue
                if media_type is not None and img.type != media_type:
                    continue
                if tag_ids and not {v.id for v in img.tags}.intersection(tag_ids):
                    continue
                if base_models and img.base_model not in base_models:
                    continue
                if img.availability == "Private" and img.user_id != viewer_id:
                    continue
                out.append(img)
            keyed = []
            for img in out:
                p, desc = sort_value(img, sort, legacy)
                keyed.append((order_key(p, img.id, desc), img))
            keyed.sort(key=lambda kv: kv[0])
            result = ([img for _, img in keyed], [k for k, _ in keyed])
            if len(self._select_cache) > 512:
                self._select_cache.clear()
            self._select_cache[cache_key] = result
            return result

    @staticmethod
    def start_index(keys: list[tuple[int, int]], after: tuple[int, int]) -> int:
        """Index of the first key strictly after ``after`` (keyset pagination)."""
        return bisect_right(keys, after)

    # -- test-only mutations ------------------------------------------------------------

    def _bump(self) -> None:
        self._rev += 1
        self._select_cache.clear()

    def publish(
        self,
        username: str,
        count: int,
        *,
        type: str = "image",
        media_format: str | None = None,
        nsfw_level: int = 1,
        model_version_ids: list[int] | None = None,
        width: int = 96,
        height: int = 96,
        meta: dict[str, Any] | None | str = "auto",
        base_model: str | None = "auto",
        availability: str = "Public",
        tags: list[TagVote] | None = None,
    ) -> list[int]:
        """New images (newest of all) for ``username`` (created if unknown). Returns their ids.
        ``availability="Private"``: a hidden post, listed only to its owner."""
        with self._lock:
            u = self.user(username)
            if u is None:
                u = User(id=max((x.id for x in self.users.values()), default=5000) + 1, username=username)
                self._add_user(u)
            fmt = media_format or ("mp4" if type == "video" else "jpeg")
            next_id = max(self.images, default=1_000_000) + 1
            next_ms = max((i.created_ms for i in self.images.values()), default=DATASET_NOW_MS) + 1000
            post_id = max((i.post_id for i in self.images.values()), default=800_000) + 1
            vids = list(model_version_ids) if model_version_ids is not None else []
            rng = self._publish_rng
            ids = []
            for n in range(count):
                iid = next_id + n
                if meta == "auto":
                    m: dict[str, Any] | None = {
                        "prompt": f"freshly published image {iid}, {rng.choice(_PROMPT_WORDS)}",
                        "seed": rng.randrange(2**32),
                        "steps": 20,
                        "Model": "publishedModel_v1",
                    }
                else:
                    m = meta  # type: ignore[assignment]
                bm = base_model
                if bm == "auto":
                    bm = self.versions[vids[0]].base_model if vids and vids[0] in self.versions else None
                clip = None
                w, h = width, height
                if fmt in VIDEO_FORMATS:
                    clip = f"clip_96.{fmt}"
                    w = h = 96
                img = ImageItem(
                    id=iid,
                    uuid=str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                    username=u.username,
                    user_id=u.id,
                    post_id=post_id,
                    created_at=iso_ms(next_ms + n * 1000),
                    nsfw_level=nsfw_level,
                    type="video" if fmt in VIDEO_FORMATS else "image",
                    media_format=fmt,
                    width=w,
                    height=h,
                    meta=m,
                    model_version_ids=vids,
                    base_model=bm,
                    stats=_zero_stats(),
                    tags=list(tags or []),
                    hash=_blurhash(rng),
                    name=f"published_{iid}.{fmt}",
                    availability=availability,
                    visual_seed=iid,
                    clip=clip,
                )
                self._index(img)
                ids.append(iid)
            self._bump()
            return ids

    def delete(self, ids: Iterable[int]) -> None:
        """Remove images from listings, tRPC, the page and the CDN."""
        with self._lock:
            for iid in ids:
                img = self.images.pop(int(iid), None)
                if img is None:
                    continue
                lst = self._by_user.get(img.user_id)
                if lst and iid in lst:
                    lst.remove(iid)
                for vid in img.model_version_ids:
                    lst = self._by_version.get(vid)
                    if lst and iid in lst:
                        lst.remove(iid)
                self._by_uuid.pop(img.uuid, None)
            self._bump()

    def summary(self) -> dict[str, int]:
        """Image counts per user."""
        return {u.username: len(self._by_user.get(u.id, [])) for u in self.users.values()}


# ------------------------------------------------------------------------------ builder

_BLURHASH_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"

_PROMPT_WORDS = [
    "masterpiece",
    "best quality",
    "a lighthouse on a cliff",
    "portrait of a knight",
    "neon city at night",
    "cozy cabin in the snow",
    "a red fox in a forest",
    "retro spaceship",
    "watercolor flowers",
    "cyberpunk street market",
    "mountain lake at dawn",
    "steampunk airship",
    "ancient temple ruins",
    "a cat wearing a hat",
    "underwater coral reef",
    "dramatic lighting",
    "highly detailed",
    "soft focus",
    "volumetric fog",
    "golden hour",
    "8k",
    "cinematic",
    "long hair",
    "blue eyes",
    "smile",
]
_NEGATIVE = [
    "lowres, bad anatomy, bad hands, text, error, missing fingers",
    "blurry, worst quality, low quality, jpeg artifacts, watermark",
    "(worst quality:1.4), (low quality:1.4), monochrome",
]
_SAMPLERS = ["DPM++ 2M Karras", "Euler a", "DPM++ SDE Karras", "DDIM", "UniPC"]

# (id, name, type, nsfwLevel) -- the community tag vocabulary.
_COMMUNITY_TAGS: list[tuple[int, str, str, int]] = [
    (4, "anime", "UserGenerated", 1),
    (5, "cartoon", "UserGenerated", 1),
    (111755, "suggestive", "Moderation", 4),
    (111757, "partial nudity", "Moderation", 4),
    (111759, "nudity", "Moderation", 8),
    (111761, "explicit nudity", "Moderation", 16),
    (112001, "sexual situations", "Moderation", 16),
    (1465, "butt", "UserGenerated", 1),
    (5228, "long hair", "Label", 1),
    (5133, "1girl", "Label", 1),
    (5134, "2girls", "Label", 1),
    (5135, "multiple girls", "Label", 1),
    (5140, "1boy", "Label", 1),
    (5141, "2boys", "Label", 1),
    (5160, "ass", "Label", 2),
    (5161, "ass focus", "Label", 4),
    (5162, "huge ass", "Label", 4),
    (5163, "pussy", "Label", 16),
    (5201, "solo", "Label", 1),
    (5202, "smile", "Label", 1),
    (5203, "blue eyes", "Label", 1),
    (5204, "brown eyes", "Label", 1),
    (5205, "green eyes", "Label", 1),
    (5206, "red hair", "Label", 1),
    (5207, "blonde hair", "Label", 1),
    (5208, "black hair", "Label", 1),
    (5209, "looking at viewer", "Label", 1),
    (5210, "upper body", "Label", 1),
    (5211, "full body", "Label", 1),
    (5212, "standing", "Label", 1),
    (5213, "sitting", "Label", 1),
    (5214, "open mouth", "Label", 1),
    (5215, "closed eyes", "Label", 1),
    (5216, "holding", "Label", 1),
    (5217, "jewelry", "Label", 1),
    (5218, "necklace", "Label", 1),
    (5219, "earrings", "Label", 1),
    (5220, "dress", "Label", 1),
    (5221, "hat", "Label", 1),
    (5222, "glasses", "Label", 1),
    (5223, "shirt", "Label", 1),
    (5224, "jacket", "Label", 1),
    (5225, "outdoors", "Label", 1),
    (5226, "sky", "Label", 1),
    (5227, "cloud", "Label", 1),
    (5229, "tree", "Label", 1),
    (5230, "water", "Label", 1),
    (5231, "building", "Label", 1),
    (5232, "city", "Label", 1),
    (5233, "night", "Label", 1),
    (5234, "flower", "Label", 1),
    (5235, "tattoo", "Label", 1),
    (6001, "woman", "UserGenerated", 1),
    (6002, "man", "UserGenerated", 1),
    (6003, "clothing", "UserGenerated", 1),
    (6004, "portrait", "UserGenerated", 1),
    (6005, "landscape", "UserGenerated", 1),
    (6006, "car", "UserGenerated", 1),
    (6007, "robot", "UserGenerated", 1),
    (6008, "armor", "UserGenerated", 1),
    (6009, "sword", "UserGenerated", 1),
    (6010, "cat", "UserGenerated", 1),
    (6011, "dog", "UserGenerated", 1),
    (6012, "mountain", "UserGenerated", 1),
    (6013, "ocean", "UserGenerated", 1),
    (6014, "sunset", "UserGenerated", 1),
    (6015, "forest", "UserGenerated", 1),
    (6016, "photorealistic", "UserGenerated", 1),
    (6017, "sci-fi", "UserGenerated", 1),
    (6018, "spaceship", "UserGenerated", 1),
    (6019, "fantasy", "UserGenerated", 1),
    (6020, "castle", "UserGenerated", 1),
    (6021, "dragon", "UserGenerated", 1),
    (7001, "video", "System", 1),
]

# Models: id, name, type, creator, tags, [(version id, version name, base model)], mode
_MODELS: list[tuple[int, str, str, str, list[str], list[tuple[int, str, str]], str | None]] = [
    (1001, "Anime Diffusion XL", "Checkpoint", "carol", ["anime", "illustration", "style"],
     [(2001, "v1.0", "SDXL 1.0"), (2002, "v2.0", "SDXL 1.0")], None),
    (1002, "Landscape Master", "Checkpoint", "dave_ai", ["landscape", "photography", "scenery"],
     [(2003, "v3.0", "SD 1.5")], None),
    (1003, "Sci-Fi Dreams", "Checkpoint", "erin", ["sci-fi", "concept art", "spaceship"],
     [(2004, "Alpha", "Flux.1 D"), (2005, "Beta", "Flux.1 D"), (2006, "Gamma", "Flux.1 D")], None),
    (1004, "Portrait Pro", "Checkpoint", "frank_gen", ["portrait", "photorealistic", "woman"],
     [(2007, "v1", "Pony"), (2008, "v1.5 Pruned", "Pony")], None),
    (1005, "../../etc/passwd", "Checkpoint", "hostile", ["hostile", "anime"],
     [(2009, "CON", "SDXL 1.0"), (2010, "nul.txt", "SDXL 1.0"), (2011, "v1.0. . ", "SDXL 1.0")], None),
    (1006, "Motion Clips", "MotionModule", "bob_art", ["animation", "video"], [(2012, "v1", "SD 1.5")], None),
    (1007, "Old Relic", "Checkpoint", "dave_ai", ["landscape"], [(2013, "v0.1", "SD 1.5")], "Archived"),
    (1008, "BigCap Base", "Checkpoint", "bigcap", ["stress test"],
     [(2014 + k, f"part {k + 1}", "Illustrious") for k in range(6)], None),
    (1009, "MixedCase LoRA", "LORA", "MixedCase", ["portrait", "character"], [(2020, "v1", "SDXL 1.0")], None),
    (1010, "Bench Model", "Checkpoint", "bench", ["benchmark"], [(2021, "v1", "SD 1.5")], None),
    (1011, "Empty Model", "LORA", "grace", ["sci-fi", "robot"], [(2022, "v1", "SDXL 1.0")], None),
    (1012, "Unicode 模型 نموذج 🎨", "LORA", "hostile", ["hostile"],
     [(2023, "版本 一", "SDXL 1.0"), (2024, "e\u0301te\u0301 ☃", "SDXL 1.0")], None),
]

_USERS = [
    (5001, "alice"),
    (5002, "bob_art"),
    (5003, "MixedCase"),
    (5004, "ghost"),
    (5005, "empty_user"),
    (5006, "hostile"),
    (5007, "bigcap"),
    (5008, "carol"),
    (5009, "dave_ai"),
    (5010, "erin"),
    (5011, "frank_gen"),
    (5012, "grace"),
    (5013, "heidi"),
    (5014, "bench"),
]

# (format, nsfw level, (w, h), meta kind, versions)
_ALICE = [
    ("png", 1, (512, 768), "full", [2001]),  # tags_showcase
    ("jpeg", 1, (256, 256), "full", [2001, 2020]),
    ("webp", 2, (320, 240), "full", [2001]),
    ("png", 4, (128, 192), "full", [2001]),
    ("jpeg", 8, (200, 200), "full", [2001]),
    ("png", 16, (96, 128), "full", [2001]),
    ("jpeg", 1, (1024, 1024), "full", [2002]),  # large_jpeg
    ("webp", 1, (160, 160), "full", [2002, 2020]),
    ("png", 2, (256, 384), "full", [2002]),
    ("jpeg", 4, (64, 64), "none", [2002]),
    ("png", 1, (640, 480), "full", [2003]),  # large_png
    ("jpeg", 1, (300, 200), "urn", [2003]),
    ("webp", 8, (128, 128), "full", [2003]),
    ("jpeg", 2, (240, 320), "none", [2003]),
    ("png", 1, (192, 192), "invalid", [2003]),
    ("jpeg", 1, (768, 512), "full", [2004]),
    ("png", 16, (128, 128), "full", [2004]),
    ("webp", 4, (96, 96), "invalid", [2004]),
    ("jpeg", 1, (256, 320), "full", [2004]),
    ("png", 1, (200, 300), "full", [2007]),
    ("jpeg", 2, (180, 240), "none", [2007]),
    ("png", 8, (64, 96), "invalid", []),
    ("jpeg", 32, (128, 96), "full", [2007]),
    ("webp", 1, (320, 320), "urn", [2007]),
    ("jpeg", 1, (96, 64), "full", []),
]

_BOB = [
    ("jpeg", 1, (256, 256), "full", [2001]),
    ("png", 1, (320, 480), "full", [2003]),
    ("jpeg", 2, (200, 150), "full", [2003]),
    ("webp", 1, (128, 128), "full", [2001]),
    ("png", 4, (160, 120), "full", [2003]),
    ("jpeg", 1, (240, 240), "full", [2001]),
    ("jpeg", 8, (128, 160), "full", [2003]),
    ("png", 1, (96, 96), "full", [2001]),
    ("jpeg", 1, (220, 160), "none", [2003]),
    ("mp4", 1, (64, 64), "full", [2012]),  # bob_mp4 (clip_64.mp4)
    ("mp4", 4, (96, 96), "none", [2012]),  # clip_96.mp4
    ("webm", 1, (96, 96), "full", [2012]),  # bob_webm (clip_96.webm)
]

_MIXED = [
    ("jpeg", 1, (128, 128), "full", [2020, 2007]),
    ("png", 1, (160, 200), "full", [2020]),
    ("jpeg", 2, (200, 160), "full", [2020, 2008]),
    ("webp", 1, (96, 96), "full", [2020]),
    ("jpeg", 4, (128, 96), "none", [2020]),
]

_HOSTILE_NAMES = [
    "../../etc/passwd",
    "CON",
    "nul.txt",
    ("VeryLongModelName" * 18)[:300],
    'bad<>:"/\\|?*name',
    "trailing dots... ",
    "ctrl\x00\x01\x1f\x7fname\ttab\nnewline",
    "漢字モデル_中文版",
    "نموذج عربي",
    "🔥🎨 model 👾",
    "e\u0301\u0301z\u0308a\u030a combining",
    "urn:air:sdxl:checkpoint:civitai:101055@128078",
]
_HOSTILE_VERSION_NAMES = [
    "..\\..\\windows\\system32",
    "COM1",
    "aux.tar.gz",
    " LPT9 ",
    "x" * 300,
    "name?with*wild<cards>",
    "dots...",
    "tab\tand\nnewline",
    "版本 一",
    "مرحبا",
    "👾👾👾",
    "../up/../CON",
]
_HOSTILE_VERSIONS = [2009, 2010, 2011, 2023, 2024, 2009, 2010, 2011, 2023, 2024, 2009, 2010]

# Fillers: username -> (count, versions to draw from, formats)
_FILLERS = [
    ("carol", 15, [2001, 2002, 2020]),
    ("dave_ai", 12, [2003, 2013]),
    ("erin", 12, [2004, 2005, 2006]),
    ("frank_gen", 12, [2007, 2008]),
    ("grace", 10, [2001, 2004]),
    ("heidi", 8, [2005, 2012]),
]

_ADJECTIVES = [
    "retro", "neon", "pastel", "dark", "bright", "cozy", "epic", "minimal", "vintage", "futuristic",
    "gothic", "cute", "surreal", "realistic", "painterly", "sketchy", "glossy", "matte", "cinematic",
    "dreamy", "gritty", "vibrant", "muted", "ornate", "abstract",
]
_NOUNS = [
    "style", "character", "clothing", "background", "vehicle", "creature", "architecture", "weapon",
    "food", "interior", "poster", "logo", "pattern", "texture",
    "lighting", "pose", "hairstyle",
]


def _blurhash(rng: random.Random) -> str:
    return "".join(rng.choice(_BLURHASH_ALPHABET) for _ in range(rng.randint(28, 36)))


def _zero_stats() -> dict[str, int]:
    return {"cryCount": 0, "laughCount": 0, "likeCount": 0, "dislikeCount": 0, "heartCount": 0, "commentCount": 0}


def _stats(rng: random.Random) -> dict[str, int]:
    like = int(rng.paretovariate(1.2) * 5)
    return {
        "cryCount": rng.randint(0, 3),
        "laughCount": rng.randint(0, 5),
        "likeCount": like,
        "dislikeCount": 0,
        "heartCount": like // 2 + rng.randint(0, 4),
        "commentCount": rng.randint(0, 6),
    }


def _model_file_name(model_name: str, version_name: str) -> str:
    """A1111-style checkpoint file name, e.g. animeDiffusionXL_v10."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in model_name).split() if w]
    stem = (words[0].lower() + "".join(w.capitalize() for w in words[1:])) if words else "model"
    ver = "".join(c for c in version_name if c.isalnum()).lower() or "v1"
    return f"{stem}_{ver}"


class _Builder:
    def __init__(self, bench_images: int, bench_media: list[dict[str, Any]] | None = None) -> None:
        self.ds = Dataset()
        self.bench_images = bench_images
        self.bench_media = bench_media or []
        self.rng = random.Random(SEED)
        self.pending: list[ImageItem] = []
        self.tags_by_name: dict[str, Tag] = {}

    def rng_for(self, name: str) -> random.Random:
        return random.Random(f"{SEED}:{name}")

    # -- vocabularies

    def build_vocab(self) -> None:
        ds = self.ds
        for tid, name, ttype, lvl in _COMMUNITY_TAGS:
            t = Tag(id=tid, name=name, type=ttype, nsfw_level=lvl)
            ds.tags[tid] = t
            self.tags_by_name[name] = t
        for uid, uname in _USERS:
            ds._add_user(
                User(
                    id=uid,
                    username=uname,
                    deleted=uname == "ghost",
                    created_at=iso_ms(BASE_EPOCH_MS - (uid - 4990) * 7 * DAY_MS),
                )
            )
        rng = self.rng_for("models")
        for mid, name, mtype, creator, tags, versions, mode in _MODELS:
            created = BASE_EPOCH_MS - rng.randint(10, 300) * DAY_MS
            ds.models[mid] = Model(
                id=mid,
                name=name,
                type=mtype,
                creator=creator,
                tags=list(tags),
                version_ids=[v[0] for v in versions],
                created_at=iso_ms(created),
                description=f"<p>{name} — a model of the fake CivitAI.</p>",
                mode=mode,
                download_count=rng.randint(10, 90_000),
                thumbs_up=rng.randint(0, 5_000),
                thumbs_down=rng.randint(0, 40),
                comment_count=rng.randint(0, 300),
                collected_count=rng.randint(0, 2_000),
            )
            for k, (vid, vname, base) in enumerate(versions):
                vcreated = created + (k + 1) * 5 * DAY_MS + rng.randint(0, DAY_MS)
                ds.versions[vid] = ModelVersion(
                    id=vid,
                    model_id=mid,
                    name=vname,
                    base_model=base,
                    created_at=iso_ms(vcreated),
                    published_at=iso_ms(vcreated + 3_600_000),
                    trained_words=[name.split()[0].lower()] if mtype == "LORA" else [],
                    download_count=rng.randint(10, 50_000),
                    thumbs_up=rng.randint(0, 3_000),
                    file_kb=round(rng.uniform(20_000, 6_800_000), 3) if mtype == "Checkpoint" else 148_000.5,
                )
        # /api/v1/tags: the tags models use (most popular first), a few special ones, generated names.
        used: list[str] = []
        for m in ds.models.values():
            for t in m.tags:
                if t not in used:
                    used.append(t)
        mt: list[ModelTag] = []
        next_id = 100_001
        for k, name in enumerate(used):
            mt.append(ModelTag(id=next_id, name=name, model_count=100_000 - k * 100))
            next_id += 1
        mt.append(ModelTag(id=next_id, name="nsfw", model_count=90_000, nsfw_level=4))
        mt.append(ModelTag(id=next_id + 1, name="unfeatured thing", model_count=80_000, unfeatured=True))
        mt.append(ModelTag(id=next_id + 2, name="1girl, solo", model_count=3))
        next_id += 3
        trng = self.rng_for("modeltags")
        for adj in _ADJECTIVES:
            for noun in _NOUNS:
                mt.append(ModelTag(id=next_id, name=f"{adj} {noun}", model_count=trng.randint(0, 50_000)))
                next_id += 1
        ds.model_tags = mt

    # -- images

    def _meta(self, rng: random.Random, kind: str, versions: list[int], size: tuple[int, int],
              model_override: str | None = None, cr_name_override: str | None = None,
              prompt_extra: str = "") -> tuple[dict[str, Any] | None, str | None]:
        """(meta, baseModel) for a meta kind."""
        ds = self.ds
        ckpt = None
        for vid in versions:
            v = ds.versions.get(vid)
            if v and ds.models[v.model_id].type == "Checkpoint":
                ckpt = v
                break
        loras = [vid for vid in versions if vid in ds.versions and ds.models[ds.versions[vid].model_id].type != "Checkpoint"]
        base = ckpt.base_model if ckpt else (ds.versions[versions[0]].base_model if versions else None)
        if kind == "none":
            return None, base
        words = rng.sample(_PROMPT_WORDS, 5)
        prompt = ", ".join(words) + prompt_extra
        w, h = size
        model_hash = f"{rng.getrandbits(40):010x}"
        meta: dict[str, Any] = {
            "prompt": prompt,
            "negativePrompt": rng.choice(_NEGATIVE),
            "seed": rng.randrange(2**32),
            "steps": rng.choice([20, 25, 28, 30, 40]),
            "sampler": rng.choice(_SAMPLERS),
            "cfgScale": rng.choice([5, 6, 7, 7.5, 8]),
            "Size": f"{w}x{h}",
        }
        if kind == "sizeonly":
            return {"Size": f"{w}x{h}"}, base
        resources = []
        if kind in ("full", "urn", "comfy", "resources_only") and ckpt is not None:
            mname = ds.models[ckpt.model_id].name
            if kind == "full" or kind == "comfy":
                meta["Model"] = model_override or _model_file_name(mname, ckpt.name)
                meta["Model hash"] = model_hash
            elif kind == "urn":
                meta["Model"] = model_override or f"urn:air:sdxl:checkpoint:civitai:{ckpt.model_id}@{ckpt.id}"
            resources.append(
                {
                    "type": "checkpoint",
                    "modelVersionId": ckpt.id,
                    "modelVersionName": cr_name_override or ckpt.name,
                }
            )
        elif kind in ("full", "comfy") and model_override:
            meta["Model"] = model_override
        elif kind == "full":
            meta["Model"] = f"unlistedModel_{rng.randint(1, 99)}"
            meta["Model hash"] = model_hash
        for vid in loras:
            resources.append({"type": "lora", "weight": rng.choice([0.5, 0.65, 0.8, 1]), "modelVersionId": vid})
        meta["clipSkip"] = 2
        meta["Clip skip"] = "2"
        if "Model hash" in meta:
            meta["hashes"] = {"model": meta["Model hash"]}
            meta["resources"] = [{"name": meta.get("Model"), "type": "model", "hash": meta["Model hash"]}]
        if resources:
            meta["civitaiResources"] = resources
        if kind == "comfy":
            meta["comfy"] = json.dumps({"prompt": {"3": {"class_type": "KSampler", "inputs": {"seed": meta["seed"]}}}})
        if kind == "invalid":
            base = None
        return meta, base

    def _tags(self, rng: random.Random, level: int, n_range: tuple[int, int] = (4, 14),
              none_rate: float = 0.1) -> list[TagVote]:
        if rng.random() < none_rate:
            return []
        plain = [t for t in self.ds.tags.values() if t.type != "Moderation" and t.nsfw_level <= max(level, 2)]
        mod = [t for t in self.ds.tags.values() if t.type == "Moderation" and t.nsfw_level <= level]
        n = rng.randint(*n_range)
        chosen = rng.sample(plain, min(n, len(plain)))
        if mod and level >= 4:
            chosen.append(rng.choice(mod))
        rekognition = rng.random() < 0.2
        votes = []
        for t in chosen:
            automated = t.type in ("Label", "Moderation") or rng.random() < 0.3
            concrete = rng.random() < 0.85
            up = rng.randint(0, 4) if not automated else rng.choice([0, 0, 0, 1])
            down = rng.choice([0, 0, 0, 1, 2])
            score = (9 if automated else rng.randint(1, 6)) + up * 2 - down + rng.choice([0, 0, 0, 1, 3, 8])
            last_up = None
            if up:
                if not concrete and rng.random() < 0.5:
                    last_up = iso_ms(DATASET_NOW_MS - rng.randint(0, FRESH_UPVOTE_MS // 2))
                else:
                    last_up = iso_ms(DATASET_NOW_MS - rng.randint(3, 300) * DAY_MS)
            source = "WD14" if t.type == "Label" else ("Rekognition" if t.type == "Moderation" else "User")
            if rekognition and t.type == "UserGenerated" and rng.random() < 0.5:
                source = "Rekognition"
            votes.append(
                TagVote(
                    id=t.id,
                    name=t.name,
                    type=t.type,
                    nsfw_level=t.nsfw_level,
                    score=score,
                    up_votes=up,
                    down_votes=down,
                    automated=automated,
                    needs_review=rng.random() < 0.08,
                    concrete=concrete,
                    last_upvote=last_up,
                    source=source,
                )
            )
        return votes

    def _many_tags(self, n: int) -> list[TagVote]:
        """`n` concrete WD14 label tags (added to the vocabulary after every other image drew its
        tags, so nothing else changes)."""
        votes = []
        for k in range(n):
            t = Tag(id=90_001 + k, name=f"motif {k + 1:03d}", type="Label", nsfw_level=1)
            self.ds.tags[t.id] = t
            votes.append(TagVote(id=t.id, name=t.name, type=t.type, nsfw_level=1, score=200 - k,
                                 automated=True, source="WD14"))
        return votes

    def _vote(self, name: str, score: int, **kw: Any) -> TagVote:
        t = self.tags_by_name[name]
        return TagVote(id=t.id, name=t.name, type=t.type, nsfw_level=t.nsfw_level, score=score, **kw)

    def _showcase_tags(self) -> list[TagVote]:
        # Dated after now + voteDuration, the only way the service keeps an unvoted pending tag
        # (see VOTE_DURATION_MS); the page then shows it without a `Score:` title.
        fresh = iso_ms(DATASET_NOW_MS + VOTE_DURATION_MS + 3_600_000)
        stale = iso_ms(DATASET_NOW_MS - 40 * DAY_MS)
        return [
            self._vote("1girl", 15, automated=True, up_votes=3, last_upvote=stale, source="WD14"),
            self._vote("long hair", 12, automated=True, up_votes=1, last_upvote=stale, source="WD14"),
            self._vote("suggestive", 9, automated=True, source="Rekognition"),
            self._vote("ass", 9, automated=True, source="WD14"),
            self._vote("smile", 9, automated=True, source="WD14"),
            self._vote("solo", 7, automated=True, source="WD14"),
            self._vote("outdoors", 5, automated=True, needs_review=True, source="WD14"),
            self._vote("blue eyes", 4, up_votes=1, concrete=False, last_upvote=fresh, source="User"),
            self._vote("hat", 3, up_votes=1, concrete=False, last_upvote=stale, source="User"),
            self._vote("woman", 8, automated=True, source="Rekognition"),  # kept: in the allow list
            self._vote("clothing", 8, automated=True, source="Rekognition"),  # dropped (WD14 present)
            self._vote("1boy", 2, up_votes=0, down_votes=1, source="WD14"),
            self._vote("sky", 1, automated=True, source="WD14"),
        ]

    def add_image(self, username: str, rng: random.Random, fmt: str, level: int, size: tuple[int, int],
                  meta_kind: str, versions: list[int], created_ms: int, *, tags: list[TagVote] | None = None,
                  model_override: str | None = None, cr_name_override: str | None = None,
                  prompt_extra: str = "", clip: str | None = None, n_tags: tuple[int, int] = (4, 14),
                  tag_none_rate: float = 0.1) -> ImageItem:
        u = self.ds.users[username]
        meta, base = self._meta(rng, meta_kind, versions, size, model_override, cr_name_override, prompt_extra)
        is_video = fmt in VIDEO_FORMATS
        uid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        ext = "jpg" if fmt == "jpeg" and rng.random() < 0.5 else fmt
        name = (f"{rng.randint(0, 99999):05d}-{rng.randrange(2**32)}.png" if fmt == "png"
                else f"{uid.replace('-', '').upper()[:26]}.{ext}")
        img = ImageItem(
            id=0,
            uuid=uid,
            username=username,
            user_id=u.id,
            post_id=0,
            created_at=iso_ms(created_ms),
            nsfw_level=level,
            type="video" if is_video else "image",
            media_format=fmt,
            width=size[0],
            height=size[1],
            meta=meta,
            model_version_ids=list(versions),
            base_model=base,
            stats=_stats(rng),
            tags=tags if tags is not None else self._tags(rng, level, n_tags, tag_none_rate),
            hash=_blurhash(rng),
            name=name,
            collected_count=rng.randint(0, 40),
            visual_seed=rng.getrandbits(32),
            clip=clip,
        )
        self.pending.append(img)
        return img

    def build_images(self) -> None:
        ds = self.ds
        named: dict[str, ImageItem] = {}

        # alice
        rng = self.rng_for("alice")
        t = BASE_EPOCH_MS + 20 * DAY_MS
        for k, (fmt, lvl, size, kind, vids) in enumerate(_ALICE):
            t += rng.randint(1, 20) * DAY_MS + rng.randint(0, DAY_MS)
            img = self.add_image("alice", rng, fmt, lvl, size, kind, vids, t,
                                 tags=self._showcase_tags() if k == 0 else None)
            if k == 0:
                named["tags_showcase"] = img
            if kind == "none" and "alice_no_meta" not in named:
                named["alice_no_meta"] = img
            if kind == "invalid" and "alice_invalid_meta" not in named:
                named["alice_invalid_meta"] = img
            if kind == "urn" and "alice_urn" not in named:
                named["alice_urn"] = img
            if size == (1024, 1024):
                named["large_jpeg"] = img
            if size == (640, 480):
                named["large_png"] = img
            if lvl == 32:
                named["blocked"] = img

        # bob_art
        rng = self.rng_for("bob_art")
        t = BASE_EPOCH_MS + 30 * DAY_MS
        clips = {("mp4", (64, 64)): "clip_64.mp4", ("mp4", (96, 96)): "clip_96.mp4", ("webm", (96, 96)): "clip_96.webm"}
        for fmt, lvl, size, kind, vids in _BOB:
            t += rng.randint(2, 30) * DAY_MS + rng.randint(0, DAY_MS)
            clip = clips.get((fmt, size)) if fmt in VIDEO_FORMATS else None
            img = self.add_image("bob_art", rng, fmt, lvl, size, kind, vids, t, clip=clip)
            if fmt == "mp4" and "bob_mp4" not in named:
                named["bob_mp4"] = img
            if fmt == "webm":
                named["bob_webm"] = img

        # MixedCase
        rng = self.rng_for("MixedCase")
        t = BASE_EPOCH_MS + 50 * DAY_MS
        for fmt, lvl, size, kind, vids in _MIXED:
            t += rng.randint(5, 40) * DAY_MS
            self.add_image("MixedCase", rng, fmt, lvl, size, kind, vids, t)

        # hostile
        rng = self.rng_for("hostile")
        t = BASE_EPOCH_MS + 60 * DAY_MS
        for k, hname in enumerate(_HOSTILE_NAMES):
            t += rng.randint(1, 25) * DAY_MS
            vid = _HOSTILE_VERSIONS[k]
            fmt = ["png", "jpeg", "webp"][k % 3]
            kind = "urn" if hname.startswith("urn:") else "full"
            extra = "\nModel: evil\nSteps: 999, Model: ../../evil" if k % 2 == 0 else "\nModel: evil"
            img = self.add_image("hostile", rng, fmt, [1, 2, 4, 8, 16][k % 5] if k % 3 else 1, (96 + 16 * k, 128),
                                 kind, [vid], t, model_override=hname, cr_name_override=_HOSTILE_VERSION_NAMES[k],
                                 prompt_extra=extra)
            if k == 3:
                img.meta_nested_always = True
                named["nested_meta"] = img
            if k == 5:
                img.width = 512
                img.height = 512
                img.overrides = {"width": "512", "stats": None}
                named["wrong_types"] = img

        # bigcap: 600 over 6 versions
        rng = self.rng_for("bigcap")
        t = BASE_EPOCH_MS + 10 * DAY_MS
        levels = [1, 1, 1, 1, 1, 2, 4, 8, 16, 2]
        for k in range(600):
            t += rng.randint(60_000, 20 * 3_600_000)
            vid = 2014 + k // 100
            kind = "full" if k % 7 else "none"
            self.add_image("bigcap", rng, "jpeg", levels[k % 10], (64, 64), kind, [vid], t, n_tags=(0, 3),
                           tag_none_rate=0.3)

        # fillers
        for uname, count, vids in _FILLERS:
            rng = self.rng_for(uname)
            t = BASE_EPOCH_MS + rng.randint(0, 60) * DAY_MS
            for k in range(count):
                t += rng.randint(1, 25) * DAY_MS + rng.randint(0, DAY_MS)
                lvl = rng.choice([1, 1, 1, 1, 2, 2, 4, 8, 16])
                if k == count - 2 and uname in ("carol", "erin", "heidi"):
                    lvl = 32
                fmt = rng.choice(["jpeg", "jpeg", "png", "webp"])
                size = (rng.choice([64, 96, 128, 192, 256, 320]), rng.choice([64, 96, 128, 192, 256, 384]))
                kind = rng.choice(["full", "full", "full", "full", "resources_only", "comfy", "sizeonly", "none"])
                clip = None
                if uname == "heidi" and k in (2, 5):
                    fmt = "webm" if k == 2 else "mp4"
                    clip = "clip_64.webm" if k == 2 else "clip_64.mp4"
                    size = (64, 64)
                picked = [rng.choice(vids)]
                if rng.random() < 0.3:
                    other = rng.choice(vids)
                    if other not in picked:
                        picked.append(other)
                self.add_image(uname, rng, fmt, lvl, size, kind, picked, t, clip=clip)

        # An image with 150 community tags: more than tag.getVotableTags' default `take` (100).
        many = next(i for i in self.pending if i.username == "carol" and i.nsfw_level == 1 and not i.is_video)
        many.tags = self._many_tags(150)
        named["many_tags"] = many

        # ids: in creation-time order (ids grow with time, as on the real site)
        self.pending.sort(key=lambda i: (i.created_ms, i.username, i.uuid))
        idrng = self.rng_for("ids")
        next_id = 7_000_001
        for img in self.pending:
            img.id = next_id
            next_id += idrng.randint(1, 40)
        self._assign_posts(self.pending, 800_001)
        for img in self.pending:
            ds._index(img)
        ds.named = {k: v.id for k, v in named.items()}

    def _assign_posts(self, images: list[ImageItem], first_post: int) -> int:
        prng = self.rng_for("posts")
        post = first_post
        by_user: dict[str, list[ImageItem]] = {}
        for img in images:
            by_user.setdefault(img.username, []).append(img)
        for uname in sorted(by_user):
            lst = by_user[uname]
            k = 0
            while k < len(lst):
                size = prng.randint(1, 4)
                for img in lst[k : k + size]:
                    img.post_id = post
                post += prng.randint(1, 9)
                k += size
        return post

    def build_bench(self) -> None:
        n = self.bench_images or len(self.bench_media)
        if not n:
            return
        ds = self.ds
        u = ds.users["bench"]
        rng = self.rng_for("bench")
        t = DATASET_NOW_MS - 200 * DAY_MS
        v = ds.versions[2021]
        levels = [1, 1, 1, 2, 4]
        lst = ds._by_user.setdefault(u.id, [])
        vlst = ds._by_version.setdefault(2021, [])
        for k in range(n):
            iid = 30_000_001 + k
            t += rng.randint(1_000, 600_000)
            uid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
            # Real-size media (tests/benchmarks/download_media.py) when given, else small JPEGs.
            real = self.bench_media[k] if self.bench_media else {}
            fmt = real.get("format", "jpeg")
            img = ImageItem(
                id=iid,
                uuid=uid,
                username="bench",
                user_id=u.id,
                post_id=900_001 + k // 4,
                created_at=iso_ms(t),
                nsfw_level=levels[k % 5],
                type="video" if fmt in VIDEO_FORMATS else "image",
                media_format=fmt,
                width=real.get("width", 256),
                height=real.get("height", 256),
                meta={"prompt": f"bench image {k}", "seed": k, "steps": 20, "Model": "benchModel_v1"},
                model_version_ids=[2021],
                base_model=v.base_model,
                stats={"cryCount": 0, "laughCount": 0, "likeCount": k % 17, "dislikeCount": 0,
                       "heartCount": k % 5, "commentCount": k % 3},
                tags=[],
                hash="U00000fQfQfQfQfQfQfQfQfQfQfQ",
                name=f"{iid}.{fmt}",
                visual_seed=iid,
                media_file=real.get("path"),
            )
            ds.images[iid] = img
            lst.append(iid)
            vlst.append(iid)
            ds._by_uuid[uid] = iid
        ds.bench_images = n


def build_dataset(bench_images: int = 0, bench_media: list[dict[str, Any]] | None = None) -> Dataset:
    """Build the deterministic dataset (a few tens of ms; media bytes are generated on demand).

    `bench_media`: user ``bench`` gets one item per entry ({"path", "format", "width", "height"}),
    served from that file, instead of `bench_images` small JPEGs."""
    b = _Builder(bench_images, bench_media)
    b.build_vocab()
    b.build_images()
    b.build_bench()
    return b.ds
