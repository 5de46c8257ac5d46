"""Where a file goes, decided from its record BEFORE it is written.

The seed downloaded into the identifier folder and sorted afterwards by re-reading `_meta.txt`,
which left stale paths in its DB and let a prompt line `Model: X` pick the folder. Here the folder
is a pure function of the record, so the path stored in the library is always the final one.

Classic layout (the seed's):
    <out>/Username_Search/<user>/[<model>|invalid_metadata|no_metadata|videos]/<id><ext>
    <out>/Model_ID_Search/model_<id>/...
    <out>/Model_Version_ID_Search/modelVersion_<id>/...
    <out>/Model_Tag_Search/<tag>/model_<modelId>/...
Browse layout (the converter's):
    <dest>/CivitAI_Browse/{Images|Videos}/{SFW|NSFW}/<model version>/<user>/<id>.{webp|mp4|json}
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.model import DownloadMode, is_nsfw_level
from civitgrab_desktop.core.organize.sanitize import (
    DEFAULT_MAX_BYTES,
    room_for_filename,
    safe_join,
    sanitize_component,
    shorten,
)

DEFAULT_MAX_PATH = 240
# The seed capped model-folder names at 60 characters; kept so old collections line up.
MODEL_FOLDER_CHARS = 60

INVALID_METADATA = "invalid_metadata"
NO_METADATA = "no_metadata"
VIDEOS = "videos"

CLASSIC_ROOTS = {
    "username": "Username_Search",
    "model": "Model_ID_Search",
    "model_version": "Model_Version_ID_Search",
    "tag": "Model_Tag_Search",
    "post": "Post_ID_Search",  # modes 5 and 6 are civitgrab's own (from pasted post / image links)
    "image": "Image_ID_Search",
}
# The seed's `--mode` numbers, and ours after them: each mode's name is its CLASSIC_ROOTS key.
SEED_MODES = {mode: mode.name.lower() for mode in DownloadMode}

BROWSE_ROOT = "CivitAI_Browse"
UNKNOWN_MODEL = "unknown_model"
UNKNOWN_USER = "unknown_user"
_BROWSE_FIELDS = ("type", "nsfw_level", "model_version_name", "checkpoint_name", "username")


def classic_mode(mode: str | int) -> str:
    """Normalize a mode given as a name (`username`, `model`, `model_version`, `tag`) or seed number."""
    if isinstance(mode, int) and not isinstance(mode, bool):
        if mode in SEED_MODES:
            return SEED_MODES[mode]
    elif isinstance(mode, str):
        key = mode.strip().lower().replace("-", "_")
        if key.isdigit() and int(key) in SEED_MODES:
            return SEED_MODES[int(key)]
        if key in CLASSIC_ROOTS:
            return key
    raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(CLASSIC_ROOTS)} or 1-6")


def _positive_id(value: Any, what: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        raise ValueError(f"{what} must be a positive number, not {value!r}")
    return number


def tag_folder_name(tag: str) -> str:
    """The tag as the user typed it, sanitized: underscores are kept.

    The seed turned `_` into spaces only for the API query and named the folder after the typed
    text; keeping that means a seed collection's tag folders are reused, not duplicated.
    """
    if not str(tag).strip():
        raise ValueError("tag must not be empty")
    return sanitize_component(str(tag).strip())


def model_folder_name(name: str) -> str:
    return sanitize_component(str(name).strip()[:MODEL_FOLDER_CHARS])


def identifier_components(mode: str | int, identifier: Any, *, model_id: Any = None) -> list[str]:
    """The folders under the output dir that name the query (`["Username_Search", "alice"]`)."""
    mode = classic_mode(mode)
    root = CLASSIC_ROOTS[mode]
    if mode == "username":
        if not str(identifier or "").strip():
            raise ValueError("username must not be empty")
        return [root, sanitize_component(str(identifier).strip())]
    if mode == "model":
        return [root, f"model_{_positive_id(identifier, 'model id')}"]
    if mode == "model_version":
        return [root, f"modelVersion_{_positive_id(identifier, 'model version id')}"]
    if mode == "post":
        return [root, f"post_{_positive_id(identifier, 'post id')}"]
    if mode == "image":
        _positive_id(identifier, "image id")
        return [root]
    if model_id is None:
        raise ValueError("tag mode needs the model_id of the model the image came from")
    return [root, tag_folder_name(identifier), f"model_{_positive_id(model_id, 'model id')}"]


def classic_sort_folder(record: Any) -> str:
    """The sorting subfolder for a record (`has_meta`, `checkpoint_name`, `is_video` attributes).

    A model name wins for images and videos alike; otherwise videos go to `videos/`, images with
    metadata but no model name to `invalid_metadata/`, and images without metadata to `no_metadata/`.
    """
    name = (getattr(record, "checkpoint_name", None) or "").strip()
    has_meta = bool(getattr(record, "has_meta", False))
    if has_meta and name:
        return model_folder_name(name)
    if getattr(record, "is_video", False):
        return VIDEOS
    return INVALID_METADATA if has_meta else NO_METADATA


def classic_target_dir(
    output_dir: str | os.PathLike,
    mode: str | int,
    identifier: Any,
    *,
    record: Any,
    model_id: Any = None,
    sort: bool = True,
    max_path: int = DEFAULT_MAX_PATH,
) -> Path:
    """The folder a classic-layout download goes to (`--no_sort`: the identifier folder itself).

    Raises PathTooLong when the folder leaves fewer than 10 characters for a file name under
    `max_path`, so the problem is found before anything is downloaded.
    """
    parts = identifier_components(mode, identifier, model_id=model_id)
    if sort:
        parts.append(classic_sort_folder(record))
    target = safe_join(output_dir, *parts)
    room_for_filename(target, max_path)
    return target


def _normalize_ext(ext: str) -> str:
    ext = str(ext or "").strip().lower()
    if ext and not ext.startswith("."):
        ext = "." + ext
    return ext


def classic_filename(image_id: Any, ext: str) -> str:
    return f"{_positive_id(image_id, 'image id')}{_normalize_ext(ext)}"


def meta_txt_name(image_id: Any) -> str:
    return f"{_positive_id(image_id, 'image id')}_meta.txt"


def no_meta_txt_name(image_id: Any) -> str:
    return f"{_positive_id(image_id, 'image id')}_no_meta.txt"


def json_sidecar_name(image_id: Any) -> str:
    return f"{_positive_id(image_id, 'image id')}.json"


def _browse_fields(record_like: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = set(overrides) - set(_BROWSE_FIELDS)
    if unknown:
        raise TypeError(f"unexpected field(s) {', '.join(sorted(unknown))}")
    fields = {name: getattr(record_like, name, None) for name in _BROWSE_FIELDS}
    fields.update(overrides)
    return fields


def _first_text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def browse_components(record_like: Any = None, *, pg13_is_nsfw: bool = False, **fields: Any) -> list[str]:
    """The browse-layout folders for one record, as a list of sanitized names.

    Fields come from `record_like`'s attributes, overridden by keyword arguments: `type`,
    `nsfw_level`, `model_version_name`, `checkpoint_name`, `username`.
    Model folder: model_version_name, else checkpoint_name, else `unknown_model`.
    An unknown NSFW level (0/None) is filed as NSFW: a wrong NSFW is harmless, a wrong SFW is not.
    """
    f = _browse_fields(record_like, fields)
    kind = "Videos" if f["type"] == "video" else "Images"
    level = f["nsfw_level"]
    nsfw = not level or is_nsfw_level(level, pg13_is_nsfw)
    model = _first_text(f["model_version_name"], f["checkpoint_name"])
    user = _first_text(f["username"])
    return [
        BROWSE_ROOT,
        kind,
        "NSFW" if nsfw else "SFW",
        model_folder_name(model) if model else UNKNOWN_MODEL,
        sanitize_component(user) if user else UNKNOWN_USER,
    ]


def browse_target_dir(
    dest_root: str | os.PathLike, record_like: Any = None, *, pg13_is_nsfw: bool = False, **fields: Any
) -> Path:
    """`<dest>/CivitAI_Browse/{Images|Videos}/{SFW|NSFW}/<model>/<user>` (see browse_components)."""
    return safe_join(dest_root, *browse_components(record_like, pg13_is_nsfw=pg13_is_nsfw, **fields))


def tag_summary_csv_path(output_dir: str | os.PathLike, tag: str, date: dt.date | str) -> Path:
    """`<out>/Model_Tag_Search/<tag>/summary_<tag>_<YYYYMMDD>.csv`; `date` may be a date or YYYYMMDD."""
    if isinstance(date, dt.date):
        stamp = date.strftime("%Y%m%d")
    else:
        stamp = str(date).strip()
        dt.datetime.strptime(stamp, "%Y%m%d")  # raises ValueError on anything else
    folder = tag_folder_name(tag)
    # A long tag is cut in the file name, never the date.
    fixed = f"summary__{stamp}.csv"
    short_tag = shorten(folder, DEFAULT_MAX_BYTES - len(fixed)) or "_"
    return safe_join(output_dir, CLASSIC_ROOTS["tag"], folder, f"summary_{short_tag}_{stamp}.csv")
