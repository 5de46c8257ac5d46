"""Removing images from the library (the gallery's "Delete from disk and library").

The library forgets the image (its row, tag votes, sources and conversion) in one transaction and
hands back every file path it pointed to; deleting those files is the caller's decision (the app
deletes only files inside folders it knows, see `DeletedImage.files`). Tag names stay: they are a
shared vocabulary. An image a live job is working on (download, tags or convert claim) is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from civitgrab_desktop.core.library.db import LibraryError
from civitgrab_desktop.core.library.store_base import CLAIM_KINDS, StoreBase


class ImageBusyError(LibraryError):
    """A job that may still be running holds a claim on the image."""

    def __init__(self, image_id: int, kind: str):
        what = {"dl": "downloading", "tag": "fetching the tags of", "cv": "converting"}[kind]
        super().__init__(f"A running job is {what} image {image_id}; stop it first or try again later.")
        self.image_id = image_id
        self.kind = kind


@dataclass(frozen=True)
class DeletedImage:
    id: int
    path: str | None  # the primary file (images.path)
    webp_path: str | None  # the converter's WebP
    source_paths: tuple[str, ...] = ()  # per-query copies (hard links) the library knew of
    files: tuple[str, ...] = field(default=())  # all of the above, deduplicated, in that order


class DeletingOps(StoreBase):
    def delete_images(self, ids: Iterable[int], *, force: bool = False) -> list[DeletedImage]:
        """Remove the images `ids` (unknown ids are ignored) with their tag votes, sources and
        conversion, in one transaction; returns what each pointed to on disk. Raises
        ImageBusyError (and removes nothing) when a job that may still be running holds a claim on
        one of them, unless `force`."""
        wanted = list(dict.fromkeys(int(i) for i in ids))

        def work(c: sqlite3.Connection) -> list[DeletedImage]:
            deleted: list[DeletedImage] = []
            for image_id in wanted:
                row = c.execute(
                    "SELECT id, path, dl_owner, dl_claimed_at, tag_owner, tag_claimed_at, cv_owner, cv_claimed_at"
                    " FROM images WHERE id = ?",
                    (image_id,),
                ).fetchone()
                if row is None:
                    continue
                if not force:
                    for kind in CLAIM_KINDS:
                        if self.owner_may_be_working(row[f"{kind}_owner"], row[f"{kind}_claimed_at"], kind):
                            raise ImageBusyError(image_id, kind)
                conversion = c.execute("SELECT webp_path FROM conversions WHERE image_id = ?", (image_id,)).fetchone()
                sources = [
                    r[0]
                    for r in c.execute(
                        "SELECT path FROM sources WHERE image_id = ? AND path IS NOT NULL AND linked = 1"
                        " ORDER BY target_type, target_value",
                        (image_id,),
                    )
                ]
                webp = conversion[0] if conversion else None
                files = tuple(dict.fromkeys(p for p in (row["path"], webp, *sources) if p))
                c.execute("DELETE FROM image_tags WHERE image_id = ?", (image_id,))
                c.execute("DELETE FROM sources WHERE image_id = ?", (image_id,))
                c.execute("DELETE FROM conversions WHERE image_id = ?", (image_id,))
                c.execute("DELETE FROM images WHERE id = ?", (image_id,))
                deleted.append(DeletedImage(image_id, row["path"], webp, tuple(sources), files))
            return deleted

        if not wanted:
            return []
        return self.run_write(work)
