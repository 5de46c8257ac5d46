"""Crashes: SIGKILL the CLI at random moments (seeded), then run again.

After every kill: the library opens and passes SQLite's integrity check, every final-named file is
complete (and byte-identical to the original), and every image recorded as downloaded has its
file. Across the series: an image whose final file existed when a process was killed is never
fetched from the CDN again, a WebP recorded as converted is never converted again, tags recorded
as fetched are never fetched again, and at the end every job completes (`resume` until nothing is
left) with everything on disk.

The phases are stretched with the fake's "slow" responses (a request reaches the server, the
answer comes `delay` seconds later) and the kill lands at a random moment inside that window:
  listing   - while a listing page is on its way (the first, or a later one);
  transfer  - while media requests are in flight;
  placing   - no delay at all: the process spends its time verifying, fsyncing, renaming files,
              writing sidecars and recording them in the library (the DB writes);
  tags      - while tag requests are in flight and results are being stored;
  convert   - while images are being encoded, verified, renamed and recorded.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.fake_civitai import FaultRule
from tests.reliability.helpers import (
    assert_clean_output,
    cdn_fetches,
    cdn_uuid,
    check_files,
    check_library,
    media_files,
    tag_fetches,
)
from tests.reliability.report import REPORT

pytestmark = pytest.mark.reliability

SEED = 20261125
USERS = ("bigcap", "bob_art", "alice")  # 636 items: JPEG, PNG, WebP, MP4, WebM


class Arrivals:
    """Requests as they reach the fake (before it answers), for kill triggers."""

    def __init__(self, fake):
        self.events: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        original = fake._pick_fault

        def pick(kind: str, path: str):
            with self._lock:
                self.events.append((time.monotonic(), kind, path))
            return original(kind, path)

        fake._pick_fault = pick

    def count(self, kind: str, path_prefix: str = "") -> int:
        with self._lock:
            return sum(1 for _, k, p in self.events if k == kind and p.startswith(path_prefix))


def _expected_ids(fake) -> set[int]:
    ids: set[int] = set()
    for user in USERS:
        ids |= {i.id for i in fake.dataset.images_for_user(user)}
    return ids


def _kill_when(proc, arrivals: Arrivals, kind: str, prefix: str, nth: int, delay: float, timeout: float = 60) -> bool:
    """SIGKILL `delay` seconds after the `nth` request of `kind` (counted from now) arrives."""
    start = arrivals.count(kind, prefix)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.running():
        if arrivals.count(kind, prefix) - start >= nth:
            break
        time.sleep(0.005)
    time.sleep(delay)
    return proc.kill()


def test_sigkill_downloads_at_random_moments(ws, fake):
    rng = random.Random(SEED)
    arrivals = Arrivals(fake)
    dataset = fake.dataset
    args = ("--mode", "1", "--username", ",".join(USERS), "--semaphore_limit", "3")
    expected = _expected_ids(fake)
    first_seen_final: dict[int, int] = {}  # image id -> request-log length when its final file was seen
    phases = ("listing", "transfer", "placing")
    kills = 0
    plan = [phases[i % 3] for i in range(15)]
    for i, phase in enumerate(plan):
        fake.clear_faults()
        if phase == "listing":
            fake.add_fault(FaultRule("slow", where="api", delay=0.5))
            trigger = ("api", "/api/v1/images", rng.choice((1, 1, 2)), rng.uniform(0.0, 0.45))
        elif phase == "transfer":
            fake.add_fault(FaultRule("slow", where="cdn", delay=0.25))
            trigger = ("cdn", "", rng.randint(1, 40), rng.uniform(0.0, 0.2))
        else:
            trigger = ("cdn", "", rng.randint(1, 60), rng.uniform(0.0, 0.15))
        # every other run continues the last interrupted job with `resume`
        command = ("resume",) if i % 2 and kills else args
        proc = ws.popen(*command)
        killed = _kill_when(proc, arrivals, *trigger)
        run = proc.wait()
        if killed:
            kills += 1
            REPORT.kills[f"download/{phase}"] += 1
        else:
            assert_clean_output(run)
        # The state a crash leaves: the library opens and is intact; final names are complete.
        files = check_files(ws.downloads, dataset, allow_part=True)
        check_library(ws)
        mark = len(fake.request_log)
        for image_id in files:
            first_seen_final.setdefault(image_id, mark)
        if len(first_seen_final) >= len(expected):
            break
    assert kills >= 10, f"only {kills} kills landed"

    fake.clear_faults()
    final = ws.cli(*args)
    assert_clean_output(final)
    assert final.returncode == 0, final
    files = check_files(ws.downloads, dataset)
    assert set(files) == expected
    check_library(ws)
    _resume_everything(ws)

    # An image whose final file existed after a kill was never fetched again.
    log = fake.request_log
    refetched = []
    for image_id, mark in first_seen_final.items():
        uuid = dataset.image(image_id).uuid
        later = sum(1 for rec in log[mark:] if cdn_uuid(rec.path) == uuid)
        if later:
            refetched.append((image_id, later))
    REPORT.cdn_fetches += sum(cdn_fetches(fake).values())
    REPORT.refetched += len(refetched)
    assert not refetched, f"fetched again although the final file was on disk: {refetched[:10]}"


def _resume_everything(ws) -> None:
    """`resume` until nothing is left: every interrupted job completes."""
    for _ in range(40):
        run = ws.cli("resume")
        assert_clean_output(run)
        if "Nothing to resume" in run.stdout:
            break
        assert run.returncode == 0, run
    else:
        raise AssertionError("resume kept finding unfinished jobs")
    states = ws.sql("SELECT state, count(*) FROM jobs GROUP BY state")
    assert {s for s, _ in states} <= {"done"}, f"jobs left unfinished: {states}"


# -- tags and conversions ------------------------------------------------------------------------


def _has_command(name: str) -> bool:
    from civitgrab_desktop.cli import commands

    return hasattr(commands, "cmd_" + name)


@pytest.mark.skipif(not _has_command("tags"), reason="civitgrab-cli tags is not there yet")
def test_sigkill_tag_fetching_at_random_moments(ws, fake):
    rng = random.Random(SEED + 1)
    arrivals = Arrivals(fake)
    users = ("bigcap",)
    assert ws.cli("--mode", "1", "--username", ",".join(users)).returncode == 0
    ids = {i.id for i in fake.dataset.images_for_user("bigcap")}
    first_seen_done: dict[int, int] = {}
    kills = 0
    for i in range(6):
        fake.clear_faults()
        fake.add_fault(FaultRule("slow", where="trpc", delay=0.2))
        command = ("resume",) if i % 2 and kills else ("tags", "--method", "api", "--workers", "4")
        proc = ws.popen(*command)
        killed = _kill_when(proc, arrivals, "trpc", "", rng.randint(1, 60), rng.uniform(0.0, 0.2))
        run = proc.wait()
        if killed:
            kills += 1
            REPORT.kills["tags"] += 1
        else:
            assert_clean_output(run)
        check_library(ws)
        mark = len(fake.request_log)
        for (image_id,) in ws.sql("SELECT id FROM images WHERE tag_state = 'done'"):
            first_seen_done.setdefault(image_id, mark)
    assert kills >= 4
    fake.clear_faults()
    final = ws.cli("tags", "--method", "api")
    assert_clean_output(final)
    assert final.returncode == 0, final
    assert ws.sql("SELECT count(*) FROM images WHERE tag_state != 'done'") == [(0,)]
    _resume_everything(ws)
    again = [i for i, mark in first_seen_done.items() if tag_fetches(fake, since=mark)[i]]
    REPORT.redone += len(again)
    assert not again, f"tags fetched again although recorded: {again[:10]}"
    assert set(tag_fetches(fake)) == ids


@pytest.mark.skipif(not _has_command("convert"), reason="civitgrab-cli convert is not there yet")
def test_sigkill_conversions_at_random_moments(ws, fake):
    rng = random.Random(SEED + 2)
    assert ws.cli("--mode", "1", "--username", "alice,carol,dave_ai,erin").returncode == 0
    downloaded = {i for (i,) in ws.sql("SELECT id FROM images WHERE dl_state = 'done'")}
    recorded: dict[int, str] = {}  # image id -> converted_at when first seen
    kills = 0
    for i in range(6):
        command = ("resume",) if i % 2 and kills else ("convert", "--workers", "2")
        proc = ws.popen(*command)
        time.sleep(rng.uniform(0.6, 2.0))  # start-up takes ~0.4 s; conversions follow
        killed = proc.kill()
        run = proc.wait()
        if killed:
            kills += 1
            REPORT.kills["convert"] += 1
        else:
            assert_clean_output(run)
        check_library(ws)
        check_files(ws.downloads, fake.dataset, allow_part=True, allow_converted=True)
        for image_id, converted_at in ws.sql("SELECT image_id, converted_at FROM conversions"):
            if image_id in recorded:
                assert recorded[image_id] == converted_at, f"image {image_id} was converted again"
            recorded[image_id] = converted_at
    assert kills >= 3
    final = ws.cli("convert", "--workers", "2")
    assert_clean_output(final)
    assert final.returncode == 0, final
    _resume_everything(ws)
    rows = ws.sql("SELECT image_id, converted_at FROM conversions")
    for image_id, converted_at in rows:
        if image_id in recorded and recorded[image_id] != converted_at:
            REPORT.redone += 1
            raise AssertionError(f"image {image_id} was converted again")
    assert rows and {r[0] for r in rows} <= downloaded
    check_files(ws.downloads, fake.dataset, allow_converted=True)
    assert not [p for p in media_files(ws.downloads) if p.name.endswith(".tmp")]
