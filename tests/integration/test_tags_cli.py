"""civitgrab-cli tags, end to end against the fake CivitAI over HTTP: both methods, the automatic
fallback, sidecars and WebP EXIF, faults, two processes on one library, stop and resume.

The helpers at the top are shared with test_tags_job.py: what the replica says each image's tags
are, and which tRPC calls came from our API method versus from an image page in the browser.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.fake_civitai import FaultRule

needs_chromium = pytest.mark.skipif(
    not any(Path(p).exists() for p in ("/usr/bin/chromium", "/usr/lib/chromium/chromium")),
    reason="no system Chromium",
)

ALL_LEVELS = 31


def header(record, name: str) -> str:
    for key, value in record.headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def tag_call_id(record) -> int:
    raw = dict(record.query)["input"]
    return int(json.loads(raw)["json"]["id"])


def api_tag_calls(fake) -> list[int]:
    """Image ids of tag.getVotableTags calls made by our API method (Referer = the site root)."""
    root = fake.base_url + "/"
    return [tag_call_id(r) for r in fake.requests("/api/trpc/tag.getVotableTags") if header(r, "Referer") == root]


def page_tag_calls(fake) -> list[int]:
    """Image ids of tag.getVotableTags calls made by an image page's own script."""
    pages = re.compile(re.escape(fake.base_url) + r"/images/(\d+)")
    out = []
    for r in fake.requests("/api/trpc/tag.getVotableTags"):
        m = pages.match(header(r, "Referer"))
        if m:
            out.append(int(m.group(1)))
    return out


def api_view(tag: dict) -> tuple:
    return (tag["name"], tag["type"], tag["score"], tag["upVotes"], tag["downVotes"], tag["automated"], tag["needsReview"])


def library_api_view(tag: dict) -> tuple:
    return (tag["name"], tag["type"], tag["score"], tag["up_votes"], tag["down_votes"], tag["automated"], tag["needs_review"])


def assert_api_tags(store, dataset, image_id: int) -> None:
    expected = {t["id"]: api_view(t) for t in dataset.all_tags(image_id)}
    got = {t["id"]: library_api_view(t) for t in store.tags_of(image_id)}
    assert got == expected, f"image {image_id}"
    row = store.image(image_id)
    assert row.tag_state == "done" and row.tag_method == "api" and row.tag_error is None


def assert_browser_tags(store, dataset, image_id: int) -> None:
    """The browser method stores what the page's own tRPC answer holds: the same rows as the API
    method (ids, the tags' own names, types, scores, votes)."""
    expected = {t["id"]: api_view(t) for t in dataset.all_tags(image_id)}
    got = {t["id"]: library_api_view(t) for t in store.tags_of(image_id)}
    assert got == expected, f"image {image_id}"
    row = store.image(image_id)
    assert row.tag_state == "done" and row.tag_method == "browser" and row.tag_error is None


def sidecars_of(store, image_id: int) -> list[Path]:
    paths = {Path(store.image(image_id).path)}
    paths |= {Path(s.path) for s in store.sources_for(image_id) if s.linked and s.path}
    return sorted({p.parent / f"{image_id}.json" for p in paths})


def assert_sidecar_tags(store, image_id: int) -> None:
    """Every sidecar of the image holds exactly the library's tags (ids, names, scores)."""
    want = {t["id"]: (t["name"], t["score"]) for t in store.tags_of(image_id)}
    files = sidecars_of(store, image_id)
    assert files
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["id"] == image_id
        assert {t["id"]: (t["name"], t["score"]) for t in data["tags"]} == want, path


def downloaded_ids(store) -> list[int]:
    return store.image_ids(dl_state="done")


def summary_count(output: str, label: str) -> int:
    m = re.search(rf"^{label}: (\d+)", output, re.M)
    assert m, output
    return int(m.group(1))


def download(workspace, *users: str, extra: tuple[str, ...] = ()) -> None:
    run = workspace.cli("--mode", "1", "--username", ",".join(users), *extra)
    assert run.returncode == 0, run.output


# -- the API method ----------------------------------------------------------------------------------


def test_api_gives_every_image_exactly_its_tags(workspace, fake_civitai):
    download(workspace, "alice")
    # A second query finds some of alice's images again: they get a second copy and sidecar.
    assert workspace.cli("--mode", "4", "--model_version_id", "2001").returncode == 0
    ds = fake_civitai.dataset
    fake_civitai.clear_log()
    run = workspace.cli("tags", "--method", "api")
    assert run.returncode == 0, run.output
    with workspace.store() as store:
        ids = downloaded_ids(store)
        assert summary_count(run.stdout, "Tagged") == len(ids) > 24
        assert f"Method: api (images per method: api {len(ids)})" in run.stdout
        for iid in ids:
            assert_api_tags(store, ds, iid)
            assert_sidecar_tags(store, iid)
        two_copies = [i for i in ids if len(sidecars_of(store, i)) > 1]
        assert two_copies, "version 2001 should have linked some of alice's images into a second folder"
        assert sum(len(ds.expected_tags(i)) > 6 for i in ids) > 3
    # one call per image, with the headers the site sends
    calls = fake_civitai.requests("/api/trpc/tag.getVotableTags")
    assert sorted(tag_call_id(r) for r in calls) == sorted(ids)
    for r in calls:
        assert header(r, "Referer") == fake_civitai.base_url + "/"
        assert header(r, "Origin") == fake_civitai.base_url
        assert header(r, "x-client") == "web"
        assert not header(r, "Authorization")
    showcase = ds.named["tags_showcase"]
    with workspace.store() as store:
        sidecar = json.loads(sidecars_of(store, showcase)[0].read_text())
    # the API method writes every field the service gave (bar lastUpvote, which is not kept)
    expected = [{k: v for k, v in t.items() if k != "lastUpvote"} for t in ds.expected_tags(showcase)]
    assert sorted(sidecar["tags"], key=lambda t: t["id"]) == sorted(expected, key=lambda t: t["id"])
    assert "1girl" in [t["name"] for t in sidecar["tags"]]


def test_api_key_is_sent_as_bearer(workspace, fake_civitai):
    download(workspace, "grace")
    fake_civitai.clear_log()
    run = workspace.cli("tags", "--method", "api", "--api-key", "secret-key")
    assert run.returncode == 0, run.output
    calls = fake_civitai.requests("/api/trpc/tag.getVotableTags")
    assert calls and all(header(r, "Authorization") == "Bearer secret-key" for r in calls)
    assert "secret-key" not in run.output


def test_limit_rerun_max_age_and_retag(workspace, fake_civitai):
    download(workspace, "alice")
    ds = fake_civitai.dataset
    fake_civitai.clear_log()
    run = workspace.cli("tags", "--method", "api", "--limit", "5")
    assert run.returncode == 0, run.output
    assert summary_count(run.stdout, "Tagged") == 5 and len(api_tag_calls(fake_civitai)) == 5
    run = workspace.cli("tags", "--method", "api")  # a new run continues with the rest
    assert run.returncode == 0, run.output
    assert summary_count(run.stdout, "Tagged") == 19
    calls = api_tag_calls(fake_civitai)
    assert len(calls) == len(set(calls)) == 24
    fake_civitai.clear_log()
    run = workspace.cli("tags", "--method", "api", "--max-age-days", "1")  # all fresh: nothing to do
    assert run.returncode == 0 and summary_count(run.stdout, "Tagged") == 0
    assert api_tag_calls(fake_civitai) == []
    run = workspace.cli("tags", "--method", "api", "--retag", "--limit", "3")
    assert run.returncode == 0 and summary_count(run.stdout, "Tagged") == 3
    assert len(api_tag_calls(fake_civitai)) == 3
    with workspace.store() as store:
        for iid in downloaded_ids(store):
            assert_api_tags(store, ds, iid)


@pytest.mark.parametrize(
    "rules",
    [
        # The client backs a host off on every 429 (its adaptive politeness): rates like the ones a
        # busy service gives, not a storm that would slow the run to the 30 s ceiling.
        [FaultRule("429", where="trpc", rate=0.08, retry_after=0.2, seed=7), FaultRule("429-none", where="trpc", rate=0.04, seed=8)],
        # About one request in six fails: with 6 attempts an image is lost with p ~ 2e-5, so a
        # red run means the retry policy broke, not bad luck (a third failing gave p ~ 1e-3 each).
        [FaultRule("500", where="trpc", rate=0.08, seed=9), FaultRule("502", where="trpc", rate=0.05, seed=10),
         FaultRule("504", where="trpc", rate=0.05, seed=11), FaultRule("503", where="trpc", count=2)],
    ],
    ids=["429", "5xx"],
)
def test_api_survives_rate_limits_and_server_errors(workspace, fake_civitai, rules):
    download(workspace, "alice", "bob_art")
    for rule in rules:
        fake_civitai.add_fault(rule)
    run = workspace.cli("tags", "--method", "api", timeout=240)
    assert run.returncode == 0, run.output
    assert sum(r.fired for r in fake_civitai.faults) >= 3, "the faults should have fired"
    with workspace.store() as store:
        ids = downloaded_ids(store)
        assert summary_count(run.stdout, "Tagged") == len(ids) == 36
        for iid in ids:
            assert_api_tags(store, fake_civitai.dataset, iid)


def test_api_refused_stops_early_with_a_hint(workspace, fake_civitai):
    download(workspace, "alice")
    fake_civitai.configure(trpc_auth_required=True)
    fake_civitai.clear_log()
    run = workspace.cli("tags", "--method", "api", "--workers", "2")
    assert run.returncode == 1, run.output
    assert "Stopped early: the tag API refused" in run.stdout and "an API key may help" in run.stdout
    assert len(fake_civitai.requests("/api/trpc/")) <= 2  # not one refused call per image
    with workspace.store() as store:
        assert store.count_images(tag_state="done") == 0
        assert store.count_images(tag_state="never") >= 22  # the rest was left for a later run


# -- the browser method ------------------------------------------------------------------------------


@needs_chromium
def test_browser_reads_the_page_and_agrees_with_the_api(workspace, fake_civitai):
    download(workspace, "alice")
    ds = fake_civitai.dataset
    fake_civitai.clear_log()
    # A key: the site shows a mature image's page (and its tags) only to a logged-in visitor.
    run = workspace.cli("tags", "--method", "browser", "--api-key", "secret-key", timeout=240)
    assert run.returncode == 0, run.output
    assert "images per method: browser 24" in run.stdout
    assert "Browser: " in run.stdout
    assert api_tag_calls(fake_civitai) == []  # everything came through the pages
    with workspace.store() as store:
        ids = downloaded_ids(store)
        assert sorted(page_tag_calls(fake_civitai)) == sorted(ids)
        for iid in ids:
            assert_browser_tags(store, ds, iid)  # the tags' own names, not the page's display names
            assert_sidecar_tags(store, iid)
        browser_rows = {i: store.tags_of(i) for i in ids}
        showcase = {t["id"]: t["name"] for t in store.tags_of(ds.named["tags_showcase"])}
        assert {"1girl", "woman"} <= set(showcase.values())  # two tags, though the page shows "woman" twice
    # the pages get the key like the API would (same host), and never load the media
    pages = fake_civitai.requests("/images/")
    assert len(pages) == len(ids) and all(header(r, "Authorization") == "Bearer secret-key" for r in pages)
    assert all(header(r, "Authorization") == "Bearer secret-key" for r in fake_civitai.requests("/api/trpc/"))
    assert not [r for r in fake_civitai.request_log if r.path.startswith("/xG1nkqKTMzGDvpLrqFT7WA/")]
    # and the browser introduces itself as an ordinary browser
    agent = header(pages[0], "User-Agent")
    assert agent.startswith("Mozilla/5.0") and "Headless" not in agent and header(pages[0], "Accept-Language")

    run = workspace.cli("tags", "--method", "api", "--retag")
    assert run.returncode == 0, run.output
    with workspace.store() as store:
        for iid in ids:
            assert_api_tags(store, ds, iid)
            assert store.tags_of(iid) == browser_rows[iid], f"image {iid}: the methods disagree"


@needs_chromium
def test_browser_retries_page_and_tag_errors(workspace, fake_civitai):
    download(workspace, "bob_art")
    fake_civitai.add_fault(FaultRule("500", where="page", count=2))
    fake_civitai.add_fault(FaultRule("429", where="trpc", count=2, retry_after=0.2))
    fake_civitai.add_fault(FaultRule("503", where="trpc", rate=0.1, seed=3))
    run = workspace.cli("tags", "--method", "browser", "--api-key", "k", timeout=240)
    assert run.returncode == 0, run.output
    assert sum(r.fired for r in fake_civitai.faults) >= 4
    with workspace.store() as store:
        for iid in downloaded_ids(store):
            assert_browser_tags(store, fake_civitai.dataset, iid)


def test_missing_browser_is_a_clear_error(workspace, fake_civitai):
    download(workspace, "grace")
    run = workspace.cli("tags", "--method", "browser", "--browser", "/nowhere/chrome")
    assert run.returncode == 1
    assert "browser set in browser_path / --browser was not found: /nowhere/chrome" in run.output
    with workspace.store() as store:
        assert store.count_images(tag_state="done") == 0


# -- auto -----------------------------------------------------------------------------------------------


@needs_chromium
def test_auto_falls_back_to_the_browser_on_devalue(workspace, fake_civitai):
    download(workspace, "alice")
    fake_civitai.configure(trpc_encoding="devalue")
    fake_civitai.clear_log()
    run = workspace.cli("tags", "--api-key", "k", timeout=240)  # auto is the default
    assert run.returncode == 0, run.output
    assert run.output.count("using the browser for the rest of this job") == 1
    assert "Fell back to the browser: tRPC answered in an encoding we do not read (devalue)" in run.stdout
    with workspace.store() as store:
        ids = downloaded_ids(store)
        assert f"images per method: browser {len(ids)}" in run.stdout
        for iid in ids:
            assert_browser_tags(store, fake_civitai.dataset, iid)  # the page's answer, devalue or not
    assert len(api_tag_calls(fake_civitai)) <= 8  # only the calls already in flight


@needs_chromium
def test_auto_falls_back_when_the_api_refuses(workspace, fake_civitai):
    download(workspace, "alice")
    fake_civitai.configure(trpc_auth_required=True)
    fake_civitai.clear_log()
    run = workspace.cli("tags", "--method", "auto", "--workers", "2", timeout=240)
    # The replica's login gate also refuses the page's own tag request, as the site does for a
    # browser that is not logged in: the fallback is tried, then the job stops instead of
    # hammering, and says why.
    assert run.returncode == 1, run.output
    assert run.output.count("The tag API did not work (HTTP 401") == 1
    assert "Stopped early: the image pages were refused too" in run.stdout
    assert "an API key may help" in run.stdout
    assert len(api_tag_calls(fake_civitai)) <= 2 and 1 <= len(page_tag_calls(fake_civitai)) <= 4
    # With a key the API answers, and the images that failed are fetched again.
    run = workspace.cli("tags", "--method", "auto", "--api-key", "k", timeout=240)
    assert run.returncode == 0, run.output
    with workspace.store() as store:
        for iid in downloaded_ids(store):
            assert_api_tags(store, fake_civitai.dataset, iid)


# -- converted images ----------------------------------------------------------------------------------


def convert_one(store, image_id: int) -> Path:
    """Do what the converter does for one image (its job is written elsewhere): WebP with our EXIF
    beside the original, recorded in the library."""
    from civitgrab_desktop.core.media.embed import build_metadata, source_metadata
    from civitgrab_desktop.core.media.webp import convert_to_webp
    from civitgrab_desktop.jobs.embed_info import record_info

    row = store.image(image_id)
    src = Path(row.path)
    webp = src.with_suffix(".webp")
    built = build_metadata(record_info(row), [], source_metadata(src))
    tmp = webp.with_name(webp.name + ".tmp")
    outcome = convert_to_webp(src, tmp, exif=built.exif.data, xmp=built.xmp, quality=80)
    os.replace(tmp, webp)
    store.record_conversion(image_id, "converter-test", webp_path=str(webp), quality=80,
                            src_bytes=outcome.src_bytes, webp_bytes=outcome.webp_bytes)
    return webp


def test_converted_webp_gets_the_tags_in_its_exif(workspace, fake_civitai):
    from civitgrab_desktop.core.media.embed import read_file_xmp
    from civitgrab_desktop.core.media.webp import read_exif
    from civitgrab_desktop.core.media.webp_riff import image_chunks, parse_chunks

    download(workspace, "alice")
    ds = fake_civitai.dataset
    with workspace.store() as store:
        candidates = [
            i for i in downloaded_ids(store)
            if Path(store.image(i).path).suffix in (".png", ".jpeg", ".jpg") and len(ds.expected_tags(i)) > 3
        ]
        pngs = [i for i in candidates if store.image(i).path.endswith(".png")]
        image_id = (pngs or candidates)[0]
        webp = convert_one(store, image_id)
    before = read_exif(webp)
    before_xmp = read_file_xmp(webp)
    pixels = image_chunks(parse_chunks(webp.read_bytes()))
    mtime = webp.stat().st_mtime
    run = workspace.cli("tags", "--method", "api")
    assert run.returncode == 0, run.output
    exif = read_exif(webp)
    xmp = read_file_xmp(webp)
    expected = ds.expected_tags(image_id)
    assert {t["id"]: (t["name"], t["score"]) for t in xmp["record"]["tags"]} == {
        str(t["id"]): (t["name"], str(t["score"])) for t in expected
    }
    assert xmp["record"]["tags"][0]["upVotes"] == str(expected[0]["upVotes"])
    assert sorted(exif["keywords"]) == sorted(t["name"] for t in expected)
    assert sorted(xmp["subject"]) == sorted(t["name"] for t in expected)
    # everything else the converter wrote is still there, and the image was not re-encoded
    assert {k: v for k, v in exif.items() if k != "keywords"} == {k: v for k, v in before.items() if k != "keywords"}
    assert {k: v for k, v in xmp["record"].items() if k != "tags"} == before_xmp["record"]
    assert image_chunks(parse_chunks(webp.read_bytes())) == pixels
    assert abs(webp.stat().st_mtime - mtime) < 1
    with workspace.store() as store:
        assert_sidecar_tags(store, image_id)


def test_videos_placed_by_the_converter_get_tags_in_their_sidecar_only(workspace, fake_civitai):
    """Convert before tags: a video copied into CivitAI_Browse has a conversion row but no EXIF;
    its tags go into the sidecar next to it, and the run is not a failure."""
    download(workspace, "bob_art")
    dest = workspace.root / "browse"
    run = workspace.cli("convert", "--dest", str(dest))
    assert run.returncode == 0, run.output
    placed = sorted(p for p in (dest / "CivitAI_Browse" / "Videos").rglob("*") if p.suffix in (".mp4", ".webm"))
    assert placed, "bob_art has videos"
    before = {p: p.read_bytes() for p in placed}
    run = workspace.cli("tags", "--method", "api")
    assert run.returncode == 0, run.output
    ds = fake_civitai.dataset
    for video in placed:
        assert video.read_bytes() == before[video], "a video must never be rewritten"
        sidecar = json.loads((video.parent / f"{video.stem}.json").read_text(encoding="utf-8"))
        assert {t["id"] for t in sidecar["tags"]} == {t["id"] for t in ds.expected_tags(int(video.stem))}


# -- several processes, stop and resume ------------------------------------------------------------------


def start_cli(workspace, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "civitgrab_desktop.cli", *args],
        cwd=workspace.root, env=workspace.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_two_processes_never_fetch_the_same_image(workspace, fake_civitai):
    download(workspace, "alice", "bob_art", "carol", "dave_ai")
    fake_civitai.set_latency(0.05)
    fake_civitai.clear_log()
    procs = [start_cli(workspace, "tags", "--method", "api", "--workers", "4") for _ in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out + err
    calls = Counter(api_tag_calls(fake_civitai))
    with workspace.store() as store:
        ids = downloaded_ids(store)
        assert sorted(calls) == sorted(ids)
        assert set(calls.values()) == {1}, [i for i, n in calls.items() if n > 1]
        assert sum(summary_count(out, "Tagged") for out, _ in outputs) == len(ids)
        assert all(summary_count(out, "Tagged") > 0 for out, _ in outputs), "both processes should have worked"
        for iid in ids:
            assert_api_tags(store, fake_civitai.dataset, iid)


def test_stop_then_resume_fetches_each_image_once(workspace, fake_civitai):
    download(workspace, "alice", "carol")
    fake_civitai.set_latency(0.2)
    fake_civitai.clear_log()
    proc = start_cli(workspace, "tags", "--method", "api", "--workers", "2")
    deadline = time.time() + 60
    while time.time() < deadline and len(api_tag_calls(fake_civitai)) < 4:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    with workspace.store() as store:
        total = len(downloaded_ids(store))
        tagged_first = store.count_images(tag_state="done")
        assert 0 < tagged_first < total
        assert store.count_images(tag_state="failed") == 0
        job = store.list_jobs(kind="tags")[0]
        assert job.state == "stopped"
    fake_civitai.set_latency(0)
    run = workspace.cli("resume", job.id)
    assert run.returncode == 0, run.output
    assert summary_count(run.stdout, "Tagged") == total - tagged_first
    run = workspace.cli("tags", "--method", "api")  # nothing left
    assert run.returncode == 0 and summary_count(run.stdout, "Tagged") == 0
    calls = Counter(api_tag_calls(fake_civitai))
    with workspace.store() as store:
        ids = downloaded_ids(store)
        assert sorted(calls) == sorted(ids) and set(calls.values()) == {1}
        for iid in ids:
            assert_api_tags(store, fake_civitai.dataset, iid)
            assert_sidecar_tags(store, iid)
        assert store.get_job(job.id).state == "done"


def test_a_stopped_retag_resumes_where_it_stopped(workspace, fake_civitai):
    download(workspace, "alice")
    assert workspace.cli("tags", "--method", "api").returncode == 0
    fake_civitai.set_latency(0.2)
    fake_civitai.clear_log()
    proc = start_cli(workspace, "tags", "--method", "api", "--retag", "--workers", "1")
    deadline = time.time() + 60
    while time.time() < deadline and len(api_tag_calls(fake_civitai)) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    first = summary_count(out, "Tagged")
    assert 0 < first < 24
    fake_civitai.set_latency(0)
    with workspace.store() as store:
        job = store.list_jobs(kind="tags")[0]
    run = workspace.cli("resume", job.id)
    assert run.returncode == 0, run.output
    assert summary_count(run.stdout, "Tagged") == 24 - first
    calls = Counter(api_tag_calls(fake_civitai))
    assert len(calls) == 24 and set(calls.values()) == {1}  # the re-tag did not start over
