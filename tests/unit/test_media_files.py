from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import stat

import pytest

from civitgrab_desktop.core.media import files
from civitgrab_desktop.core.media.files import (
    fsync_dir,
    link_or_copy,
    parse_iso_datetime,
    set_mtime,
    sha256_file,
)


def test_sha256_file(tmp_path):
    path = tmp_path / "a"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_hardlink_then_exists(tmp_path):
    src, dst = tmp_path / "a.png", tmp_path / "sub" / "dir" / "a.png"
    src.write_bytes(b"image bytes")
    assert link_or_copy(src, dst) == "hardlink"
    assert os.path.samefile(src, dst)
    assert link_or_copy(src, dst) == "exists"


def test_same_content_elsewhere_counts_as_existing(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"same")
    dst.write_bytes(b"same")
    assert link_or_copy(src, dst) == "exists"


def test_different_file_at_destination_is_never_overwritten(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        link_or_copy(src, dst)
    assert dst.read_bytes() == b"old"
    with pytest.raises(FileNotFoundError):
        link_or_copy(tmp_path / "missing", tmp_path / "c")


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP])
def test_copy_when_a_link_is_impossible(tmp_path, monkeypatch, code):
    def no_link(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "link", no_link)
    src, dst = tmp_path / "a.png", tmp_path / "out" / "a.png"
    src.write_bytes(b"x" * 5000)
    os.utime(src, (1_600_000_000, 1_600_000_000))
    assert link_or_copy(src, dst) == "copy"
    assert dst.read_bytes() == src.read_bytes() and not os.path.samefile(src, dst)
    assert dst.stat().st_mtime == 1_600_000_000
    assert sorted(p.name for p in dst.parent.iterdir()) == ["a.png"]  # no temp left
    assert link_or_copy(src, dst) == "exists"


@pytest.mark.skipif(os.name == "nt", reason="Windows cannot open folders: fsync_dir is a no-op there")
def test_fsync_dir_syncs_the_folder_and_is_harmless(tmp_path, monkeypatch):
    """The folder itself is fsynced (a rename in it becomes durable), through a descriptor that is
    closed again; a missing folder, or a file system that refuses fsync, raises nothing."""
    real_fsync = os.fsync
    synced: list[os.stat_result] = []
    refuse = False

    def fsync(fd: int) -> None:  # the real os.fsync, watched
        synced.append(os.fstat(fd))
        if refuse:
            raise OSError(errno.EINVAL, "fsync not supported")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    open_fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    fsync_dir(tmp_path)
    assert len(synced) == 1 and stat.S_ISDIR(synced[0].st_mode)
    assert synced[0].st_ino == tmp_path.stat().st_ino
    fsync_dir(tmp_path / "missing")
    assert len(synced) == 1
    refuse = True
    fsync_dir(tmp_path)  # refused: nothing more to do, and no error
    assert len(synced) == 2
    if open_fds is not None:
        assert len(os.listdir("/proc/self/fd")) == open_fds  # no descriptor left open


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05T07:08:09.123Z", dt.datetime(2024, 3, 5, 7, 8, 9, 123000, tzinfo=dt.UTC)),
        ("2024-03-05T09:08:09+02:00", dt.datetime(2024, 3, 5, 7, 8, 9, tzinfo=dt.UTC)),
        ("2024-03-05T07:08:09", dt.datetime(2024, 3, 5, 7, 8, 9, tzinfo=dt.UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_iso_datetime(text, expected):
    assert parse_iso_datetime(text) == expected


def test_set_mtime(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"x")
    stamp = set_mtime(path, "2024-03-05T07:08:09Z")
    assert stamp == dt.datetime(2024, 3, 5, 7, 8, 9, tzinfo=dt.UTC).timestamp()
    assert path.stat().st_mtime == stamp
    before = path.stat().st_mtime
    assert set_mtime(path, "not a date") is None
    assert path.stat().st_mtime == before


@pytest.mark.skipif(os.name == "nt", reason="Windows cannot open folders: fsync_dir is a no-op there")
def test_concurrent_folder_syncs_share_one_that_started_after_them(tmp_path, monkeypatch):
    """Threads placing files in one folder while its sync runs wait for the next sync, and one
    sync serves them all; every caller returns only after a sync that began after its call."""
    import threading
    import time

    real_fsync = os.fsync
    started: list[float] = []
    first_running = threading.Event()

    def slow_fsync(fd: int) -> None:
        started.append(time.monotonic())
        first_running.set()
        time.sleep(0.3)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    first = threading.Thread(target=fsync_dir, args=(tmp_path,))
    first.start()
    assert first_running.wait(5)
    called, returned = {}, {}

    def later(n: int) -> None:
        called[n] = time.monotonic()
        fsync_dir(tmp_path)
        returned[n] = time.monotonic()

    others = [threading.Thread(target=later, args=(n,)) for n in range(5)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(10)
    assert len(started) == 2  # the one running, then one for the five that came during it
    for n in range(5):
        assert called[n] < started[1] < returned[n]
