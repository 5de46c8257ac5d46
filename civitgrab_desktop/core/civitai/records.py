"""Parsing CivitAI JSON into the shared records of core/model.py.

The service's shapes drift (flat vs nested meta, string vs numeric NSFW levels, URN model names,
missing keys, wrong types); every such rule lives here so the rest of the app sees one shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from civitgrab_desktop.core.model import INT64_MAX, NSFW_BITS, ImageRecord, TagVote, has_meaningful_meta

# REST `/images` gives a string level; it cannot tell X from XXX.
_REST_NSFW_STRINGS = {"None": 1, "Soft": 2, "Mature": 4, "X": 8, "Blocked": 32}
# What the user picks (`--nsfw`) -> the REST `nsfw` value and the bitmask it selects.
NSFW_CHOICES = {
    "none": ("None", 1),
    "soft": ("Soft", 3),
    "mature": ("Mature", 7),
    "x": ("X", 31),
}

_URN_RE = re.compile(r"^\s*urn:", re.IGNORECASE)


def _fits_int64(value: int) -> bool:
    return -INT64_MAX - 1 <= value <= INT64_MAX


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if _fits_int64(value) else None
    if isinstance(value, float) and value.is_integer():
        return _int_or_none(int(value))
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value.strip()) <= 20:
        return _int_or_none(int(value.strip()))
    return None


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def parse_nsfw_level(item: dict[str, Any]) -> int:
    """Numeric level of an image from either the REST or the model-version shape (0 = unknown)."""
    browsing = _int_or_none(item.get("browsingLevel"))
    if browsing in NSFW_BITS:
        return browsing
    level = item.get("nsfwLevel")
    numeric = _int_or_none(level)
    if numeric in NSFW_BITS:
        return numeric
    if isinstance(level, str) and level in _REST_NSFW_STRINGS:
        return _REST_NSFW_STRINGS[level]
    return 0


NESTED_META_KEYS = frozenset({"id", "meta"})


def extract_meta(raw_meta: Any) -> dict[str, Any]:
    """Generation metadata as one flat dict: handles null, flat and nested shapes. The nested
    (legacy path) shape is exactly `{"id": <image id>, "meta": <meta or null>}`
    (src/server/services/image-search.service.ts runImageSearch), so `{"id": 5, "meta": null}` is
    an image without metadata, not metadata."""
    if not isinstance(raw_meta, dict):
        return {}
    inner = raw_meta.get("meta")
    if isinstance(inner, dict):
        return dict(inner)
    if "meta" in raw_meta and set(raw_meta) <= NESTED_META_KEYS:
        return {}
    return dict(raw_meta)


def is_urn_model_name(name: str) -> bool:
    return bool(_URN_RE.match(name)) and ("civitai" in name.lower() or "@" in name)


def _checkpoint_resource(meta: dict[str, Any]) -> dict[str, Any] | None:
    resources = meta.get("civitaiResources")
    if isinstance(resources, list):
        for res in resources:
            if isinstance(res, dict) and str(res.get("type", "")).lower() == "checkpoint":
                return res
    return None


def checkpoint_name(meta: dict[str, Any], base_model: str | None) -> str | None:
    """The model name used for folders: `Model`, unless it is a URN; then the checkpoint
    resource's version name; then the base model. Never a URN, never taken from the prompt."""
    model = _str_or_none(meta.get("Model"))
    if model and model.strip() and not is_urn_model_name(model):
        return model.strip()
    res = _checkpoint_resource(meta)
    if res:
        name = _str_or_none(res.get("modelVersionName")) or _str_or_none(res.get("modelName"))
        if name and name.strip() and not is_urn_model_name(name):
            return name.strip()
    if base_model and base_model.strip() and has_meaningful_meta(meta):
        return base_model.strip()
    return None


def model_version_name(meta: dict[str, Any]) -> str | None:
    res = _checkpoint_resource(meta)
    if res:
        name = _str_or_none(res.get("modelVersionName"))
        if name and name.strip():
            return name.strip()
    return None


class RecordError(ValueError):
    """The service sent an item we cannot use (reported, never fatal)."""


def parse_image(item: Any) -> ImageRecord:
    """Parse an `/api/v1/images` item or a model-version `images[]` item."""
    if not isinstance(item, dict):
        raise RecordError(f"image item is {type(item).__name__}, not an object")
    image_id = _int_or_none(item.get("id"))
    if image_id is None or image_id <= 0:
        raise RecordError(f"image item without a valid id: {item.get('id')!r}")
    url = item.get("url")
    if not isinstance(url, str) or not url.strip():
        raise RecordError(f"image {image_id} has no url")
    kind = item.get("type") if item.get("type") in ("image", "video", "audio") else "image"
    meta = extract_meta(item.get("meta"))
    base_model = _str_or_none(item.get("baseModel"))
    version_ids = item.get("modelVersionIds")
    version_ids = [v for v in (_int_or_none(x) for x in version_ids) if v] if isinstance(version_ids, list) else []
    stats = item.get("stats") if isinstance(item.get("stats"), dict) else {}
    return ImageRecord(
        id=image_id,
        url=url.strip(),
        type=kind,
        width=_int_or_none(item.get("width")),
        height=_int_or_none(item.get("height")),
        nsfw_level=parse_nsfw_level(item),
        username=_str_or_none(item.get("username")),
        post_id=_int_or_none(item.get("postId")),
        created_at=_str_or_none(item.get("createdAt")),
        base_model=base_model,
        model_version_ids=version_ids,
        meta=meta,
        checkpoint_name=checkpoint_name(meta, base_model),
        model_version_name=model_version_name(meta),
        stats={k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool) and _fits_int64(v)},
        raw=item,
    )


@dataclass
class VersionRecord:
    id: int
    model_id: int | None
    name: str
    base_model: str | None = None
    images: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ModelRecord:
    id: int
    name: str
    type: str | None = None
    nsfw: bool = False
    tags: list[str] = field(default_factory=list)
    creator: str | None = None
    versions: list[VersionRecord] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


def parse_version(item: Any, model_id: int | None = None) -> VersionRecord:
    if not isinstance(item, dict):
        raise RecordError("model version is not an object")
    vid = _int_or_none(item.get("id"))
    if vid is None:
        raise RecordError(f"model version without a valid id: {item.get('id')!r}")
    images = item.get("images") if isinstance(item.get("images"), list) else []
    return VersionRecord(
        id=vid,
        model_id=_int_or_none(item.get("modelId")) or model_id,
        name=_str_or_none(item.get("name")) or f"version_{vid}",
        base_model=_str_or_none(item.get("baseModel")),
        images=[i for i in images if isinstance(i, dict)],
    )


def parse_model(item: Any) -> ModelRecord:
    if not isinstance(item, dict):
        raise RecordError("model is not an object")
    mid = _int_or_none(item.get("id"))
    if mid is None:
        raise RecordError(f"model without a valid id: {item.get('id')!r}")
    tags = item.get("tags") if isinstance(item.get("tags"), list) else []
    creator = item.get("creator") if isinstance(item.get("creator"), dict) else {}
    versions = []
    for v in item.get("modelVersions") or []:
        try:
            versions.append(parse_version(v, mid))
        except RecordError:
            continue
    return ModelRecord(
        id=mid,
        name=_str_or_none(item.get("name")) or f"model_{mid}",
        type=_str_or_none(item.get("type")),
        nsfw=bool(item.get("nsfw")),
        tags=[t for t in (_str_or_none(t) for t in tags) if t],
        creator=_str_or_none(creator.get("username")),
        versions=versions,
        raw=item,
    )


def parse_tag_vote(item: Any) -> TagVote:
    if not isinstance(item, dict):
        raise RecordError("tag is not an object")
    tid = _int_or_none(item.get("id"))
    name = _str_or_none(item.get("name"))
    if tid is None or not name:
        raise RecordError(f"tag without id or name: {item!r}")
    return TagVote(
        id=tid,
        name=name,
        type=_str_or_none(item.get("type")),
        score=_int_or_none(item.get("score")) or 0,
        up_votes=_int_or_none(item.get("upVotes")) or 0,
        down_votes=_int_or_none(item.get("downVotes")) or 0,
        automated=bool(item.get("automated")),
        needs_review=bool(item.get("needsReview")),
        concrete=item.get("concrete") is not False,
        nsfw_level=_int_or_none(item.get("nsfwLevel")),
    )
