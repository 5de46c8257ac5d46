"""The folders the user chose, and the one check every writer and deleter calls before it acts.

civitgrab changes files (writes, replaces, links into, deletes) only under a root: a download
folder, a convert destination, or a classic folder the user migrated and confirmed. A path that
came from anywhere else (an imported classic JSON/SQLite, the library, a sidecar) is read-only
unless it lies under a root. The check runs at the moment of use, on the path as the file system
sees it then: `..` and every symlink (the folders on the way and the file itself) are resolved,
so a link planted after an import cannot lead a write out of the roots.

A second, narrower rule lives here too: `ensure_inside(folder, path)`, "this path stays inside
this one folder" (a download's output folder, the root of a safe_join), used by core/organize when
it builds a path and by the download job when it places a file.

This module imports nothing of ours, so every part of core/ may use it (core/organize,
core/media and core/library must not import each other); the library stores the roots
(core/library/roots_store.py), the jobs and the GUI pass them here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class OutsideRootsError(ValueError):
    """A path the app was about to change lies outside every folder the user chose."""


class UnusableRootError(ValueError):
    """A folder cannot be a root (a file system's top, the home folder itself, not a folder)."""


class UnsafePathError(ValueError):
    """A path would end up outside the folder it must stay in."""


def ensure_inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Return `path` if it is `root` or lies under it once symlinks and `..` are resolved (the path
    need not exist yet); raise UnsafePathError otherwise."""
    path = Path(path)
    real_root = Path(root).resolve()
    real_path = path.resolve()
    if real_path != real_root and real_root not in real_path.parents:
        raise UnsafePathError(f"{path} resolves to {real_path}, outside {real_root}")
    return path


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path)))).resolve()


def too_broad(folder: str | os.PathLike) -> str | None:
    """Why `folder` is too broad to be a root (None when it is fine): trusting a drive or the
    whole home folder would make every file there changeable."""
    real = _resolved(folder)
    if real == Path(real.anchor):
        return f"{real} is the top of a drive"
    try:
        home = Path.home().resolve()
    except (OSError, RuntimeError):
        home = None
    if home is not None and real == home:
        return f"{real} is your home folder itself; choose a folder inside it"
    return None


def usable_root(folder: str | os.PathLike, *, must_exist: bool = True) -> Path:
    """The absolute form of `folder` to store as a root; raises UnusableRootError."""
    problem = too_broad(folder)
    if problem:
        raise UnusableRootError(problem)
    absolute = Path(os.path.abspath(os.path.expanduser(os.fspath(folder))))
    if must_exist and not absolute.is_dir():
        raise UnusableRootError(f"{absolute} is not a folder")
    return absolute


@dataclass(frozen=True)
class Roots:
    """A set of root folders (stored as given; resolved again at every check). Picklable, so
    the convert job's worker processes get the same rule."""

    folders: tuple[str, ...] = ()

    @classmethod
    def of(cls, folders: Iterable[str | os.PathLike | None]) -> Roots:
        kept: list[str] = []
        for folder in folders:
            if not folder:
                continue
            text = os.path.abspath(os.path.expanduser(os.fspath(folder)))
            if text not in kept:
                kept.append(text)
        return cls(tuple(kept))

    def with_folder(self, folder: str | os.PathLike | None) -> Roots:
        return Roots.of([*self.folders, folder])

    def _real_roots(self) -> list[Path]:
        real = []
        for folder in self.folders:
            try:
                real.append(_resolved(folder))
            except (OSError, RuntimeError):
                continue
        return real

    def root_of(self, path: str | os.PathLike) -> Path | None:
        """The root `path` lies under once resolved (None: outside every root). The path need
        not exist yet; a root itself is not "under" a root (it is never written over)."""
        try:
            real = _resolved(path)
        except (OSError, RuntimeError):  # a symlink loop
            return None
        for root in self._real_roots():
            if real != root and real.is_relative_to(root):
                return root
        return None

    def covers(self, folder: str | os.PathLike) -> bool:
        """Is `folder` a root or inside one (so files in it may be changed)?"""
        try:
            real = _resolved(folder)
        except (OSError, RuntimeError):
            return False
        return any(real == root or real.is_relative_to(root) for root in self._real_roots())

    def contains(self, path: str | os.PathLike | None) -> bool:
        return bool(path) and self.root_of(path) is not None

    def check(self, path: str | os.PathLike, action: str = "change") -> Path:
        """Return `path` when it may be changed (it and, for a symlink, what it points to lie
        under a root); raise OutsideRootsError otherwise. Call it right before the write,
        link, move or delete it guards."""
        path = Path(path)
        if self.root_of(path) is None:
            raise OutsideRootsError(
                f"refusing to {action} {path}: it is outside the folders you chose "
                "(download folders, convert destinations, trusted classic folders)"
            )
        # The folder holding the entry, resolved, must be inside too: deleting or replacing a
        # symlink acts on the link's own folder, not on its target.
        try:
            holder = _resolved(path.parent) / path.name
        except (OSError, RuntimeError):
            holder = None
        if holder is None or self.root_of(holder) is None:
            raise OutsideRootsError(f"refusing to {action} {path}: its folder leads outside the folders you chose")
        return path
