"""What the Browse & Download form offers and how it reads what people type or paste: the modes,
their placeholders, the NSFW / layout / video choices, the check of typed identifiers, and turning
pasted CivitAI links into a mode and identifiers. No Qt: the page (`download.py`) shows it.
"""

from __future__ import annotations

import re

from civitgrab_desktop.core.civitai.hosts import MAIN_DOMAIN
from civitgrab_desktop.core.civitai.urls import parse_pasted
from civitgrab_desktop.core.model import DownloadMode
from civitgrab_desktop.gui.util import plural
from civitgrab_desktop.jobs.identifiers import (
    IDENTIFIER_NAMES,
    IdentifierError,
    normalize_identifiers,
    split_identifiers,
)

MODES = [
    (DownloadMode.USERNAME, "User", "Everything one or more users posted"),
    (DownloadMode.MODEL, "Model", "Every image posted on a model's versions (model IDs)"),
    (DownloadMode.TAG, "Tag", "Images of the models that carry a tag"),
    (DownloadMode.MODEL_VERSION, "Version", "Images posted on one model version (version IDs)"),
    (DownloadMode.POST, "Post", "The images and videos of one post (post IDs)"),
    (DownloadMode.IMAGE, "Image", "Single images or videos (image IDs)"),
]
MODE_NAMES = IDENTIFIER_NAMES
TITLE_PREFIX = {
    DownloadMode.USERNAME: "user",
    DownloadMode.MODEL: "model",
    DownloadMode.TAG: "tag",
    DownloadMode.MODEL_VERSION: "version",
    DownloadMode.POST: "post",
    DownloadMode.IMAGE: "image",
}
PLACEHOLDERS = {
    DownloadMode.USERNAME: f"e.g. alice, bob_art — or paste a {MAIN_DOMAIN}/user/… link",
    DownloadMode.MODEL: f"e.g. 4201, 133005 — or paste a {MAIN_DOMAIN}/models/… link",
    DownloadMode.TAG: f"e.g. anime, sci-fi — or paste a {MAIN_DOMAIN}/tag/… link",
    DownloadMode.MODEL_VERSION: "e.g. 130072 — or paste a link with ?modelVersionId=…",
    DownloadMode.POST: f"e.g. 800030 — or paste a {MAIN_DOMAIN}/posts/… link",
    DownloadMode.IMAGE: f"e.g. 7001699 — or paste a {MAIN_DOMAIN}/images/… link",
}
NSFW_OPTIONS = [
    ("none", "None — safe images only (PG)"),
    ("soft", "Soft — adds PG-13"),
    ("mature", "Mature — adds R"),
    ("x", "X — everything"),
]
LAYOUTS = [
    ("sorted", "Sorted by model (classic)", "Username_Search/<user>/<model name>/…, like the classic tool"),
    ("nosort", "No sort (classic, flat)", "Username_Search/<user>/… without model subfolders"),
    ("organized", "Organized (CivitAI_Browse)", "CivitAI_Browse/{Images,Videos}/{SFW,NSFW}/<version>/<user>/…"),
]
VIDEO_OPTIONS = [("all", "Images and videos"), ("no_videos", "Images only"), ("videos_only", "Videos only")]


class InputError(ValueError):
    pass


def validate_identifiers(mode: DownloadMode, text: str) -> list[str]:
    try:
        values = normalize_identifiers(mode, split_identifiers(text))
    except IdentifierError as exc:
        raise InputError(str(exc)) from None
    if not values:
        raise InputError(f"Enter at least one {MODE_NAMES[mode]}.")
    return values


def looks_like_link(text: str) -> bool:
    return "://" in text or "civitai." in text.lower()


def rewrite_pasted(current_mode: DownloadMode, text: str) -> tuple[DownloadMode, str, str]:
    """Turn pasted CivitAI links in `text` into identifiers. Returns (mode, new text, note).

    The first link decides the mode; links of another kind are dropped with a note."""
    pieces: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if looks_like_link(part):
            pieces.extend(p for p in re.split(r"\s+", part) if p)
        elif part:
            pieces.append(part)
    mode = None
    plain: list[str] = []
    found: list[tuple[DownloadMode, str]] = []
    notes: list[str] = []
    for piece in pieces:
        if not looks_like_link(piece):
            plain.append(piece)
            continue
        target = parse_pasted(piece)
        if target is None:
            notes.append(f"Not a CivitAI link: {piece}")
            continue
        if target.kind == "tagId":
            if target.identifier.isdigit():
                notes.append(
                    f"That link lists images with tag id {target.identifier}; civitgrab downloads by model tag — "
                    "type the tag's name instead."
                )
                mode = mode or DownloadMode.TAG
                continue
            found.append((DownloadMode.TAG, target.identifier))
            continue
        if target.mode is None:
            notes.append(f"That {target.kind} link can't be downloaded; paste a user, model, tag, post or image link.")
            continue
        found.append((target.mode, target.identifier))
    if found:
        mode = found[0][0]
    if mode is None:
        return current_mode, text, " ".join(notes)
    kept = [ident for m, ident in found if m == mode]
    dropped = [ident for m, ident in found if m != mode]
    if dropped:
        notes.append(f"Ignored {plural(len(dropped), 'link')} of another kind: {', '.join(dropped)}")
    if plain and mode != current_mode:
        notes.append(f"Switched to {MODE_NAMES[mode]} mode; check the other entries.")
    values: list[str] = []
    for v in plain + kept:
        if v not in values:
            values.append(v)
    return mode, ", ".join(values), " ".join(notes)
