"""Sidecar files next to each download: `<id>.json` (always) and the seed's `<id>_meta.txt` /
`<id>_no_meta.txt` (classic layout).

Every write is atomic (temp file, fsync, rename), so a crash leaves the old sidecar or the new one.
No sidecar ever holds an API key: `token=` (and `api_key=`) query parameters are removed from
every URL found anywhere in the data.

`_meta.txt` format: one `key: value` line per key in API order. Strings are written as they are,
anything else as compact JSON. Line breaks are escaped (`\\n`, `\\r`, `\\uXXXX` for the rarer
ones and for lone surrogates), so every key is exactly one line and a prompt can never add a
`Model:` line. A backslash is doubled only where it would otherwise read as an escape, so prompts
like `\\(masterpiece\\)` stay readable. `read_meta_txt` is the exact inverse for string values.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from civitgrab_desktop.core.atomic_write import atomic_write_bytes
from civitgrab_desktop.core.redact import scrub_secrets

NO_META_FIRST_LINE = "No metadata available."

# Characters some reader could take as the end of a line (str.splitlines' list).
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_UNESCAPE_RE = re.compile(r"\\(n|r|\\|u[0-9a-fA-F]{4})")


class SidecarError(ValueError):
    """A sidecar exists but cannot be read."""


# --- JSON sidecar ----------------------------------------------------------------------------


def _write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    # A lone surrogate (the API's JSON can carry one) becomes its JSON escape `\udXXX`: still
    # valid JSON, and it reads back as the same string.
    atomic_write_bytes(Path(path), (text + "\n").encode("utf-8", errors="backslashreplace"))


def write_json_sidecar(
    path: str | os.PathLike,
    record_raw: dict[str, Any],
    *,
    tags: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `<id>.json`: the full API record, then `"tags"` when known, then `extra`'s keys
    (app-specific facts such as a sha256; they win over record keys). Returns what was written."""
    data = scrub_secrets(dict(record_raw))
    if tags is not None:
        data["tags"] = scrub_secrets(list(tags))
    if extra:
        data.update(scrub_secrets(dict(extra)))
    _write_json(Path(path), data)
    return data


def read_json_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SidecarError(f"{path}: not a JSON sidecar ({exc})") from exc
    except RecursionError as exc:  # a hostile file nested past the parser's depth
        raise SidecarError(f"{path}: not a JSON sidecar (nested too deeply)") from exc
    if not isinstance(data, dict):
        raise SidecarError(f"{path}: JSON sidecar is not an object")
    return data


def update_json_sidecar_tags(
    path: str | os.PathLike, tags: list[dict[str, Any]], *, record_raw: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Replace `"tags"` in an existing sidecar, keeping everything else.

    A missing (or unreadable) sidecar is written from `record_raw`; without one that is an error.
    Not safe against two writers of one file at once: the library's claims prevent that.
    """
    path = Path(path)
    try:
        data = read_json_sidecar(path)
    except (FileNotFoundError, SidecarError):
        if record_raw is None:
            raise
        return write_json_sidecar(path, record_raw, tags=tags)
    data["tags"] = scrub_secrets(list(tags))
    _write_json(path, data)
    return data


# --- _meta.txt / _no_meta.txt ----------------------------------------------------------------


def _escape_char(ch: str, in_key: bool) -> str:
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch in _LINE_BREAKS or (in_key and ch == ":") or "\ud800" <= ch <= "\udfff":
        return f"\\u{ord(ch):04x}"
    return ch


def _escaping_re(in_key: bool) -> re.Pattern[str]:
    # What `_escape_char` changes, and a backslash before `n`, `r`, `u`, a backslash or such a
    # character (it would read as an escape otherwise). One regex pass instead of a Python loop
    # per character: a prompt of a few KB costs microseconds, not a fraction of a millisecond.
    special = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\ud800-\udfff" + (":" if in_key else "")
    return re.compile(f"\\\\(?=[nru\\\\{special}])|[{special}]")


_ESCAPING = {False: _escaping_re(False), True: _escaping_re(True)}


def escape_meta_text(text: str, *, in_key: bool = False) -> str:
    return _ESCAPING[in_key].sub(lambda m: "\\\\" if m.group() == "\\" else _escape_char(m.group(), in_key), text)


def unescape_meta_text(text: str) -> str:
    def replace(m: re.Match[str]) -> str:
        code = m.group(1)
        return {"n": "\n", "r": "\r", "\\": "\\"}.get(code) or chr(int(code[1:], 16))

    return _UNESCAPE_RE.sub(replace, text)


def format_meta_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def meta_txt_lines(meta: dict[str, Any], *, model_name: str | None = None) -> list[str]:
    items = list(meta.items())
    if model_name and "Model" not in meta:
        items.insert(0, ("Model", model_name))
    return [
        f"{escape_meta_text(str(key), in_key=True)}: {escape_meta_text(format_meta_value(value))}"
        for key, value in items
    ]


def write_meta_txt(path: str | os.PathLike, meta: dict[str, Any], *, model_name: str | None = None) -> None:
    """Write `<id>_meta.txt`; `model_name` becomes a first `Model:` line when meta has none."""
    lines = meta_txt_lines(scrub_secrets(meta), model_name=model_name)
    atomic_write_bytes(Path(path), "".join(line + "\n" for line in lines).encode("utf-8"))


def write_no_meta_txt(path: str | os.PathLike, image_id: int, username: str | None, site_base: str) -> None:
    """Write `<id>_no_meta.txt`: the seed's two lines, with the image page on `site_base`."""
    url = f"{site_base.rstrip('/')}/images/{int(image_id)}"
    if username:
        url += f"?username={quote(username, safe='')}"
    text = f"{NO_META_FIRST_LINE}\nURL: {escape_meta_text(url)}\n"
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def read_meta_txt(path: str | os.PathLike) -> dict[str, str]:
    """Parse a `_meta.txt` (or `_no_meta.txt`) back into `{key: text}`; lines without `:` are skipped."""
    result: dict[str, str] = {}
    text = Path(path).read_bytes().decode("utf-8")
    for line in text.split("\n"):
        if ":" not in line:
            continue
        key, rest = line.split(":", 1)
        result[unescape_meta_text(key)] = unescape_meta_text(rest[1:] if rest.startswith(" ") else rest)
    return result
