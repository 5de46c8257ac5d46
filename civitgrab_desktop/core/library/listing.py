"""Recording what the service lists: new images, refreshed metadata, which query found them, and
images that disappeared. Never touches download, tag or convert state."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from civitgrab_desktop.core.library.clock import utc_now_iso
from civitgrab_desktop.core.library.db import chunked
from civitgrab_desktop.core.library.rows import ImageState, Source, dumps
from civitgrab_desktop.core.library.store_base import StoreBase
from civitgrab_desktop.core.model import ImageRecord

PAGE_SIZE = 200  # one transaction per page of listed images (the API's page size)

_INSERT_IMAGE = """
INSERT INTO images (
    id, type, url, width, height, nsfw_level, username, post_id, created_at, base_model,
    model_version_ids, model_version_name, checkpoint_name, prompt, meta_json, reactions,
    record_json, first_seen_at, last_seen_at
) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(id) DO UPDATE SET
    type               = excluded.type,
    url                = excluded.url,
    width              = COALESCE(excluded.width, images.width),
    height             = COALESCE(excluded.height, images.height),
    nsfw_level         = CASE WHEN excluded.nsfw_level > 0 THEN excluded.nsfw_level ELSE images.nsfw_level END,
    username           = COALESCE(excluded.username, images.username),
    post_id            = COALESCE(excluded.post_id, images.post_id),
    created_at         = COALESCE(excluded.created_at, images.created_at),
    base_model         = COALESCE(excluded.base_model, images.base_model),
    model_version_ids  = CASE WHEN excluded.model_version_ids != '[]'
                              THEN excluded.model_version_ids ELSE images.model_version_ids END,
    -- A listing without meta (anonymous callers get none) must not erase names we already know.
    model_version_name = COALESCE(excluded.model_version_name, images.model_version_name),
    checkpoint_name    = COALESCE(excluded.checkpoint_name, images.checkpoint_name),
    prompt             = COALESCE(excluded.prompt, images.prompt),
    meta_json          = CASE WHEN excluded.meta_json != '{}' THEN excluded.meta_json ELSE images.meta_json END,
    reactions          = excluded.reactions,
    record_json        = excluded.record_json,
    last_seen_at       = excluded.last_seen_at,
    gone_at            = NULL
"""

_UPSERT_SOURCE = """
INSERT INTO sources (image_id, target_type, target_value, path, linked, found_at, model_id)
VALUES (?, ?, ?, ?, 0, ?, ?)
ON CONFLICT(image_id, target_type, target_value) DO UPDATE SET
    -- A linked file stays where it is; only a not-yet-linked plan may change.
    path     = CASE WHEN sources.linked = 1 THEN sources.path ELSE COALESCE(excluded.path, sources.path) END,
    model_id = COALESCE(excluded.model_id, sources.model_id)
"""

# A source whose planned path is the downloaded file itself is already satisfied.
_LINK_SATISFIED_SOURCES = """
UPDATE sources SET linked = 1
WHERE linked = 0 AND image_id IN (SELECT value FROM json_each(?))
  AND path = (SELECT i.path FROM images i WHERE i.id = sources.image_id AND i.dl_state = 'done')
"""

_STATE_COLUMNS = (
    "id, dl_state, path, sha256, bytes, mime, quality, dl_owner, dl_claimed_at, tag_state, cv_state"
)


def _image_params(rec: ImageRecord, now: str) -> tuple:
    return (
        rec.id,
        rec.type,
        rec.url,
        rec.width,
        rec.height,
        rec.nsfw_level or 0,
        rec.username,
        rec.post_id,
        rec.created_at,
        rec.base_model,
        json.dumps(list(rec.model_version_ids)),
        rec.model_version_name,
        rec.checkpoint_name,
        rec.prompt,
        dumps(rec.meta or {}),
        rec.reactions,
        dumps(rec.raw) if rec.raw else None,
        now,
        now,
    )


def _id_list(ids: Iterable[int]) -> str:
    return json.dumps([int(i) for i in ids])


class ListingOps(StoreBase):
    def upsert_listed(
        self, records: Sequence[ImageRecord], source: Source | None = None
    ) -> dict[int, ImageState]:
        """Insert new images (pending) or refresh the metadata of known ones, record `source`
        for each, and return every listed image's current state. One transaction per page."""
        states: dict[int, ImageState] = {}
        for page in chunked(list(records), PAGE_SIZE):
            unique = list({rec.id: rec for rec in page}.values())  # last listing of an id wins
            states.update(self.run_write(lambda c, recs=unique: self._upsert_page(c, recs, source)))
        return states

    def _upsert_page(
        self, c: sqlite3.Connection, records: list[ImageRecord], source: Source | None
    ) -> dict[int, ImageState]:
        now = utc_now_iso()
        c.executemany(_INSERT_IMAGE, [_image_params(rec, now) for rec in records])
        ids_json = _id_list(rec.id for rec in records)
        if source is not None:
            path_for = source.path_for or {}
            c.executemany(
                _UPSERT_SOURCE,
                [
                    (
                        rec.id,
                        source.target_type,
                        str(source.target_value),
                        path_for.get(rec.id),
                        now,
                        source.model_id,
                    )
                    for rec in records
                ],
            )
            c.execute(_LINK_SATISFIED_SOURCES, (ids_json,))
        rows = c.execute(
            f"SELECT {_STATE_COLUMNS} FROM images WHERE id IN (SELECT value FROM json_each(?))", (ids_json,)
        ).fetchall()
        return {row["id"]: self._state_of(row) for row in rows}

    def _state_of(self, row: sqlite3.Row) -> ImageState:
        return ImageState(
            id=row["id"],
            dl_state=row["dl_state"],
            path=row["path"],
            sha256=row["sha256"],
            bytes=row["bytes"],
            mime=row["mime"],
            quality=row["quality"],
            dl_owner=row["dl_owner"],
            dl_owner_alive=self.owner_may_be_working(row["dl_owner"], row["dl_claimed_at"], "dl"),
            tag_state=row["tag_state"],
            cv_state=row["cv_state"],
        )

    def mark_gone(self, ids: Iterable[int]) -> int:
        """The service no longer lists these images. Rows (and files) are kept."""
        now = utc_now_iso()
        return self.run_write(
            lambda c: (
                c.execute(
                    "UPDATE images SET gone_at = ? WHERE gone_at IS NULL AND id IN (SELECT value FROM json_each(?))",
                    (now, _id_list(ids)),
                ).rowcount
            )
        )
