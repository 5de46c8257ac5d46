"""Names from the service made safe as path components on Windows, macOS and Linux at once.

Rules (the strictest of the three systems):
- NFC, so a name typed on macOS (NFD) and one from the API (NFC) are the same folder;
- `<>:"/\\|?*`, control characters (C0, DEL, C1) and lone surrogates become `_`;
- no leading spaces or dots (a leading dot hides a file on macOS/Linux and from the gallery),
  no trailing spaces or dots (Windows drops them silently, so two names could meet);
- Windows device names (CON, NUL, COM1, LPT¹, ..., also `nul.txt`) get `_` after the stem;
- at most `max_bytes` UTF-8 bytes (Linux counts bytes, not characters), never cutting a code point.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

# safe_join's containment rule (and the UnsafePathError it raises) lives in core/roots.py, beside
# the roots rule.
from civitgrab_desktop.core.roots import ensure_inside

DEFAULT_MAX_BYTES = 120
MIN_MAX_BYTES = 8
# An extension longer than this is treated as part of the name when shortening.
MAX_EXT_BYTES = 16
# The seed's `--max_path` rule gives up when fewer characters than this are left for a file name.
MIN_FILENAME = 10

_FORBIDDEN = frozenset('<>:"/\\|?*')
_WINDOWS_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789¹²³"]
)


class PathTooLong(ValueError):
    """No usable file name fits under the `--max_path` limit."""


def _is_bad_char(ch: str) -> bool:
    code = ord(ch)
    return (
        ch in _FORBIDDEN
        or code < 32
        or 127 <= code < 160  # DEL and the C1 controls
        or 0xD800 <= code <= 0xDFFF  # lone surrogates cannot be encoded as UTF-8
    )


def _trim(name: str) -> str:
    return name.lstrip(" .").rstrip(" .")


def _cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` that fits in `max_bytes` UTF-8 bytes."""
    return text.encode("utf-8")[: max(max_bytes, 0)].decode("utf-8", errors="ignore")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def split_ext(name: str) -> tuple[str, str]:
    """(`stem`, `.ext`) when the name has a short extension; otherwise (`name`, "")."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    ext = name[dot:]
    if _utf8_len(ext) > MAX_EXT_BYTES or " " in ext:
        return name, ""
    return name[:dot], ext


def is_windows_reserved(name: str) -> bool:
    """True for device names Windows refuses as files, with or without an extension."""
    stem = name.split(".", 1)[0].rstrip(" ")
    return stem.upper() in _WINDOWS_DEVICES


def _unreserve(name: str) -> str:
    dot = name.find(".")
    if dot < 0:
        return name + "_"
    stem = name[:dot].rstrip(" ")
    return stem + "_" + name[len(stem) :]


def shorten(name: str, max_bytes: int, *, keep_ext: bool = False) -> str:
    """Cut `name` to `max_bytes` UTF-8 bytes, keeping a short extension when asked."""
    if _utf8_len(name) <= max_bytes:
        return name
    stem, ext = split_ext(name) if keep_ext else (name, "")
    if ext and _utf8_len(ext) < max_bytes:
        short_stem = _trim(_cut_utf8(stem, max_bytes - _utf8_len(ext)))
        if short_stem:
            return short_stem + ext
    return _trim(_cut_utf8(name, max_bytes))


def sanitize_component(
    name: object,
    max_bytes: int = DEFAULT_MAX_BYTES,
    fallback: str = "_",
    *,
    keep_ext: bool = False,
) -> str:
    """One path component valid on Windows, macOS and Linux; never empty, `.` or `..`."""
    if max_bytes < MIN_MAX_BYTES:
        raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}")
    text = "" if name is None else str(name)
    text = unicodedata.normalize("NFC", text)
    text = "".join("_" if _is_bad_char(ch) else ch for ch in text)
    text = shorten(_trim(text), max_bytes, keep_ext=keep_ext)
    if is_windows_reserved(text):
        text = _unreserve(text)
        if _utf8_len(text) > max_bytes:  # tiny limits only; the `CON_` prefix (<= 8 bytes) survives
            text = _trim(_cut_utf8(text, max_bytes))
    if not text:
        if fallback == "_":
            return "_"
        return sanitize_component(fallback, max_bytes, "_", keep_ext=keep_ext)
    return text


def safe_join(root: str | os.PathLike, *components: object, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """`root/<c1>/<c2>...` with every component sanitized, guaranteed to stay inside `root`.

    The check resolves symlinks, so a folder linked to somewhere else is refused. Returns the
    absolute, unresolved path (what the caller expects to see in the library).
    """
    root_abs = Path(os.path.abspath(root))
    last = len(components) - 1
    clean = [sanitize_component(c, max_bytes, keep_ext=(i == last)) for i, c in enumerate(components)]
    return ensure_inside(root_abs, root_abs.joinpath(*clean))


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cut_utf16(text: str, units: int) -> str:
    out, used = [], 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            break
        out.append(ch)
    return "".join(out)


def room_for_filename(directory: str | os.PathLike, max_path: int) -> int:
    """UTF-16 units left for a file name in `directory`; PathTooLong when under MIN_FILENAME."""
    room = max_path - _utf16_len(os.fspath(directory)) - 1
    if room < MIN_FILENAME:
        raise PathTooLong(f"{directory}: only {max(room, 0)} characters left for a file name (max_path {max_path})")
    return room


def fit_filename(directory: str | os.PathLike, filename: str, max_path: int) -> str:
    """The seed's `--max_path` rule: shorten the stem so `dir + sep + filename` fits.

    Lengths are counted in UTF-16 units, as Windows counts MAX_PATH (never fewer than characters).
    Raises PathTooLong when fewer than 10 units would be left for the file name.
    """
    dir_len = _utf16_len(os.fspath(directory)) + 1
    if dir_len + _utf16_len(filename) <= max_path:
        return filename
    room = room_for_filename(directory, max_path)
    stem, ext = split_ext(filename)
    stem = _cut_utf16(stem, room - _utf16_len(ext)).rstrip(" .")
    if not stem:
        raise PathTooLong(f"{filename!r} cannot be shortened to {room} characters")
    return stem + ext
