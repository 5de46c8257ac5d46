"""What an image file itself says about its generation: prompt, negative prompt, settings, tags,
ComfyUI graph, each with the place in the file it was read from (the gallery's detail pane shows
these, so a user sees what other tools will find in the file, not only what the library knows).

Read, in order of preference:
- prompt / negative / settings: the A1111 text (EXIF UserComment of a WebP/JPEG, the `parameters`
  chunk of a PNG); a prompt EXIF holds cut is taken whole from XMP dc:description; else XMP
  dc:description alone; else civitgrab's first format (JSON in UserComment).
- tags: XMP dc:subject, else EXIF XPKeywords, else the first format's JSON.
Never raises: an unreadable file gives `problem`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.media.a1111 import split_parameters
from civitgrab_desktop.core.media.exif import CUT_MARKER, read_exif
from civitgrab_desktop.core.media.pngtext import png_text
from civitgrab_desktop.core.media.webp_riff import parse_chunks, xmp_payload
from civitgrab_desktop.core.media.xmp import read_xmp

USER_COMMENT = "EXIF UserComment (A1111 parameters)"
PNG_PARAMETERS = "PNG text chunk “parameters” (A1111)"
XMP_DESCRIPTION = "XMP dc:description"
XMP_SUBJECT = "XMP dc:subject"
XP_KEYWORDS = "EXIF XPKeywords"
OLD_JSON = "EXIF UserComment (civitgrab's first format)"
COMFY_EXIF = "EXIF Make/Model (ComfyUI)"
COMFY_PNG = "PNG text chunks “prompt”/“workflow” (ComfyUI)"


@dataclass
class FileFacts:
    path: str | None = None
    prompt: str | None = None
    prompt_from: str | None = None
    negative: str | None = None
    settings: list[tuple[str, str]] = field(default_factory=list)
    settings_from: str | None = None
    tags: list[str] = field(default_factory=list)
    tags_from: str | None = None
    comfy_from: str | None = None  # where a ComfyUI graph is stored, when there is one
    problem: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.prompt or self.settings or self.tags or self.comfy_from)


def _from_parameters(facts: FileFacts, text: str | None, where: str) -> None:
    if not text:
        return
    prompt, negative, settings = split_parameters(text)
    if prompt:
        facts.prompt, facts.prompt_from = prompt, where
    facts.negative = negative or None
    if settings:
        facts.settings, facts.settings_from = [(k, str(v)) for k, v in settings], where


def _from_old_json(facts: FileFacts, comment: dict[str, Any]) -> None:
    meta = comment.get("meta") if isinstance(comment.get("meta"), dict) else {}
    if isinstance(meta.get("parameters"), str):
        _from_parameters(facts, meta["parameters"], OLD_JSON)
    if not facts.prompt and isinstance(meta.get("prompt"), str):
        facts.prompt, facts.prompt_from = meta["prompt"], OLD_JSON
        if isinstance(meta.get("negativePrompt"), str):
            facts.negative = meta["negativePrompt"]
    names = [str(t.get("name")) for t in comment.get("tags") or () if isinstance(t, dict) and t.get("name")]
    if names and not facts.tags:
        facts.tags, facts.tags_from = names, OLD_JSON


def read_file_facts(path: str | os.PathLike | None) -> FileFacts:
    facts = FileFacts(path=str(path) if path else None)
    if not path:
        facts.problem = "no file on disk"
        return facts
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
        if head.startswith(b"\x89PNG"):
            chunks = png_text(path)
            _from_parameters(facts, chunks.get("parameters"), PNG_PARAMETERS)
            if chunks.get("workflow") or chunks.get("prompt", "").lstrip().startswith("{"):
                facts.comfy_from = COMFY_PNG
            return facts
        if not (head[:2] == b"\xff\xd8" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
            return facts
        data = path.read_bytes()
        xmp = read_xmp(xmp_payload(parse_chunks(data))) if head[:4] == b"RIFF" else read_xmp(None)
        exif = read_exif(data)
    except (OSError, ValueError) as exc:
        facts.problem = f"the file cannot be read ({exc})"
        return facts
    except Exception as exc:  # piexif raises assorted errors for a broken EXIF block
        facts.problem = f"its metadata cannot be read ({type(exc).__name__})"
        return facts
    comment = exif.get("user_comment")
    if isinstance(comment, dict):
        _from_old_json(facts, comment)
    else:
        _from_parameters(facts, comment, USER_COMMENT)
    whole = xmp.get("description")
    if whole and (not facts.prompt or facts.prompt.endswith(CUT_MARKER.strip())):
        cut = bool(facts.prompt)
        facts.prompt = whole
        facts.prompt_from = XMP_DESCRIPTION + (" (EXIF holds it cut)" if cut else "")
    if xmp.get("subject"):
        facts.tags, facts.tags_from = list(xmp["subject"]), XMP_SUBJECT
    elif exif.get("keywords") and not facts.tags:
        facts.tags, facts.tags_from = list(exif["keywords"]), XP_KEYWORDS
    if exif.get("comfy"):
        facts.comfy_from = COMFY_EXIF
    return facts
