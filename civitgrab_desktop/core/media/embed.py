"""The metadata civitgrab embeds in a WebP: EXIF (core/media/exif.py) plus XMP (core/media/xmp.py),
built from the library's record and tags and from what the source file itself carries.

What the source carries (`SourceMetadata`) is found in, by kind of file:
- PNG: the `parameters` text chunk (A1111/Forge), the `prompt`/`workflow` chunks (ComfyUI: JSON).
- JPEG/WebP from a generator: EXIF UserComment (A1111/Forge), IFD0 Make/Model "workflow:"/"prompt:"
  (ComfyUI's WebP writer).
- A WebP civitgrab wrote: the XMP record's Parameters when ParametersSource is "file" (a text built
  from the API's meta is not the source's and is built again), the ComfyUI texts in its EXIF; a
  WebP of the first format (JSON in UserComment): its meta["parameters"].
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from civitgrab_desktop import __version__
from civitgrab_desktop.core.media.exif import ExifBuild, build_exif, read_exif
from civitgrab_desktop.core.media.pngtext import png_text
from civitgrab_desktop.core.media.webp_riff import parse_chunks, xmp_payload
from civitgrab_desktop.core.media.xmp import build_xmp, read_xmp
from civitgrab_desktop.core.redact import scrub_secrets

COMFY_KEYS = ("prompt", "workflow")


@dataclass(frozen=True)
class SourceMetadata:
    parameters: str | None = None  # the generator's own A1111 text, kept verbatim
    comfy: dict[str, str] = field(default_factory=dict)  # ComfyUI "prompt"/"workflow" JSON texts


@dataclass(frozen=True)
class MetadataBuild:
    exif: ExifBuild
    xmp: bytes

    @property
    def dropped(self) -> tuple[str, ...]:
        return self.exif.dropped


def _is_comfy_json(text: str | None) -> bool:
    if not text or not text.lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _read_chunks(path: Path):
    try:
        return parse_chunks(path.read_bytes())
    except (OSError, ValueError):
        return None


def source_metadata(path: str | os.PathLike, data: bytes | None = None) -> SourceMetadata:
    """What a generator (or an earlier civitgrab run) wrote into `path` (whose bytes the caller
    may have read already: `data`); empty when nothing or when the file cannot be read. Never raises."""
    path = Path(path)
    try:
        if data is None:
            data = path.read_bytes()
    except OSError:
        return SourceMetadata()
    head = data[:12]
    if head.startswith(b"\x89PNG"):
        try:
            chunks = png_text(path)
        except (OSError, ValueError):
            return SourceMetadata()
        comfy = {k: chunks[k] for k in COMFY_KEYS if _is_comfy_json(chunks.get(k))}
        return SourceMetadata(chunks.get("parameters") or None, comfy)
    if not (head[:2] == b"\xff\xd8" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        return SourceMetadata()
    try:
        exif = read_exif(data)
    except Exception:  # EXIF piexif cannot parse: nothing to keep from it
        exif = {"user_comment": None, "comfy": {}, "software": None}
    comfy = {k: v for k, v in exif.get("comfy", {}).items() if _is_comfy_json(v)}
    comment = exif.get("user_comment")
    if isinstance(comment, dict):  # civitgrab's first format
        meta = comment.get("meta") if isinstance(comment.get("meta"), dict) else {}
        params = meta.get("parameters")
        return SourceMetadata(params if isinstance(params, str) and params else None, comfy)
    record: dict[str, Any] = {}
    if head[:4] == b"RIFF":
        try:
            record = read_xmp(xmp_payload(parse_chunks(data)))["record"]
        except ValueError:
            record = {}
    if record.get("FormatVersion"):  # ours: the text is the source's only if it says so
        for key in COMFY_KEYS:
            text = record.get("Comfy" + key.capitalize())
            if key not in comfy and _is_comfy_json(text):
                comfy[key] = text
        params = record.get("Parameters") if record.get("ParametersSource") == "file" else None
        return SourceMetadata(params or None, comfy)
    return SourceMetadata(comment if isinstance(comment, str) and comment else None, comfy)


def build_metadata(info: dict[str, Any], tags: list[dict[str, Any]] | None,
                   source: SourceMetadata | None = None) -> MetadataBuild:
    """EXIF and XMP for a WebP from the record (`info`: jobs/embed_info.py record_info), its tags and what the
    source file carries. Secrets that generators sometimes leave in meta are scrubbed."""
    source = source or SourceMetadata()
    info = scrub_secrets(dict(info))
    tags = [t for t in tags or [] if isinstance(t, dict)]
    exif = build_exif(info, tags, parameters=source.parameters, comfy=source.comfy)
    comfy_cut = {k: v for k, v in source.comfy.items() if f"comfy_{k}" in exif.dropped}
    # The whole A1111 text goes to XMP when it cannot be built again from Meta: the source's own
    # text, or one that EXIF holds cut.
    keep_text = bool(source.parameters) or "parameters" in exif.dropped
    xmp = build_xmp(info, tags, parameters=exif.parameters if keep_text else None,
                    parameters_source="file" if source.parameters else "meta",
                    comfy=comfy_cut, creator_tool=f"civitgrab {__version__}")
    return MetadataBuild(exif, xmp)


def file_image_id(path: str | os.PathLike) -> int | None:
    """The image id civitgrab recorded in a WebP it wrote (XMP record, or the first format's
    JSON UserComment); None for anything else."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return webp_image_id(data)


def webp_image_id(data: bytes) -> int | None:
    """file_image_id of a WebP held in memory."""
    try:
        chunks = parse_chunks(data)
    except ValueError:
        return None
    record = read_xmp(xmp_payload(chunks))["record"]
    if record.get("FormatVersion") and record.get("ImageId", "").isdigit():
        return int(record["ImageId"])
    try:
        comment = read_exif(data).get("user_comment")
    except Exception:
        return None
    if isinstance(comment, dict) and comment.get("civitgrab") is not None and isinstance(comment.get("id"), int):
        return comment["id"]
    return None


def read_file_xmp(path: str | os.PathLike) -> dict[str, Any]:
    """xmp.read_xmp of a WebP's XMP chunk (empty fields when it has none or is not a WebP)."""
    chunks = _read_chunks(Path(path))
    return read_xmp(xmp_payload(chunks) if chunks else None)
