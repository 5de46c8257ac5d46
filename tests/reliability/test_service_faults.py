"""Service faults: every image ends on disk byte-identical to the original, or is reported failed
with its reason after the retries; nothing partial is left under a final name; a re-run finishes.

The fake's fault switches (tests/fake_civitai/faults.py) drive the real CLI over HTTP. Beyond
tests/integration (a 5% mix of faults on one run), each fault kind is exercised on the listing
and on the media, in a row, until the retries run out, and as a storm on every endpoint.
"""

from __future__ import annotations

import pytest

from tests.fake_civitai import ACCOUNT, FaultRule
from tests.reliability.helpers import (
    assert_clean_output,
    assert_unchanged,
    cdn_fetches,
    check_files,
    check_library,
    log_mark,
    snapshot,
    wait_for,
)

pytestmark = pytest.mark.reliability

# Everything the service does wrong that a retry can fix ("corrupt" keeps the length and the
# headers: without a checksum from the service only PNG CRCs and JPEG structure can catch it).
TRANSIENT = ("429", "429-date", "429-none", "500", "502", "503", "504", "reset", "truncate", "html200", "slow")
# Short client timeout, and "slow" responses that take longer than it.
TIMEOUT = "2"
SLOW_DELAY = 3.0


def faulted(fake, kind: str | None = None) -> int:
    """Faults fired so far (counted when they fire: a "slow" response is logged only when its
    delay is over, after the client gave up on it)."""
    return sum(r.fired for r in fake.faults if kind is None or r.kind == kind)


@pytest.mark.parametrize("kind", TRANSIENT)
def test_each_fault_kind_on_the_listing_and_the_media(ws, fake, kind):
    # The first listing page fails twice in a row; every third media response fails, twice.
    # (Each 429/503 also doubles the client's spacing of requests to the host, by design.)
    fake.add_fault(FaultRule(kind, where="api", count=2, retry_after=1, delay=SLOW_DELAY))
    fake.add_fault(FaultRule(kind, where="cdn", every=3, count=2, retry_after=1, delay=SLOW_DELAY))
    run = ws.cli("--mode", "1", "--username", "bob_art", "--timeout", TIMEOUT, "--retries", "5")
    assert_clean_output(run)
    assert run.returncode == 0, run
    assert faulted(fake, kind) == 4, "the fault switches should have fired 2 + 2 times"

    files = check_files(ws.downloads, fake.dataset)
    assert set(files) == {i.id for i in fake.dataset.images_for_user("bob_art")}
    check_library(ws)
    # a re-run has nothing left to fetch
    mark = log_mark()
    again = ws.cli("--mode", "1", "--username", "bob_art")
    assert again.returncode == 0, again
    assert not cdn_fetches(fake, arrived_after=mark)


def test_a_listing_page_failing_many_times_in_a_row(ws, fake):
    """Page 2 of a 3-page listing fails 9 times in a row, each time differently, then works."""
    sequence = ("500", "429-none", "502", "reset", "html200", "504", "truncate", "503", "json-garbage")
    for n, kind in enumerate(sequence):
        # Each rule sees the requests the earlier ones let through; its 2nd match fires:
        # request 1 (page 1) passes, requests 2..10 (page 2 and its retries) fail in turn.
        fake.add_fault(FaultRule(kind, where="api", path_prefix="/api/v1/images", every=2, count=1, seed=n))
    run = ws.cli("--mode", "1", "--username", "bigcap", "--timeout", TIMEOUT)
    assert_clean_output(run)
    assert run.returncode == 0, run
    listing = [r for r in fake.request_log if r.path == "/api/v1/images"]
    assert [r.fault for r in listing[1 : 1 + len(sequence)]] == list(sequence)
    # 600 items end on a full page: one reversed one-item query tells the end from the service's cap
    assert len(listing) == 3 + len(sequence) + 1
    assert ("sort", "Oldest") in listing[-1].query and ("limit", "1") in listing[-1].query
    files = check_files(ws.downloads, fake.dataset)
    assert len(files) == 600
    check_library(ws)


def test_persistent_media_faults_are_reported_then_a_rerun_finishes(ws, fake):
    items = fake.dataset.images_for_user("carol")
    plan = [
        ("html200", "HTML page"),
        ("truncate", "transfer interrupted"),  # aiohttp notices the missing bytes first
        ("reset", "transfer interrupted"),
        ("500", "server error 500"),
        ("slow", "timed out"),
        ("429-none", "rate limited (429)"),
        ("502", "server error 502"),
    ]
    victims = list(zip(items, plan, strict=False))  # (image, (fault kind, reason shown))
    for item, (kind, _) in victims:
        fake.add_fault(FaultRule(kind, where="cdn", path_prefix=f"/{ACCOUNT}/{item.uuid}", delay=SLOW_DELAY))
    run = ws.cli("--mode", "1", "--username", "carol", "--retries", "2", "--timeout", TIMEOUT)
    assert_clean_output(run)
    assert run.returncode == 1, run
    assert f"Failed: {len(victims)}" in run.stdout, run
    # a "slow" answer is logged when its delay is over, after the client gave up on it
    wait_for(lambda: sum(cdn_fetches(fake)[i.uuid] for i, _ in victims) >= 3 * len(victims), timeout=SLOW_DELAY + 2)
    fetched = cdn_fetches(fake)
    for item, (kind, reason) in victims:
        line = next((ln for ln in run.stdout.splitlines() if ln.strip().startswith(f"{item.id}:")), "")
        assert reason in line, f"{kind}: expected '{reason}' for image {item.id}, got {line!r}\n{run}"
        assert fetched[item.uuid] == 3, f"{kind}: 1 attempt + 2 retries expected, got {fetched[item.uuid]}"
    files = check_files(ws.downloads, fake.dataset)
    victim_ids = {i.id for i, _ in victims}
    assert set(files) == {i.id for i in items} - victim_ids
    failed = dict(ws.sql("SELECT id, dl_error FROM images WHERE dl_state = 'failed'"))
    assert set(failed) == victim_ids
    assert all(failed.values())
    check_library(ws)

    before = snapshot(ws.downloads)
    fake.clear_faults()
    mark = log_mark()
    rerun = ws.cli("--mode", "1", "--username", "carol")
    assert rerun.returncode == 0, rerun
    assert cdn_fetches(fake, arrived_after=mark) == {i.uuid: 1 for i, _ in victims}, "only the failures are fetched again"
    files = check_files(ws.downloads, fake.dataset)
    assert set(files) == {i.id for i in items}
    assert_unchanged(before, ws.downloads)
    check_library(ws)


@pytest.mark.parametrize("kind", ["502", "json-garbage", "html200"])
def test_a_listing_that_keeps_failing_is_reported_and_loses_nothing(ws, fake, kind):
    first = ws.cli("--mode", "1", "--username", "grace")
    assert first.returncode == 0, first
    before = snapshot(ws.downloads)
    fake.add_fault(FaultRule(kind, where="api", path_prefix="/api/v1/images"))
    run = ws.cli("--mode", "1", "--username", "grace")
    assert_clean_output(run)
    assert run.returncode == 1, run
    assert "listing failed" in run.output, run
    assert "Found nothing" not in run.stdout, run
    assert ws.sql("SELECT count(*) FROM images WHERE gone_at IS NOT NULL") == [(0,)], (
        "a failed listing must not mark the collection as gone from the service"
    )
    assert_unchanged(before, ws.downloads)
    check_library(ws)
    fake.clear_faults()
    rerun = ws.cli("--mode", "1", "--username", "grace")
    assert rerun.returncode == 0, rerun


def test_fault_storm_on_every_endpoint(ws, fake):
    """A quarter of all requests fail, in every way at once; everything still arrives intact."""
    kinds = (*TRANSIENT, "json-garbage")
    for n, kind in enumerate(kinds):
        fake.add_fault(FaultRule(kind, rate=0.25 / len(kinds), seed=900 + n, retry_after=1, delay=SLOW_DELAY))
    users = ("alice", "bob_art", "heidi", "MixedCase")
    run = ws.cli("--mode", "1", "--username", ",".join(users), "--retries", "10", "--timeout", TIMEOUT)
    assert_clean_output(run)
    assert run.returncode == 0, run
    assert faulted(fake) >= 10, "the storm should have hit"
    files = check_files(ws.downloads, fake.dataset)
    expected = set()
    for user in users:
        expected |= {i.id for i in fake.dataset.images_for_user(user)}
    assert set(files) == expected
    check_library(ws)
    fake.clear_faults()
    mark = log_mark()
    again = ws.cli("--mode", "1", "--username", ",".join(users))
    assert again.returncode == 0, again
    assert not cdn_fetches(fake, arrived_after=mark)
