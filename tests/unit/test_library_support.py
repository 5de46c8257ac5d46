"""Helpers shared by the library tests (no tests here)."""

from __future__ import annotations

from pathlib import Path

from civitgrab_desktop.core.civitai.records import parse_image
from civitgrab_desktop.core.library.store import LibraryStore
from civitgrab_desktop.core.model import ImageRecord, TagVote


def api_item(image_id: int, **overrides) -> dict:
    """An /api/v1/images item shaped like the service's."""
    item = {
        "id": image_id,
        "url": f"https://image.civitai.com/xG1nkqKTMzGDvpLrqFT7WA/{image_id}/width=832/{image_id}.jpeg",
        "type": "image",
        "width": 832,
        "height": 1216,
        "nsfwLevel": "None",
        "browsingLevel": 1,
        "username": "alice",
        "postId": 9000 + image_id,
        "createdAt": "2025-05-01T10:00:00.000Z",
        "baseModel": "SDXL 1.0",
        "modelVersionIds": [128078],
        "stats": {"likeCount": 3, "heartCount": 2},
        "meta": {
            "prompt": f"a cat number {image_id}",
            "Model": "juggernautXL",
            "civitaiResources": [{"type": "checkpoint", "modelVersionId": 128078, "modelVersionName": "v9"}],
        },
    }
    item.update(overrides)
    return item


def record(image_id: int, **overrides) -> ImageRecord:
    return parse_image(api_item(image_id, **overrides))


def tag(tag_id: int, name: str, score: int = 10, **kw) -> TagVote:
    return TagVote(id=tag_id, name=name, type=kw.pop("type", "Label"), score=score, **kw)


def library_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "library.sqlite3"


def downloaded_store(path: Path, ids, *, owner: str = "test:1:t") -> LibraryStore:
    """A store with `ids` listed and downloaded (fake files are not needed by the library)."""
    from civitgrab_desktop.core.library.rows import Source

    store = LibraryStore(path)
    store.upsert_listed([record(i) for i in ids], Source("username", "alice"))
    for i in ids:
        assert store.claim_download(i, owner)
        store.mark_downloaded(i, owner, f"/lib/{i}.png", "image/png", 1000 + i, f"{i:064x}", "original")
    return store
