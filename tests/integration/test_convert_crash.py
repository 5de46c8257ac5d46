"""civitgrab-cli convert under SIGKILL and with two processes on one library (600 images of the
replica's `bigcap` user, downloaded with the real CLI)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from civitgrab_desktop.core.library.store import LibraryStore

pytestmark = pytest.mark.slow

TOTAL = 600
# bigcap's 64 px noisy JPEGs sit near pHash's noise floor; the threshold is not what these test.
LOOSE = ("--phash-threshold", "12")


def download_bigcap(workspace) -> None:
    run = workspace.cli("--mode", "1", "--username", "bigcap", "--no-save")
    assert run.returncode == 0, run.output


def start_convert(workspace, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "civitgrab_desktop.cli", "convert", *args],
        cwd=workspace.root, env=workspace.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def done_count(workspace) -> int:
    with LibraryStore(workspace.data_dir / "library.sqlite3", read_only=True) as store:
        return store.count_images(cv_state="done")


def kill_after(workspace, proc: subprocess.Popen, converted: int) -> None:
    deadline = time.monotonic() + 120
    while done_count(workspace) < converted:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the conversion did not start"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    wait_until_gone(workspace.data_dir)


def wait_until_gone(data_dir: Path, timeout: float = 15) -> None:
    """Worker processes notice their job died and exit; wait for every one that carries our data dir."""
    marker = f"CIVITGRAB_DATA_DIR={data_dir}".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") and int(pid) != os.getpid():
                    alive.append(pid)
            except OSError:
                continue
        if not alive:
            return
        time.sleep(0.1)
    raise AssertionError(f"worker processes still running: {alive}")


def finished(workspace) -> dict[int, tuple[int, str]]:
    """{image id: (inode of its WebP, converted_at)} for every converted image."""
    out = {}
    with LibraryStore(workspace.data_dir / "library.sqlite3", read_only=True) as store:
        for row in store.list_images(cv_state="done", limit=None):
            conv = store.conversion_of(row.id)
            out[row.id] = (os.stat(conv.webp_path).st_ino, conv.converted_at)
    return out


def assert_final_webps_complete(folder: Path) -> None:
    for path in folder.rglob("*.webp"):
        with Image.open(path) as im:
            im.load()  # a half-written file under a final name would fail here


def converted_in(output: str) -> int:
    return int(re.search(r"^Converted: (\d+)", output, re.MULTILINE).group(1))


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_sigkill_in_place_then_rerun_finishes_without_redoing_anything(workspace, fake_civitai):
    download_bigcap(workspace)
    proc = start_convert(workspace, "--in-place", "--workers", "2", "--batch-size", "50", *LOOSE)
    kill_after(workspace, proc, 60)
    before = finished(workspace)
    assert 60 <= len(before) < TOTAL, "the kill must land in the middle of the run"
    assert_final_webps_complete(workspace.downloads)

    run = workspace.cli("convert", "--in-place", *LOOSE)
    assert run.returncode == 0, run.output
    assert converted_in(run.stdout) == TOTAL - len(before)  # nothing converted twice
    after = finished(workspace)
    assert len(after) == TOTAL
    assert {i: after[i] for i in before} == before  # the finished ones were not touched
    assert_final_webps_complete(workspace.downloads)
    assert not [p for p in workspace.downloads.rglob("*") if p.suffix == ".jpeg" or p.name.endswith(".tmp")]
    with LibraryStore(workspace.data_dir / "library.sqlite3", read_only=True) as store:
        for row in store.list_images(username="bigcap", limit=None):
            assert row.path.endswith(".webp") and Path(row.path).exists()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_sigkill_then_resume_continues_the_same_job(workspace, fake_civitai):
    download_bigcap(workspace)
    proc = start_convert(workspace, "--dest", "out", "--workers", "2", "--batch-size", "50", *LOOSE)
    kill_after(workspace, proc, 60)
    before = finished(workspace)
    assert 60 <= len(before) < TOTAL
    out = workspace.root / "out"
    assert_final_webps_complete(out)

    jobs = workspace.cli("jobs")
    assert "convert" in jobs.stdout and "interrupted" in jobs.stdout, jobs.output
    run = workspace.cli("resume")
    assert run.returncode == 0, run.output
    assert "Resuming convert job" in run.stdout
    assert converted_in(run.stdout) == TOTAL - len(before)
    after = finished(workspace)
    assert len(after) == TOTAL and {i: after[i] for i in before} == before
    assert_final_webps_complete(out)
    assert not [p for p in out.rglob("*.tmp")]
    assert len(list(out.rglob("*.webp"))) == TOTAL


def test_two_processes_never_convert_the_same_image(workspace, fake_civitai):
    download_bigcap(workspace)
    procs = [start_convert(workspace, "--dest", "out", "--workers", "1", "--batch-size", "10", *LOOSE)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stdout + stderr
    counts = [converted_in(stdout) for stdout, _ in outputs]
    assert sum(counts) == TOTAL, counts  # a doubly converted image would push the sum past 600
    assert all(counts), f"both processes should have worked: {counts}"
    assert done_count(workspace) == TOTAL
    assert len(list((workspace.root / "out").rglob("*.webp"))) == TOTAL
