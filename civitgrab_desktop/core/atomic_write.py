"""Writing a small file whole or not at all: a temp file in the same folder, fsynced, renamed over
the target, with the mode a plain open() would give.

It lives outside core's subpackages because the settings (core/config.py) and the sidecars
(core/organize/sidecars.py) both write this way, and core/organize must not depend on
core/config, which asks core/civitai for the default site. It imports nothing of ours.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from pathlib import Path

# The temp file: hidden, `.<name>.<unique>.tmp` (what stale-temp sweeps look for), created with
# O_EXCL and never through a symlink. Mode 0o666 lets the umask apply, as a plain open() would.
_TEMP_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_token = secrets.token_hex(3)
_counter = itertools.count()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over `path`. Plain system
    calls (no buffered file object, no chmod): a download writes two sidecars per image."""
    path = Path(path)
    for attempt in itertools.count():
        tmp = path.with_name(f".{path.name}.{os.getpid():x}{_token}{next(_counter):x}.tmp")
        try:
            fd = os.open(tmp, _TEMP_FLAGS, 0o666)
            break
        except FileExistsError:  # left by a killed process that had our pid: take the next name
            if attempt >= 100:
                raise
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_umask() -> int:
    # Read once at import: os.umask() is process-wide and racy once worker threads exist.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
