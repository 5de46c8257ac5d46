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

import errno
import functools
import os
import stat
import sys
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
    real_root = _real(root)
    real_path = _real(path)
    if real_path != real_root and not real_path.is_relative_to(real_root):
        raise UnsafePathError(f"{path} resolves to {real_path}, outside {real_root}")
    return path


def _resolved(path: str | os.PathLike) -> Path:
    return _real(os.path.expanduser(os.fspath(path)))


# Where the kernel names an open file: one open, one readlink and one close resolve a whole path
# (every symlink and `..`, as a write would follow them), where os.path.realpath makes a system
# call per component, each a chance for the threads of a download to trade the GIL.
_PROC_FD = "/proc/self/fd" if sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd") else None
_O_PATH = getattr(os, "O_PATH", 0)


def _real(path: str | os.PathLike) -> Path:
    """`path` made absolute with every symlink and `..` resolved, as Path.resolve() does (the
    path need not exist). Raises RuntimeError for a symlink loop, like Path.resolve()."""
    text = os.fspath(path)
    if _PROC_FD is None or not _O_PATH:
        return Path(text).resolve()
    return Path(_real_text(text if os.path.isabs(text) else os.path.join(os.getcwd(), text)))


def _real_text(text: str) -> str:
    try:
        fd = os.open(text, _O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        head, tail = os.path.split(text)
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR) or tail in ("", ".", "..") or head == text:
            return str(Path(text).resolve())
        try:
            os.lstat(text)
        except FileNotFoundError:
            return os.path.join(_real_text(head), tail)  # not there (yet): its folder decides
        except OSError:
            pass
        return str(Path(text).resolve())  # a dangling symlink, or a folder on the way that is a file
    try:
        real = os.readlink(f"{_PROC_FD}/{fd}")
    except OSError:
        real = ""
    finally:
        os.close(fd)
    if not real.startswith("/") or real.endswith(" (deleted)"):
        return str(Path(text).resolve())
    return real


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
    """A set of root folders (stored as given). Each root is resolved once, the first time this
    instance checks a path (a job holds one instance for its run); every checked path is
    resolved again at every check. A root re-pointed later makes its paths resolve outside the
    resolved root, so the change is refused, never let through. Picklable, so the convert job's
    worker processes get the same rule (each resolves the roots again)."""

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

    @functools.cached_property
    def _resolved_roots(self) -> tuple[Path, ...]:
        real = []
        for folder in self.folders:
            try:
                real.append(_resolved(folder))
            except (OSError, RuntimeError):
                continue
        return tuple(real)

    def _real_roots(self) -> tuple[Path, ...]:
        return self._resolved_roots

    def __getstate__(self) -> dict:
        return {"folders": self.folders}  # not the resolved roots: another process resolves its own

    def root_of(self, path: str | os.PathLike) -> Path | None:
        """The root `path` lies under once resolved (None: outside every root). The path need
        not exist yet; a root itself is not "under" a root (it is never written over)."""
        try:
            real = _resolved(path)
        except (OSError, RuntimeError):  # a symlink loop
            return None
        return self._root_of_real(real)

    def _root_of_real(self, real: Path) -> Path | None:
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
        # The folder holding the entry, resolved, must be inside: deleting or replacing a symlink
        # acts on the link's own folder. And so must what the entry leads to: its folder's real
        # path plus its name, or, when the entry is a symlink, the link's target resolved. One
        # resolution of the folder serves both.
        try:
            holder = real = _resolved(path.parent) / path.name
            if path.name in ("", ".", ".."):
                holder = real = _resolved(path)
            elif stat.S_ISLNK(_lstat_mode(holder)):
                real = _resolved(holder)
        except (OSError, RuntimeError):  # a symlink loop
            holder = real = None
        if real is None or self._root_of_real(real) is None:
            raise OutsideRootsError(
                f"refusing to {action} {path}: it is outside the folders you chose "
                "(download folders, convert destinations, trusted classic folders)"
            )
        if self._root_of_real(holder) is None:
            raise OutsideRootsError(f"refusing to {action} {path}: its folder leads outside the folders you chose")
        return path


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return 0
