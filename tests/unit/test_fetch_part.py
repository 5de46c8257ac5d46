"""fetch_to_part against the fake CDN over HTTP: each attempt owns its temporary file (unique
name, O_EXCL, never through a symlink), and every rejected download leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from civitgrab_desktop.core.civitai.client import (
    BadPayloadError,
    CivitaiClient,
    ClientOptions,
    TransportError,
)
from civitgrab_desktop.core.media.sniff import JPEG, PNG, WEBP
from civitgrab_desktop.jobs.fetch import (
    PART_SUFFIX,
    STALE_PART_AGE_S,
    create_part,
    fetch_to_part,
    part_name,
    sweep_stale_parts,
)
from tests.fake_civitai import FaultRule
from tests.fake_civitai.server import ACCOUNT

KINDS = {"png": PNG, "jpeg": JPEG, "webp": WEBP}


def original_url(fake, image) -> str:
    return f"{fake.base_url}/{ACCOUNT}/{image.uuid}/original=true/{image.uuid}.jpeg"


def an_image(fake, fmt: str):
    return next(i for i in fake.dataset.images.values() if i.media_format == fmt and i.nsfw_level != 32)


def client_for(fake, retries: int = 0) -> CivitaiClient:
    return CivitaiClient(fake.base_url, options=ClientOptions(concurrency=4, retries=retries, backoff_max=0.05))


def parts_in(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{PART_SUFFIX}")) if folder.exists() else []


def test_part_names_differ_per_attempt_and_name_the_process():
    names = {part_name("7001") for _ in range(200)}
    assert len(names) == 200
    assert all(n.startswith("7001.") and f"-{os.getpid()}-" in n and n.endswith(PART_SUFFIX) for n in names)


def test_sweep_removes_only_the_parts_no_live_transfer_writes(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    mine = part_name("7001")
    dead = part_name("7002").replace(f"-{os.getpid()}-", f"-{gone.pid}-")
    old_other_host = "7003.0badf00d-1-0123456789ab.part"
    fresh_other_host = "7004.0badf00d-1-0123456789ab.part"
    old_style = "7005.part"
    for name in (mine, dead, old_other_host, fresh_other_host, old_style, "7006.png", "7006.json"):
        (tmp_path / name).write_bytes(b"x")
    hour_ago = time.time() - 2 * STALE_PART_AGE_S
    for name in (old_other_host, old_style):
        os.utime(tmp_path / name, (hour_ago, hour_ago))
    left = sorted([mine, fresh_other_host, "7006.png", "7006.json"])
    assert sorted(sweep_stale_parts(tmp_path)) == left
    assert sorted(p.name for p in tmp_path.iterdir()) == left
    assert sweep_stale_parts(tmp_path / "missing") == set()


def test_a_part_is_never_opened_through_a_symlink_or_over_a_file(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "7001.123-abc.part"
    link.symlink_to(victim)
    with pytest.raises(OSError):
        create_part(link)
    assert victim.read_text() == "keep me"
    dangling = tmp_path / "7002.123-abc.part"
    dangling.symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(OSError):
        create_part(dangling)
    assert not (tmp_path / "created-through-the-link").exists()
    existing = tmp_path / "7003.123-abc.part"
    existing.write_bytes(b"another attempt's bytes")
    with pytest.raises(FileExistsError):
        create_part(existing)
    assert existing.read_bytes() == b"another attempt's bytes"


async def test_two_transfers_of_one_image_never_share_a_part(tmp_path, fake_civitai):
    fake_civitai.set_latency(0.05)
    image = an_image(fake_civitai, "png")
    expected, _ = fake_civitai.dataset.media(image.id)
    async with client_for(fake_civitai) as client:
        first, second = await asyncio.gather(
            fetch_to_part(client, original_url(fake_civitai, image), tmp_path, str(image.id)),
            fetch_to_part(client, original_url(fake_civitai, image), tmp_path, str(image.id)),
        )
    assert first.part_path != second.part_path
    assert first.part_path.read_bytes() == expected == second.part_path.read_bytes()
    assert (first.width, first.height) == (image.width, image.height)


async def test_a_retried_transfer_writes_a_new_part_and_leaves_no_old_one(tmp_path, fake_civitai):
    image = an_image(fake_civitai, "jpeg")
    fake_civitai.add_fault(FaultRule("reset", where="cdn", count=1))
    async with client_for(fake_civitai, retries=2) as client:
        fetched = await fetch_to_part(client, original_url(fake_civitai, image), tmp_path, str(image.id))
    assert parts_in(tmp_path) == [fetched.part_path]
    assert fetched.part_path.read_bytes() == fake_civitai.dataset.media(image.id)[0]


@pytest.mark.parametrize(
    ("fault", "fmt", "error", "reason"),
    [
        ("html200", "png", BadPayloadError, "HTML page"),
        ("truncate", "png", TransportError, "transfer interrupted"),  # shorter than its Content-Length
        ("corrupt", "png", BadPayloadError, "CRC mismatch"),
        ("corrupt", "jpeg", BadPayloadError, "broken"),
    ],
)
async def test_rejected_downloads_leave_nothing_behind(tmp_path, fake_civitai, fault, fmt, error, reason):
    image = an_image(fake_civitai, fmt)
    fake_civitai.add_fault(FaultRule(fault, where="cdn"))
    async with client_for(fake_civitai, retries=1) as client:
        with pytest.raises(error) as err:
            await fetch_to_part(client, original_url(fake_civitai, image), tmp_path, str(image.id))
    assert reason in str(err.value)
    assert parts_in(tmp_path) == []
    assert sum(r.fired for r in fake_civitai.faults) == 2  # the first attempt and its retry


async def test_the_then_step_runs_once_on_the_finished_part_and_hands_back_its_error(tmp_path, fake_civitai):
    """The caller's placing step runs in the worker thread that finished the file (not on the
    event loop), once, on the complete verified part; what it raises is the caller's, never a
    failed transfer to retry."""
    import hashlib
    import threading

    image = an_image(fake_civitai, "png")
    expected, _ = fake_civitai.dataset.media(image.id)
    calls = []

    def place(part):
        calls.append((threading.get_ident(), part.part_path.read_bytes(), part.sha256))
        raise PermissionError("refused by the test")

    async with client_for(fake_civitai, retries=2) as client:
        fetched = await fetch_to_part(client, original_url(fake_civitai, image), tmp_path, str(image.id), then=place)
    assert len(calls) == 1
    thread, seen, digest = calls[0]
    assert thread != threading.get_ident()
    assert seen == expected and digest == hashlib.sha256(expected).hexdigest()
    with pytest.raises(PermissionError):
        fetched.then_result()


def test_a_discarded_part_writer_never_writes_or_creates_again(tmp_path):
    """A cancelled transfer discards its part from another thread; a write still queued behind
    it must not recreate the file (nor write into a reused descriptor)."""
    from civitgrab_desktop.jobs.fetch import _PartWriter

    writer = _PartWriter(tmp_path / part_name("9"))
    writer.start(JPEG)
    writer.write([b"\xff\xd8\xff\xe0"])
    assert parts_in(tmp_path) == [writer.path]
    writer.discard()
    with pytest.raises(OSError):
        writer.write([b"\x00\x10JFIF"])
    assert parts_in(tmp_path) == []
