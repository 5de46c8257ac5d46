"""The EXIF block civitgrab writes into WebP files, and reading it back.

Where each fact goes (chosen so common tools show something useful):
- UserComment (0x9286): JSON (ASCII-escaped, piexif "ascii" encoding) with the useful record
  fields, the generation metadata (plus the PNG `parameters` text as meta["parameters"]) and the
  tags with their scores. Key `"civitgrab": 1` marks (and versions) the format.
- ImageDescription (0x010E): the prompt, UTF-8.
- XPKeywords (0x9C9E): tag names joined by ";" (UTF-16LE, as Windows Explorer expects).
- Artist (0x013B): the username. DateTimeOriginal + OffsetTimeOriginal: createdAt in UTC.
- Software (0x0131): "civitgrab".

The block is kept under EXIF_MAX_BYTES (64 KB minus a margin, the JPEG APP1 limit: WebP could hold
more, but a file copied into other formats or tools must keep working). When it would not fit, the
bulky parts are dropped in this order: meta except the prompts, then tag vote details; the prompt
and tag names with scores stay. `ExifBuild.overflow` tells the caller to log it; the JSON sidecar
always has everything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import piexif
import piexif.helper

from civitgrab_desktop.core.media.files import parse_iso_datetime
from civitgrab_desktop.core.media.pngtext import png_parameters
from civitgrab_desktop.core.media.webp_riff import exif_payload, parse_chunks
from civitgrab_desktop.core.organize.sidecars import scrub_secrets

# JPEG's APP1 segment holds at most 65533 bytes; keep 1 KB spare.
EXIF_MAX_BYTES = 64 * 1024 - 1024
SOFTWARE = "civitgrab"
FORMAT_VERSION = 1

INFO_FIELDS = (
    "id",
    "username",
    "modelName",
    "modelVersionName",
    "checkpoint",
    "baseModel",
    "nsfwLevel",
    "createdAt",
    "url",
    "meta",
)
TAG_FIELDS = ("name", "score", "id", "type", "upVotes", "downVotes", "automated", "needsReview")
PROMPT_KEYS = ("prompt", "negativePrompt")


@dataclass(frozen=True)
class ExifBuild:
    data: bytes  # piexif.dump output, starts with b"Exif\0\0"
    overflow: bool = False
    dropped: tuple[str, ...] = ()  # which reductions were applied, for the log


def exif_info_from_record(record: Any, *, model_name: str | None = None, parameters: str | None = None) -> dict[str, Any]:
    """The `info` dict for build_exif from an ImageRecord (attributes as in core.civitai.records).

    `parameters`: the generator's text found in the source file (embedded_parameters), kept as
    meta["parameters"].
    """
    meta = dict(getattr(record, "meta", None) or {})
    if parameters and "parameters" not in meta:
        meta["parameters"] = parameters
    return {
        "id": record.id,
        "username": record.username,
        "modelName": model_name,
        "modelVersionName": record.model_version_name,
        "checkpoint": record.checkpoint_name,
        "baseModel": record.base_model,
        "nsfwLevel": record.nsfw_level,
        "createdAt": record.created_at,
        "url": record.url,
        "meta": meta,
    }


@dataclass
class _Draft:
    payload: dict[str, Any]
    description: str
    keywords: list[str]
    datetime_original: str | None
    artist: str | None
    dropped: list[str] = field(default_factory=list)


def _clean_tag(tag: dict[str, Any]) -> dict[str, Any]:
    return {k: tag[k] for k in TAG_FIELDS if k in tag and tag[k] is not None}


def _ascii_field(text: str) -> bytes:
    # piexif writes str as latin-1 only; UTF-8 bytes are what readers (exiftool, Windows) expect.
    return text.replace("\x00", "").encode("utf-8")


def _xp_field(text: str) -> bytes:
    return text.replace("\x00", "").encode("utf-16-le") + b"\x00\x00"


def _dump(draft: _Draft) -> bytes:
    zeroth: dict[int, Any] = {piexif.ImageIFD.Software: SOFTWARE.encode()}
    if draft.description:
        zeroth[piexif.ImageIFD.ImageDescription] = _ascii_field(draft.description)
    if draft.artist:
        zeroth[piexif.ImageIFD.Artist] = _ascii_field(draft.artist)
    if draft.keywords:
        zeroth[piexif.ImageIFD.XPKeywords] = _xp_field(";".join(draft.keywords))
    comment = json.dumps(draft.payload, ensure_ascii=True, separators=(",", ":"), default=str)
    exif_ifd: dict[int, Any] = {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(comment, "ascii")}
    if draft.datetime_original:
        exif_ifd[piexif.ExifIFD.DateTimeOriginal] = draft.datetime_original.encode()
        exif_ifd[piexif.ExifIFD.OffsetTimeOriginal] = b"+00:00"
    return piexif.dump({"0th": zeroth, "Exif": exif_ifd})


def _prompts_only(d: _Draft) -> None:
    meta = d.payload.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    d.payload["meta"] = {k: meta[k] for k in PROMPT_KEYS if k in meta}


def _tag_scores_only(d: _Draft) -> None:
    d.payload["tags"] = [{"name": t.get("name"), "score": t.get("score")} for t in d.payload.get("tags", [])]


def _no_negative_prompt(d: _Draft) -> None:
    d.payload["meta"].pop("negativePrompt", None)  # _prompts_only ran first: meta is a dict


def _prompt_in_description_only(d: _Draft) -> None:
    d.payload["meta"].pop("prompt", None)


def _halve_tags(d: _Draft) -> None:
    keep = len(d.payload.get("tags", [])) // 2
    d.payload["tags"] = d.payload.get("tags", [])[:keep]
    d.keywords = d.keywords[:keep]


def _cut_description(d: _Draft) -> None:
    d.description = d.description[: len(d.description) // 2]


# In order; the first two are the documented ones, the rest only happen with absurd inputs.
_REDUCTIONS: tuple[tuple[str, Callable[[_Draft], None]], ...] = (
    ("meta", _prompts_only),
    ("tag_votes", _tag_scores_only),
    ("negative_prompt", _no_negative_prompt),
    ("prompt_json", _prompt_in_description_only),
)


def _draft(info: dict[str, Any], tags: list[dict[str, Any]]) -> _Draft:
    payload: dict[str, Any] = {"civitgrab": FORMAT_VERSION}
    for key in INFO_FIELDS:
        value = info.get(key)
        if value not in (None, "", {}):
            payload[key] = value
    clean_tags = [_clean_tag(t) for t in tags or [] if isinstance(t, dict) and t.get("name")]
    payload["tags"] = clean_tags
    payload = scrub_secrets(payload)
    meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
    prompt = meta.get("prompt")
    created = parse_iso_datetime(info.get("createdAt"))
    return _Draft(
        payload=payload,
        description=prompt if isinstance(prompt, str) else "",
        keywords=[str(t["name"]).replace(";", ",") for t in clean_tags],
        datetime_original=created.strftime("%Y:%m:%d %H:%M:%S") if created else None,
        artist=info.get("username") if isinstance(info.get("username"), str) else None,
    )


def build_exif(info: dict[str, Any], tags: list[dict[str, Any]] | None, *, max_bytes: int = EXIF_MAX_BYTES) -> ExifBuild:
    """EXIF bytes for a WebP (see the module doc); shrunk to fit `max_bytes` with `overflow=True`."""
    draft = _draft(info, tags or [])
    data = _dump(draft)
    steps = iter(_REDUCTIONS)
    while len(data) > max_bytes:
        step = next(steps, None)
        if step is not None:
            name, reduce = step
        elif draft.payload.get("tags"):
            name, reduce = "tags", _halve_tags
        elif draft.description:
            name, reduce = "description", _cut_description
        else:
            raise ValueError(f"EXIF cannot be made smaller than {len(data)} bytes")
        reduce(draft)
        if name not in draft.dropped:
            draft.dropped.append(name)
        data = _dump(draft)
    return ExifBuild(data, bool(draft.dropped), tuple(draft.dropped))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    raw = bytes(value).rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _load_exif(source: str | os.PathLike | bytes) -> dict[str, Any] | None:
    """piexif's dict from a WebP/JPEG path, WebP/JPEG bytes, or an EXIF blob; None if there is none."""
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    if data[:4] == b"RIFF":
        data = exif_payload(parse_chunks(data))
        if not data:
            return None
    return piexif.load(data)


def embedded_parameters(path: str | os.PathLike) -> str | None:
    """Generation settings a tool wrote into the source file: the PNG `parameters` text, or the
    EXIF UserComment of a JPEG/WebP (A1111 and Forge write it there). Our own EXIF is not counted."""
    text = png_parameters(path)
    if text:
        return text
    try:
        exif = _load_exif(path)
    except Exception:  # not JPEG/WebP, or EXIF piexif cannot parse: no parameters to keep
        return None
    comment = (exif or {}).get("Exif", {}).get(piexif.ExifIFD.UserComment)
    if not comment:
        return None
    try:
        text = piexif.helper.UserComment.load(comment)
    except ValueError:
        text = _text(comment[8:]) or ""
    text = text.strip("\x00").strip()
    if text.startswith("{") and '"civitgrab"' in text:
        return None
    return text or None


def read_exif(source: str | os.PathLike | bytes) -> dict[str, Any]:
    """What build_exif wrote: user_comment (the JSON as a dict, else the raw text), description,
    keywords (list), artist, datetime ("YYYY:MM:DD HH:MM:SS"), software. Missing parts are None/[]."""
    result: dict[str, Any] = {
        "user_comment": None,
        "description": None,
        "keywords": [],
        "artist": None,
        "datetime": None,
        "software": None,
    }
    exif = _load_exif(source)
    if not exif:
        return result
    zeroth, exif_ifd = exif.get("0th", {}), exif.get("Exif", {})
    comment = exif_ifd.get(piexif.ExifIFD.UserComment)
    if comment:
        try:
            text = piexif.helper.UserComment.load(comment)
        except ValueError:
            text = _text(comment[8:])
        try:
            result["user_comment"] = json.loads(text)
        except ValueError:
            result["user_comment"] = text
    result["description"] = _text(zeroth.get(piexif.ImageIFD.ImageDescription))
    result["artist"] = _text(zeroth.get(piexif.ImageIFD.Artist))
    result["software"] = _text(zeroth.get(piexif.ImageIFD.Software))
    result["datetime"] = _text(exif_ifd.get(piexif.ExifIFD.DateTimeOriginal))
    xp = zeroth.get(piexif.ImageIFD.XPKeywords)
    if xp:
        words = bytes(xp).decode("utf-16-le", errors="replace").rstrip("\x00")
        result["keywords"] = [w for w in words.split(";") if w]
    return result
