"""Plain dataclasses the library hands out (and takes in). No sqlite3 types leak past the store."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field, fields
from typing import Any


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def loads(text: str | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


class FieldAccess:
    """Lets callers read a row as `row.field` or `row["field"]` / `row.get("field")`."""

    def __getitem__(self, name: str) -> Any:
        if name not in self.__dataclass_fields__:  # type: ignore[attr-defined]
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default) if name in self.__dataclass_fields__ else default  # type: ignore[attr-defined]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Source:
    """The query that listed a page of images: `upsert_listed` records it per image."""

    target_type: str  # username | model | modelVersion | tag | update | classic ...
    target_value: str
    path_for: dict[int, str] | None = None  # planned file path of each image for this query
    model_id: int | None = None  # tag mode: the model that carried the tag


@dataclass(frozen=True)
class ImageState(FieldAccess):
    """What a download job needs to decide about one listed image."""

    id: int
    dl_state: str  # pending | done | failed
    path: str | None
    sha256: str | None
    bytes: int | None
    mime: str | None
    quality: str | None
    dl_owner: str | None
    dl_owner_alive: bool  # claimed by an owner that may still be working on it
    tag_state: str
    cv_state: str

    @property
    def downloaded(self) -> bool:
        return self.dl_state == "done"


@dataclass
class ImageRow(FieldAccess):
    """One `images` row, with its JSON columns parsed back (meta, record, model_version_ids)."""

    id: int
    type: str = "image"
    url: str | None = None
    width: int | None = None
    height: int | None = None
    nsfw_level: int = 0
    username: str | None = None
    post_id: int | None = None
    created_at: str | None = None
    base_model: str | None = None
    model_version_ids: list[int] = field(default_factory=list)
    model_version_name: str | None = None
    checkpoint_name: str | None = None
    prompt: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    reactions: int = 0
    record: dict[str, Any] = field(default_factory=dict)
    first_seen_at: str | None = None
    last_seen_at: str | None = None
    gone_at: str | None = None
    dl_state: str = "pending"
    path: str | None = None
    quality: str | None = None
    mime: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    downloaded_at: str | None = None
    dl_error: str | None = None
    dl_attempts: int = 0
    dl_owner: str | None = None
    dl_claimed_at: float | None = None
    tag_state: str = "never"
    tags_fetched_at: str | None = None
    tag_error: str | None = None
    tag_method: str | None = None
    tag_owner: str | None = None
    tag_claimed_at: float | None = None
    cv_state: str = "never"
    cv_error: str | None = None
    cv_owner: str | None = None
    cv_claimed_at: float | None = None

    @property
    def is_video(self) -> bool:
        return self.type == "video"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ImageRow:
        keys = row.keys()  # a Row iterates over values, not names
        data = {key: row[key] for key in keys if key in _IMAGE_FIELDS}
        data["meta"] = loads(row["meta_json"], {}) if "meta_json" in keys else {}
        data["record"] = loads(row["record_json"], {}) if "record_json" in keys else {}
        data["model_version_ids"] = loads(row["model_version_ids"], []) if "model_version_ids" in keys else []
        return cls(**data)


_IMAGE_FIELDS = {f.name for f in fields(ImageRow)} - {"meta", "record", "model_version_ids"}


@dataclass(frozen=True)
class SourceRow(FieldAccess):
    image_id: int
    target_type: str
    target_value: str
    path: str | None
    linked: bool
    found_at: str
    model_id: int | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SourceRow:
        return cls(
            image_id=row["image_id"],
            target_type=row["target_type"],
            target_value=row["target_value"],
            path=row["path"],
            linked=bool(row["linked"]),
            found_at=row["found_at"],
            model_id=row["model_id"],
        )


@dataclass(frozen=True)
class ConversionRow(FieldAccess):
    image_id: int
    webp_path: str
    quality: int | None
    lossless: bool
    src_phash: str | None
    webp_phash: str | None
    distance: int | None
    src_bytes: int | None
    webp_bytes: int | None
    original_removed: bool
    converted_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ConversionRow:
        data = dict(row)
        data["lossless"] = bool(data["lossless"])
        data["original_removed"] = bool(data["original_removed"])
        return cls(**data)


@dataclass(frozen=True)
class JobRow(FieldAccess):
    id: str
    kind: str  # download | tags | convert | update
    params: dict[str, Any]
    state: str  # queued | running | paused | stopped | done | failed | interrupted
    progress: dict[str, Any] | None
    summary: dict[str, Any] | None
    owner: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> JobRow:
        return cls(
            id=row["id"],
            kind=row["kind"],
            params=loads(row["params_json"], {}),
            state=row["state"],
            progress=loads(row["progress_json"]),
            summary=loads(row["summary_json"]),
            owner=row["owner"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class SavedQuery(FieldAccess):
    id: int
    mode: int  # 1 username, 2 model, 3 tag, 4 model version
    identifier: str
    options: dict[str, Any]
    paused: bool
    created_at: str
    last_run_at: str | None
    last_result: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SavedQuery:
        return cls(
            id=row["id"],
            mode=row["mode"],
            identifier=row["identifier"],
            options=loads(row["options_json"], {}),
            paused=bool(row["paused"]),
            created_at=row["created_at"],
            last_run_at=row["last_run_at"],
            last_result=loads(row["last_result_json"]),
        )
