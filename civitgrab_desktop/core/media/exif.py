"""The EXIF block civitgrab writes into WebP files, and reading EXIF back.

Where each fact goes (the places the tools people use read; the whole record is in the XMP
packet, core/media/xmp.py):
- UserComment (0x9286): the A1111 "parameters" text (prompt, `Negative prompt:` line, settings
  line) as EXIF UNICODE: the 8-byte `UNICODE\\0` code, then UTF-16 in the block's byte order.
  piexif writes big-endian ("MM") blocks, so this is UTF-16BE, as A1111/Forge write it and as
  "PNG Info", CivitAI's upload form and SD metadata readers decode it.
- ImageDescription (0x010E): the prompt when it is plain printable ASCII (the tag is ASCII by
  spec); left out otherwise (dc:description in XMP has it in full).
- XPKeywords (0x9C9E): tag names joined by ";" (UTF-16LE, as Windows Explorer expects).
- Artist (0x013B): the username when ASCII. DateTimeOriginal + OffsetTimeOriginal: createdAt (UTC).
- Software (0x0131): "civitgrab".
- Make (0x010F) / Model (0x0110): a ComfyUI original's `workflow` / `prompt` JSON, written the way
  ComfyUI's own WebP writer does (comfy_api/latest/_ui.py, ImageSaveHelper._create_webp_metadata:
  `exif[0x0110] = "prompt:" + json`, `exif[0x010F] = "workflow:" + json`). Its loader
  (ComfyUI_frontend src/scripts/pnginfo.ts, getWebpMetadata) reads the first EXIF chunk, skips
  an `Exif\\0\\0` prefix, walks IFD0 only, takes every ASCII entry and splits it at its first ":"
  into key and value. So the JSON is kept ASCII (non-ASCII characters as JSON escapes, which
  parse to the same graph), and no other IFD0 text may start with "prompt:" or "workflow:".

Size: apart from the ComfyUI graph, the block stays under EXIF_MAX_BYTES (64 KB minus a margin,
the JPEG APP1 limit, so the block can be copied into a JPEG). Each field has its own budget; a
field over it is cut there with CUT_MARKER (the XMP packet has it whole) and named in
`ExifBuild.dropped`. The ComfyUI graph is exempt (ComfyUI itself writes it whole into WebP EXIF)
up to COMFY_MAX_BYTES each; a larger one goes to XMP only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import piexif
import piexif.helper

from civitgrab_desktop.core.media.a1111 import clean_text, parameters_from_meta, split_raw
from civitgrab_desktop.core.media.files import parse_iso_datetime
from civitgrab_desktop.core.media.webp_riff import exif_payload, parse_chunks

# JPEG's APP1 segment holds at most 65533 bytes; keep 1 KB spare.
EXIF_MAX_BYTES = 64 * 1024 - 1024
USER_COMMENT_MAX_BYTES = 32 * 1024  # the 8-byte code included
KEYWORDS_MAX_BYTES = 16 * 1024
DESCRIPTION_MAX_BYTES = 4 * 1024
ARTIST_MAX_BYTES = 256
COMFY_MAX_BYTES = 16 * 1024 * 1024
UNICODE_CODE = b"UNICODE\x00"
CUT_MARKER = " … [cut: the full text is in the file's XMP]"
ASCII_CUT_MARKER = " ... [cut: the full text is in the file's XMP]"
SOFTWARE = "civitgrab"
COMFY_TAGS = {"prompt": piexif.ImageIFD.Model, "workflow": piexif.ImageIFD.Make}
_PRINTABLE_ASCII = re.compile(r"[\t\n\r\x20-\x7e]*")
_COMFY_KEYS = ("prompt:", "workflow:")


@dataclass(frozen=True)
class ExifBuild:
    data: bytes  # piexif.dump output, starts with b"Exif\0\0"
    overflow: bool = False
    dropped: tuple[str, ...] = ()  # fields cut (or left out) to fit; the XMP packet has them whole
    parameters: str | None = None  # the whole A1111 text (UserComment may hold it cut)


def exif_info_from_record(record: Any, *, model_name: str | None = None, parameters: str | None = None) -> dict[str, Any]:
    """The `info` dict for build_exif/build_xmp from an ImageRecord/ImageRow.

    `parameters`: the generator's text found in the source file (kept as meta["parameters"] for
    callers of the first format; build_metadata takes it as an argument instead).
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
        "width": getattr(record, "width", None),
        "height": getattr(record, "height", None),
        "meta": meta,
    }


# -- sizes and cutting -------------------------------------------------------------------------


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


def cut_utf16(text: str, units: int) -> str:
    """The longest start of `text` that is at most `units` UTF-16 code units (pairs kept whole)."""
    data = text.encode("utf-16-be")[: 2 * max(0, units)]
    if len(data) >= 2 and 0xD8 <= data[-2] <= 0xDB:  # a high surrogate without its partner
        data = data[:-2]
    return data.decode("utf-16-be")


def _cut(text: str, units: int) -> str:
    if utf16_units(text) <= units:
        return text
    return cut_utf16(text, units - utf16_units(CUT_MARKER)).rstrip() + CUT_MARKER


def fit_parameters(text: str, max_units: int) -> tuple[str, bool]:
    """`text` within `max_units` UTF-16 units: the settings line stays whole (up to a quarter of
    the room), the prompt and negative prompt are cut, each with CUT_MARKER. (text, was_cut)."""
    if utf16_units(text) <= max_units:
        return text, False
    prompt, negative, settings = split_raw(text)
    settings = _cut(settings, max_units // 4) if settings else ""
    room = max_units - utf16_units(settings) - 40  # line breaks and the "Negative prompt: " label
    neg_room = min(utf16_units(negative), max(room // 3, room - utf16_units(prompt)))
    negative = _cut(negative, neg_room) if negative else ""
    prompt = _cut(prompt, room - utf16_units(negative))
    lines = [prompt] if prompt else []
    if negative:
        lines.append(f"Negative prompt: {negative}")
    if settings:
        lines.append(settings)
    return "\n".join(lines), True


def _user_comment(text: str) -> bytes:
    return UNICODE_CODE + text.encode("utf-16-be")


def _ascii_text(text: str, max_bytes: int) -> str | None:
    """`text` for an ASCII tag: None unless it is printable ASCII; cut with a marker to fit."""
    text = text.strip()
    if not text or not _PRINTABLE_ASCII.fullmatch(text):
        return None
    if len(text) >= max_bytes:
        text = text[: max_bytes - len(ASCII_CUT_MARKER) - 1].rstrip() + ASCII_CUT_MARKER
    return text


def _keywords(names: list[str]) -> tuple[bytes | None, bool]:
    """XPKeywords: names joined by ";" in UTF-16LE with a NUL; whole names until the budget is
    used, then a note of how many more the XMP has."""
    kept, size = [], 2
    for index, name in enumerate(names):
        cost = 2 * utf16_units(name) + 2
        if size + cost > KEYWORDS_MAX_BYTES - 80:
            kept.append(f"… (+{len(names) - index} more tags in the file's XMP)")
            return (";".join(kept).encode("utf-16-le") + b"\x00\x00"), True
        kept.append(name)
        size += cost
    return ((";".join(kept).encode("utf-16-le") + b"\x00\x00") if kept else None), False


def comfy_exif_value(key: str, text: str) -> bytes | None:
    """`<key>:<json>` as ComfyUI writes it (ASCII: non-ASCII re-escaped; None if over the cap)."""
    if not text.isascii():
        try:
            text = json.dumps(json.loads(text))  # same graph, ASCII escapes as json.dumps writes them
        except ValueError:
            text = text.encode("ascii", "backslashreplace").decode("ascii")
    value = f"{key}:{text}".replace("\x00", "").encode("ascii")
    return value if len(value) <= COMFY_MAX_BYTES else None


# -- building ----------------------------------------------------------------------------------


def default_parameters(info: dict[str, Any]) -> str | None:
    """The A1111 text built from the API's meta (Size and Model from the record when missing)."""
    meta = info.get("meta") if isinstance(info.get("meta"), dict) else {}
    model = info.get("checkpoint") or info.get("modelName")
    return parameters_from_meta(meta, size=(info.get("width"), info.get("height")), model=model)


def build_exif(info: dict[str, Any], tags: list[dict[str, Any]] | None, *, parameters: str | None = None,
               comfy: dict[str, str] | None = None) -> ExifBuild:
    """EXIF bytes for a WebP (see the module doc). `parameters`: the source file's own A1111
    text, copied as it is; None builds it from info["meta"] (or uses meta["parameters"])."""
    meta = info.get("meta") if isinstance(info.get("meta"), dict) else {}
    if parameters is None and isinstance(meta.get("parameters"), str):
        parameters = meta["parameters"]
    if parameters is None:
        parameters = default_parameters(info)
    parameters = clean_text(parameters) if parameters else None
    dropped: list[str] = []

    zeroth: dict[int, Any] = {piexif.ImageIFD.Software: SOFTWARE.encode()}
    exif_ifd: dict[int, Any] = {}
    prompt = meta.get("prompt")
    if isinstance(prompt, str):
        description = _ascii_text(clean_text(prompt), DESCRIPTION_MAX_BYTES)
        if description and not description.startswith(_COMFY_KEYS):
            zeroth[piexif.ImageIFD.ImageDescription] = description.encode("ascii")
            if description.endswith(ASCII_CUT_MARKER):
                dropped.append("description")
    username = info.get("username")
    if isinstance(username, str):
        artist = _ascii_text(clean_text(username), ARTIST_MAX_BYTES)
        if artist and not artist.startswith(_COMFY_KEYS):
            zeroth[piexif.ImageIFD.Artist] = artist.encode("ascii")
    names = [clean_text(str(t["name"])).replace(";", ",") for t in tags or [] if isinstance(t, dict) and t.get("name")]
    keywords, cut = _keywords(names)
    if keywords:
        zeroth[piexif.ImageIFD.XPKeywords] = keywords
    if cut:
        dropped.append("keywords")
    for key, text in (comfy or {}).items():
        value = comfy_exif_value(key, text) if key in COMFY_TAGS and isinstance(text, str) else None
        if value is not None:
            zeroth[COMFY_TAGS[key]] = value
        elif key in COMFY_TAGS:
            dropped.append(f"comfy_{key}")
    if parameters:
        text, cut = fit_parameters(parameters, (USER_COMMENT_MAX_BYTES - len(UNICODE_CODE)) // 2)
        exif_ifd[piexif.ExifIFD.UserComment] = _user_comment(text)
        if cut:
            dropped.append("parameters")
    created = parse_iso_datetime(info.get("createdAt"))
    if created:
        exif_ifd[piexif.ExifIFD.DateTimeOriginal] = created.strftime("%Y:%m:%d %H:%M:%S").encode()
        exif_ifd[piexif.ExifIFD.OffsetTimeOriginal] = b"+00:00"
    data = piexif.dump({"0th": zeroth, "Exif": exif_ifd})
    return ExifBuild(data, bool(dropped), tuple(dropped), parameters)


# -- reading -----------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    raw = bytes(value).rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def decode_user_comment(raw: bytes | None, *, big_endian: bool = True) -> str | None:
    """UserComment's text: UNICODE (UTF-16 in the block's byte order; a BOM wins), ASCII, or
    undefined (UTF-8 tried first); None when empty."""
    if not raw or len(raw) < 8:
        return None
    code, body = bytes(raw[:8]), bytes(raw[8:])
    if code == UNICODE_CODE:
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            text = body.decode("utf-16", errors="replace")
        else:
            text = body.decode("utf-16-be" if big_endian else "utf-16-le", errors="replace")
    else:
        text = _text(body) or ""
    text = text.strip("\x00").strip()
    return text or None


def load_exif_dict(source: str | os.PathLike | bytes) -> tuple[dict[str, Any] | None, bool]:
    """(piexif's dict, big_endian) from a WebP/JPEG path, WebP/JPEG bytes, or an EXIF blob;
    (None, True) if there is none."""
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    if data[:4] == b"RIFF":
        data = exif_payload(parse_chunks(data))
        if not data:
            return None, True
    exif = piexif.load(data)
    body = data[6:] if data.startswith(b"Exif\x00\x00") else data
    if data[:2] == b"\xff\xd8":  # a JPEG: piexif found the APP1 segment; its order is in there
        at = data.find(b"Exif\x00\x00")
        body = data[at + 6:] if at >= 0 else body
    return exif, body[:2] != b"II"


def comfy_from_exif(zeroth: dict[int, Any]) -> dict[str, str]:
    """ComfyUI's `prompt`/`workflow` texts from IFD0 (Model/Make), as its loader reads them."""
    found: dict[str, str] = {}
    for tag in sorted(zeroth):
        value = zeroth[tag]
        if not isinstance(value, bytes):
            continue
        text = _text(value) or ""
        key, sep, rest = text.partition(":")
        if sep and key in COMFY_TAGS and rest:
            found[key] = rest
    return found


def read_exif(source: str | os.PathLike | bytes) -> dict[str, Any]:
    """EXIF as build_exif writes it: user_comment (the text; civitgrab's first format, a JSON
    object, comes back as a dict), description, keywords (list), artist, datetime
    ("YYYY:MM:DD HH:MM:SS"), software, comfy ({"prompt"/"workflow": text}). Missing: None/[]/{}."""
    result: dict[str, Any] = {"user_comment": None, "description": None, "keywords": [], "artist": None,
                              "datetime": None, "software": None, "comfy": {}}
    exif, big_endian = load_exif_dict(source)
    if not exif:
        return result
    zeroth, exif_ifd = exif.get("0th", {}), exif.get("Exif", {})
    text = decode_user_comment(exif_ifd.get(piexif.ExifIFD.UserComment), big_endian=big_endian)
    if text and text.startswith("{") and '"civitgrab"' in text:
        try:
            result["user_comment"] = json.loads(text)
        except ValueError:
            result["user_comment"] = text
    else:
        result["user_comment"] = text
    result["description"] = _text(zeroth.get(piexif.ImageIFD.ImageDescription))
    result["artist"] = _text(zeroth.get(piexif.ImageIFD.Artist))
    result["software"] = _text(zeroth.get(piexif.ImageIFD.Software))
    result["datetime"] = _text(exif_ifd.get(piexif.ExifIFD.DateTimeOriginal))
    result["comfy"] = comfy_from_exif(zeroth)
    xp = zeroth.get(piexif.ImageIFD.XPKeywords)
    if xp:
        words = bytes(xp).decode("utf-16-le", errors="replace").rstrip("\x00")
        result["keywords"] = [w for w in words.split(";") if w]
    return result
