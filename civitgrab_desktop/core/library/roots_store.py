"""The roots table: the folders the user chose (the rule itself is core/roots.py)."""

from __future__ import annotations

import os

from civitgrab_desktop.core.library.clock import utc_now_iso
from civitgrab_desktop.core.library.store_base import StoreBase
from civitgrab_desktop.core.roots import Roots, usable_root

ROOT_KINDS = ("download", "convert", "classic", "user")
# What a newly trusted root makes possible again: images the converter set aside as read-only.
READ_ONLY_SKIP = "read-only:"


class RootOps(StoreBase):
    def add_root(self, folder: str | os.PathLike, kind: str, *, must_exist: bool = False) -> str:
        """Remember `folder` as a root. A folder the user trusts by name (`classic`, `user`) must
        not be a drive's top or the home folder (UnusableRootError); a job's own output folder
        is taken as chosen. Images the converter skipped as read-only under it become
        convertible again."""
        if kind not in ROOT_KINDS:
            raise ValueError(f"root kind must be one of {', '.join(ROOT_KINDS)}, not {kind!r}")
        if kind in ("classic", "user"):
            path = str(usable_root(folder, must_exist=must_exist))
        else:
            path = os.path.abspath(os.path.expanduser(os.fspath(folder)))

        def work(c) -> None:
            c.execute("INSERT OR IGNORE INTO roots (path, kind, added_at) VALUES (?, ?, ?)", (path, kind, utc_now_iso()))
            roots = Roots((path,))
            rows = c.execute(
                "SELECT id, path FROM images WHERE cv_state = 'skipped' AND cv_error LIKE ? || '%'", (READ_ONLY_SKIP,)
            ).fetchall()
            for image_id, image_path in rows:
                if image_path and roots.contains(image_path):
                    c.execute("UPDATE images SET cv_state = 'never', cv_error = NULL WHERE id = ?", (image_id,))

        self.run_write(work)
        return path

    def remove_root(self, folder: str | os.PathLike) -> bool:
        path = os.path.abspath(os.path.expanduser(os.fspath(folder)))
        return self.run_write(lambda c: c.execute("DELETE FROM roots WHERE path = ?", (path,)).rowcount) > 0

    def list_roots(self) -> list[tuple[str, str]]:
        """(path, kind) of every root, in the order they were added."""
        return [(row[0], row[1]) for row in self._all("SELECT path, kind FROM roots ORDER BY added_at, path")]

    def roots(self) -> Roots:
        return Roots.of(path for path, _kind in self.list_roots())
