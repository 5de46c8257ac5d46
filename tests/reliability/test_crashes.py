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

import os
import random
import threading
import time
from pathlib import Path

import pytest

from tests.fake_civitai import FaultRule
from tests.reliability.helpers import (
    assert_clean_output,
    cdn_fetches,
    cdn_uuid,
    check_conversions,
    check_files,
    check_library,
    image_id_of,
    media_files,
    tag_fetches,
    temp_files,
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


# Each conversion mode is killed at random moments: dest (copies videos), in place (originals and
# their hard links in other query folders are replaced by the WebP) and dest with moved videos.
CONVERT_SEED = int(os.environ.get("CIVITGRAB_CONVERT_SEED", SEED + 2))
CONVERT_RUNS = {
    "dest": ("convert", "--workers", "2"),
    "in-place": ("convert", "--in-place", "--workers", "2", "--batch-size", "10"),
    "move-videos": ("convert", "--move-videos", "--workers", "2", "--batch-size", "10"),
}
CONVERT_USERS = "alice,carol,dave_ai,erin,frank_gen,grace,heidi"  # JPEG, PNG, WebP; MP4 and WebM videos
CONVERT_VERSIONS = "2004,2005"  # found again by version: hard links of erin's and heidi's files


def _conversions(ws) -> int:
    return ws.sql("SELECT count(*) FROM conversions")[0][0]


def _check_after_convert(ws, dataset, *, killed: bool) -> None:
    """Nothing lost, nothing half-written under a final name, every WebP faithful to its source."""
    check_library(ws, killed_convert=dataset if killed else None)
    check_files(ws.downloads, dataset, allow_converted=True)
    check_conversions(ws, dataset)


@pytest.mark.skipif(not _has_command("convert"), reason="civitgrab-cli convert is not there yet")
@pytest.mark.parametrize("mode", list(CONVERT_RUNS))
def test_sigkill_conversions_at_random_moments(ws, fake, mode):
    rng = random.Random(f"{CONVERT_SEED}/{mode}")
    dataset = fake.dataset
    assert ws.cli("--mode", "1", "--username", CONVERT_USERS).returncode == 0
    assert ws.cli("--mode", "4", "--model_version_id", CONVERT_VERSIONS).returncode == 0
    images = {i for (i,) in ws.sql("SELECT id FROM images WHERE dl_state = 'done' AND type = 'image'")}
    videos = {i for (i,) in ws.sql("SELECT id FROM images WHERE dl_state = 'done' AND type = 'video'")}
    assert len(images) > 60 and videos
    assert ws.sql("SELECT count(*) FROM sources WHERE linked = 1")[0][0] > 0  # hard links to replace
    convert = CONVERT_RUNS[mode]
    recorded: dict[int, str] = {}  # image id -> converted_at when first seen
    kills = 0
    for i in range(16):
        if kills >= 8:
            break
        command = ("resume",) if i % 2 and kills else convert
        before = _conversions(ws)
        proc = ws.popen(*command)
        # A kill during start-up, claiming and the first encodes, or after the nth recorded result
        # (then a random moment among the encodes, fsyncs, renames, link replacements, removals of
        # originals and library writes of the next ones).
        nth = rng.choice((0, 1, 2, 3, 4))
        delay = rng.uniform(0.0, 0.8) if nth == 0 else rng.uniform(0.0, 0.12)
        deadline = time.monotonic() + 60
        while nth and proc.running() and _conversions(ws) - before < nth and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        killed = proc.kill()
        run = proc.wait()
        if killed:
            kills += 1
            REPORT.kills[f"convert/{mode}"] += 1
        else:
            assert_clean_output(run)
        _check_after_convert(ws, dataset, killed=killed)
        for image_id, converted_at in ws.sql("SELECT image_id, converted_at FROM conversions"):
            if image_id in recorded and recorded[image_id] != converted_at:
                REPORT.redone += 1
                raise AssertionError(f"image {image_id} was converted again")
            recorded[image_id] = converted_at
    assert kills >= 6, f"only {kills} kills landed"
    final = ws.cli(*convert)
    assert_clean_output(final)
    assert final.returncode == 0, final
    _resume_everything(ws)
    rows = ws.sql("SELECT image_id, converted_at FROM conversions")
    for image_id, converted_at in rows:
        if image_id in recorded and recorded[image_id] != converted_at:
            REPORT.redone += 1
            raise AssertionError(f"image {image_id} was converted again")
    # Every image (and, outside in-place mode, every video) has its conversion, and it is right.
    assert {r[0] for r in rows} == (images if mode == "in-place" else images | videos)
    _check_after_convert(ws, dataset, killed=False)
    assert check_conversions(ws, dataset) == len(rows)
    assert not temp_files(ws.root), temp_files(ws.root)[:10]
    if mode == "in-place":
        # No original is left beside its WebP, in the user's folder or the version's.
        left = [p for p in media_files(ws.downloads) if p.suffix != ".webp" and image_id_of(p) in images]
        assert not left, left[:10]
        for image_id, path in ws.sql("SELECT id, path FROM images WHERE type = 'image'"):
            assert path.endswith(f"{image_id}.webp"), (image_id, path)
        for image_id, path in ws.sql("SELECT image_id, path FROM sources WHERE path IS NOT NULL"):
            assert Path(path).is_file(), (image_id, path)
    if mode == "move-videos":
        for image_id, path in ws.sql("SELECT id, path FROM images WHERE type = 'video'"):
            assert "CivitAI_Browse" in path and Path(path).is_file(), (image_id, path)


def test_the_conversion_checker_catches_unfaithful_webps(fake, tmp_path):
    """The checks above must be able to fail: a WebP of another picture, of the right picture but
    cut short, with another image's EXIF, or a WebP original whose picture was re-encoded."""
    import io

    from PIL import Image

    from civitgrab_desktop.core.media.embed import build_metadata
    from civitgrab_desktop.core.media.webp_riff import build_webp, parse_chunks, with_metadata
    from tests.reliability.helpers import converted_webp_problem

    dataset = fake.dataset
    items = [i for i in dataset.images_for_user("erin") if i.width >= 96 and i.height >= 96]
    jpeg = next(i for i in items if i.media_format in ("jpeg", "png"))
    other = next(i for i in items if i.media_format in ("jpeg", "png") and i.id != jpeg.id)
    webp = next(i for i in dataset.images_for_user("erin") if i.media_format == "webp")

    def webp_of(item, image_id: int, quality: int = 90) -> bytes:
        data, _ = dataset.media(item.id)
        buf = io.BytesIO()
        with Image.open(io.BytesIO(data)) as im:
            built = build_metadata({"id": image_id}, [])
            im.convert("RGB").save(buf, "WEBP", quality=quality, exif=built.exif.data, xmp=built.xmp)
        return buf.getvalue()

    original, content_type = dataset.media(jpeg.id)
    good = webp_of(jpeg, jpeg.id)
    assert converted_webp_problem(good, jpeg.id, original, content_type) is None
    wrong = converted_webp_problem(webp_of(other, jpeg.id), jpeg.id, original, content_type)
    assert wrong and ("distance" in wrong or "the original" in wrong), wrong  # another picture
    assert "describes image" in converted_webp_problem(webp_of(jpeg, other.id), jpeg.id, original, content_type)
    cut = converted_webp_problem(good[: len(good) // 2], jpeg.id, original, content_type)
    assert cut and "cannot" in cut, cut

    webp_original, webp_type = dataset.media(webp.id)
    built = build_metadata({"id": webp.id}, [])
    exif = built.exif.data
    ours = build_webp(with_metadata(parse_chunks(webp_original), exif, built.xmp))
    assert converted_webp_problem(ours, webp.id, webp_original, webp_type) is None
    with Image.open(io.BytesIO(webp_original)) as im:
        buf = io.BytesIO()
        im.save(buf, "WEBP", quality=50, exif=exif, xmp=built.xmp)  # re-encoded: same picture, other chunks
    assert "picture chunks differ" in converted_webp_problem(buf.getvalue(), webp.id, webp_original, webp_type)
