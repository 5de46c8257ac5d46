"""Several processes on one library at once: two downloads of overlapping targets (the same user in
both, and a model whose images belong to those users), a `tags` and a `convert` process, all
started together on one data dir. Tags and convert only see what was downloaded when they claim,
so a second round of each runs once the downloads are done.

What must hold: no "database is locked" error or traceback reaches the user, every run exits 0,
no image is fetched from the CDN twice, no image's tags are fetched twice, no image is converted
twice, and at the end every downloaded image is on disk byte-identical, tagged and converted.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.reliability.helpers import (
    assert_clean_output,
    cdn_fetches,
    check_files,
    check_library,
    tag_fetches,
)
from tests.reliability.report import REPORT

pytestmark = pytest.mark.reliability

CONVERTED = re.compile(r"^Converted: (\d+)", re.MULTILINE)


def converted_count(run) -> int:
    match = CONVERTED.search(run.stdout)
    assert match, f"no 'Converted:' line in the summary\n{run}"
    return int(match.group(1))


def test_two_downloads_tags_and_convert_at_once_on_one_library(ws, fake):
    fake.set_latency(0.01)  # stretches the downloads so all four processes overlap
    browse = ws.root / "browse"
    seed = ws.cli("--mode", "1", "--username", "carol")  # tags and convert have work from the start
    assert seed.returncode == 0, seed

    started = time.monotonic()
    procs = [
        ws.popen("--mode", "1", "--username", "bigcap,alice,bob_art"),
        ws.popen("--mode", "1", "--username", "bob_art,bigcap"),
        ws.popen("--mode", "2", "--model_id", "1001"),
        ws.popen("tags", "--workers", "4"),
        ws.popen("convert", "--dest", str(browse), "--workers", "1"),
    ]
    runs = [p.wait(timeout=400) for p in procs]
    overlapped = time.monotonic() - started
    for run in runs:
        assert_clean_output(run)
        assert run.returncode == 0, str(run)

    # Second round: what the downloads added after tags / convert had claimed their work.
    tags2 = ws.cli("tags", "--workers", "4")
    convert2 = ws.cli("convert", "--dest", str(browse), "--workers", "2")
    for run in (tags2, convert2):
        assert_clean_output(run)
        assert run.returncode == 0, str(run)
    REPORT.note(f"5 processes at once on one library for {overlapped:.1f} s")

    done = {i for (i,) in ws.sql("SELECT id FROM images WHERE dl_state = 'done'")}
    expected = set()
    for user in ("carol", "bigcap", "alice", "bob_art"):
        expected |= {i.id for i in fake.dataset.images_for_user(user)}
    assert expected <= done

    fetched = cdn_fetches(fake)
    REPORT.cdn_fetches += sum(fetched.values())
    twice = [uuid for uuid, n in fetched.items() if n > 1]
    REPORT.refetched += len(twice)
    assert not twice, f"{len(twice)} images fetched from the CDN more than once"
    assert len(fetched) == len(done)

    tagged = tag_fetches(fake)
    again = [i for i, n in tagged.items() if n > 1]
    REPORT.redone += len(again)
    assert not again, f"tags fetched twice for {again[:10]}"
    assert set(tagged) == done
    assert ws.sql("SELECT count(*) FROM images WHERE dl_state = 'done' AND tag_state != 'done'") == [(0,)]

    rows = ws.sql("SELECT image_id FROM conversions")
    conversions_reported = converted_count(runs[4]) + converted_count(convert2)
    REPORT.redone += max(0, conversions_reported - len(rows))
    assert conversions_reported == len(rows), "an image was converted by both convert processes"
    assert {r[0] for r in rows} == done  # images as WebP, videos placed in the organized layout

    check_library(ws)
    check_files(ws.downloads, fake.dataset)
    check_files(browse, allow_converted=True)
