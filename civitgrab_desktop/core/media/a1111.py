"""The A1111 "parameters" text: built from CivitAI's meta, and split back into its parts.

The dialect (what A1111/Forge write into a PNG `parameters` chunk or a JPEG/WebP UserComment, and
what "PNG Info", CivitAI's upload form and SD metadata readers parse):

    <prompt, may span lines>
    Negative prompt: <negative prompt, may span lines>
    Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1, Size: 832x1216, Model hash: 1a2b, Model: x

The last line is the settings: `Key: value` pairs joined by ", "; a value holding a comma, colon
or line break is written as a JSON string (A1111 does the same), a dict (`Hashes`) as JSON.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from typing import Any

NEGATIVE_LABEL = "Negative prompt:"

# CivitAI's camelCase meta keys -> A1111's labels, in the order A1111 writes them.
_LEADING = (
    ("steps", "Steps"),
    ("sampler", "Sampler"),
    ("scheduler", "Schedule type"),
    ("cfgScale", "CFG scale"),
    ("seed", "Seed"),
    ("Size", "Size"),
    ("Model hash", "Model hash"),
    ("Model", "Model"),
    ("clipSkip", "Clip skip"),
    ("denoise", "Denoising strength"),
)
# Meta keys that are not generation settings (or are written elsewhere in the text).
_NOT_SETTINGS = {
    "prompt", "negativePrompt", "resources", "civitaiResources", "additionalResources", "comfy",
    "workflow", "parameters", "hashes", "width", "height", "draft", "nsfw", "process", "type",
    "engine", "extra", "external", "Created Date", "createdDate",
}
# one `Key: value` pair of a settings line (value: a JSON string, a JSON object, or up to a comma)
_PAIR = re.compile(r'\s*([^,:"{}\n]+):\s*("(?:\\.|[^\\"])*"|\{[^{}]*\}|[^,]*)(?:,|$)')
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text every writer can encode: lone surrogates become U+FFFD, NUL characters are removed."""
    return _SURROGATE.sub("\ufffd", text).replace("\x00", "")


def _scalar(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = clean_text(str(value)).strip()
    return text or None


def _quote(text: str) -> str:
    if not any(c in text for c in ",:\n\r"):
        return text
    return json.dumps(text, ensure_ascii=False)


def _label_ok(key: str) -> bool:
    # A label must survive the round trip: no separators, not too long, not a prompt line.
    return bool(key) and len(key) <= 60 and not any(c in key for c in ',:"{}\n\r')


def settings_pairs(meta: dict[str, Any], *, size: tuple[int | None, int | None] = (None, None),
                   model: str | None = None) -> list[tuple[str, str]]:
    """The settings line's pairs from CivitAI's meta: the well-known keys first (A1111's names
    and order), then the other scalar A1111-style keys as they are. `size`/`model` (from the
    record) fill in Size and Model when meta has none."""
    pairs: list[tuple[str, str]] = []
    used = set()
    for key, label in _LEADING:
        value = meta.get(key)
        if value is None:
            value = meta.get(label)
        used.update((key, label))
        if label == "Size" and value is None and all(size):
            value = f"{size[0]}x{size[1]}"
        if label == "Model" and value is None and model:
            value = model
        text = _scalar(value)
        if text is not None:
            pairs.append((label, _quote(text)))
    for key, value in meta.items():
        if key in used or key in _NOT_SETTINGS or not isinstance(key, str):
            continue
        text = _scalar(value)
        label = clean_text(key).strip()
        if text is not None and _label_ok(label) and label[:1].isupper():
            pairs.append((label, _quote(text)))
    hashes = meta.get("hashes")
    if isinstance(hashes, dict) and hashes and "Hashes" not in dict(pairs):
        flat = {clean_text(str(k)): clean_text(str(v)) for k, v in hashes.items() if _scalar(v) is not None}
        if flat:
            pairs.append(("Hashes", json.dumps(flat, ensure_ascii=False, separators=(", ", ": "))))
    return pairs


def join_parameters(prompt: str | None, negative: str | None, pairs: Iterable[tuple[str, str]]) -> str | None:
    """The parameters text from its three parts (each optional); None when all are empty."""
    lines = []
    if prompt and prompt.strip():
        lines.append(clean_text(prompt).strip())
    if negative and negative.strip():
        lines.append(f"{NEGATIVE_LABEL} {clean_text(negative).strip()}")
    settings = ", ".join(f"{k}: {v}" for k, v in pairs)
    if settings:
        lines.append(settings)
    return "\n".join(lines) or None


def parameters_from_meta(meta: dict[str, Any] | None, *, size: tuple[int | None, int | None] = (None, None),
                         model: str | None = None) -> str | None:
    """The A1111 parameters text for CivitAI's `meta` (None when it holds nothing to say)."""
    meta = meta if isinstance(meta, dict) else {}
    prompt, negative = meta.get("prompt"), meta.get("negativePrompt")
    pairs = settings_pairs(meta, size=size, model=model) if meta else []
    return join_parameters(prompt if isinstance(prompt, str) else None,
                           negative if isinstance(negative, str) else None, pairs)


def _parse_pairs(line: str) -> list[tuple[str, str]]:
    pairs, pos = [], 0
    line = line.strip()
    while pos < len(line):
        match = _PAIR.match(line, pos)
        if not match or match.end() == pos:
            return []
        key, value = match.group(1).strip(), match.group(2).strip()
        if value.startswith('"'):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        pairs.append((key, value))
        pos = match.end()
    return pairs


def _split(text: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    lines = text.replace("\r\n", "\n").split("\n")
    settings: list[tuple[str, str]] = []
    settings_line = ""
    end = len(lines)
    for index in range(len(lines) - 1, -1, -1):
        pairs = _parse_pairs(lines[index])
        if len(pairs) >= 3 or (pairs and lines[index].lstrip().startswith("Steps:")):
            settings, settings_line, end = pairs, lines[index], index
            break
    body = lines[:end]
    negative_at = next((i for i in range(len(body) - 1, -1, -1) if body[i].startswith(NEGATIVE_LABEL)), None)
    if negative_at is None:
        return "\n".join(body).strip(), "", settings_line, settings
    negative = "\n".join([body[negative_at][len(NEGATIVE_LABEL):], *body[negative_at + 1:]])
    return "\n".join(body[:negative_at]).strip(), negative.strip(), settings_line, settings


def split_parameters(text: str | None) -> tuple[str, str, list[tuple[str, str]]]:
    """(prompt, negative prompt, settings pairs) of a parameters text. The settings line is the
    last line that parses as at least three `Key: value` pairs, or any that starts with `Steps:`;
    the negative prompt starts at the last `Negative prompt:` line before it. Never raises."""
    if not text:
        return "", "", []
    prompt, negative, _line, pairs = _split(text)
    return prompt, negative, pairs


def split_raw(text: str) -> tuple[str, str, str]:
    """(prompt, negative prompt, settings line as written) of a parameters text."""
    prompt, negative, line, _pairs = _split(text)
    return prompt, negative, line
