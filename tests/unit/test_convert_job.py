"""ConvertJob in-process over a real library: claims, recording, filters, pause/resume/stop."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from civitgrab_desktop.core.civitai.records import parse_image
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.store import LibraryStore, Source
from civitgrab_desktop.core.media.exif import read_exif
from civitgrab_desktop.core.model import TagVote
from civitgrab_desktop.jobs.convert import ConvertJob, ConvertParams, api_tags, parse_source
from civitgrab_desktop.jobs.job import JobState, MessageEvent, ProgressEvent
from tests.unit.test_media_samples import photo

MEDIA = Path(__file__).resolve().parents[1] / "fake_civitai" / "media"


def add_images(db: Path, folder: Path, specs: list[dict]) -> dict[int, Path]:
    """Register files as downloads: spec keys id, user, level, version, fmt, tags (TagVote list)."""
    paths: dict[int, Path] = {}
    with LibraryStore(db) as store:
        store.add_root(folder, "download")  # the download folder the user chose
        for spec in specs:
            image_id, fmt = spec["id"], spec.get("fmt", "jpeg")
            path = folder / spec.get("user", "alice") / f"{image_id}.{fmt}"
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "mp4":
                path.write_bytes((MEDIA / "clip_64.mp4").read_bytes())
            else:
                photo((96, 64), seed=image_id).save(path, {"jpeg": "JPEG", "png": "PNG"}[fmt])
            raw = {"id": image_id, "url": f"https://image.civitai.com/x/{image_id}.{fmt}",
                   "type": "video" if fmt == "mp4" else "image", "nsfwLevel": spec.get("level", 1),
                   "username": spec.get("user", "alice"), "createdAt": "2025-02-03T04:05:06.000Z",
                   "meta": {"prompt": f"prompt {image_id}", "civitaiResources": [
                       {"type": "checkpoint", "modelVersionName": spec.get("version", "v1.0")}]}}
            store.upsert_listed([parse_image(raw)], Source("username", spec.get("user", "alice"), {image_id: str(path)}))
            data = path.read_bytes()
            store.mark_downloaded(image_id, "test", str(path), "image/jpeg", len(data),
                                  hashlib.sha256(data).hexdigest(), "original")
            if spec.get("tags") is not None:
                store.store_tags(image_id, "test", spec["tags"], "api")
            paths[image_id] = path
    return paths


TAGS = [TagVote(id=1, name="lighthouse", score=9, up_votes=2), TagVote(id=2, name="sea", score=3)]


@pytest.fixture
def setup(tmp_path):
    db = tmp_path / "library.sqlite3"
    specs = [
        {"id": 101, "tags": TAGS},
        {"id": 102, "fmt": "png", "level": 4, "version": "v2.0"},
        {"id": 103, "user": "bob", "level": 2, "tags": []},
        {"id": 104, "user": "bob", "fmt": "mp4", "level": 1},
        {"id": 105, "level": 8},
    ]
    paths = add_images(db, tmp_path / "dl", specs)
    return db, paths, tmp_path


async def run_job(db: Path, params: ConvertParams, listener=None, control=None) -> tuple[ConvertJob, dict]:
    library = await Library.open(db)
    try:
        job = ConvertJob(library, params, listener=listener)
        if control is not None:
            control(job)
        summary = await asyncio.wait_for(job.run(), 120)
        return job, summary
    finally:
        await library.close()


def test_params_round_trip_and_checks(tmp_path):
    params = ConvertParams(quality=75, in_place=True, dest=None, videos=None, source="user:alice", limit=3)
    assert ConvertParams.from_dict({**params.to_dict(), "unknown": 1}) == params
    with pytest.raises(ValueError, match="destination"):
        ConvertParams(dest=None).check()
    with pytest.raises(ValueError, match="source must look like"):
        ConvertParams(dest="x", source="alice").check()
    with pytest.raises(ValueError, match="quality"):
        ConvertParams(dest="x", quality=0).check()
    assert ConvertParams(dest=str(tmp_path / "CivitAI_Browse")).dest_root == tmp_path.resolve()
    assert ConvertParams(dest=str(tmp_path)).dest_root == tmp_path.resolve()
    assert parse_source("modelVersion:2001") == ("modelVersion", "2001")
    assert parse_source(None) is None
    assert api_tags([{"id": 1, "name": "a", "score": 2, "up_votes": 3, "down_votes": 0, "automated": 1,
                      "needs_review": 0}])[0]["upVotes"] == 3


async def test_dest_run_converts_everything_once_and_records_it(setup):
    db, paths, tmp = setup
    dest = tmp / "browse"
    events = []
    job, summary = await run_job(db, ConvertParams(dest=str(dest), workers=2), listener=events.append)
    assert job.state == JobState.DONE and job.all_converted, summary
    assert summary["done"] == 5 and summary["videos"] == 1 and summary["failed"] == 0
    root = dest / "CivitAI_Browse"
    assert (root / "Images/SFW/v1.0/alice/101.webp").exists()
    assert (root / "Images/NSFW/v2.0/alice/102.webp").exists()
    assert (root / "Images/SFW/v1.0/bob/103.webp").exists()  # PG-13 is SFW by default
    assert (root / "Videos/SFW/v1.0/bob/104.mp4").exists() and (root / "Videos/SFW/v1.0/bob/104.json").exists()
    assert (root / "Images/NSFW/v1.0/alice/105.webp").exists()
    assert all(p.exists() for p in paths.values())  # nothing deleted in dest mode
    exif = read_exif(root / "Images/SFW/v1.0/alice/101.webp")
    assert exif["keywords"] == ["lighthouse", "sea"] and exif["description"] == "prompt 101"
    with LibraryStore(db) as store:
        conv = store.conversion_of(101)
        assert conv.quality == 90 and conv.src_phash and conv.webp_phash and conv.distance <= 4
        assert not conv.original_removed and store.image(101).cv_state == "done"
        assert store.image(101).cv_owner is None
    assert any(isinstance(e, ProgressEvent) for e in events)
    again, summary = await run_job(db, ConvertParams(dest=str(dest)))
    assert summary["done"] == 0 and again.all_converted


async def test_filters_limit_and_pg13(setup):
    db, _paths, tmp = setup
    dest = tmp / "out"
    _, summary = await run_job(db, ConvertParams(dest=str(dest), only_tagged=True))
    assert summary["done"] == 2  # 101 and 103 have tags (an empty list counts as fetched)
    _, summary = await run_job(db, ConvertParams(dest=str(dest), username="alice", nsfw_class="nsfw"))
    assert summary["done"] == 2  # 102 (R) and 105 (X)
    _, summary = await run_job(db, ConvertParams(dest=str(dest), videos=None, limit=5))
    assert summary["done"] == 0  # only the video is left, and videos are left alone
    _, summary = await run_job(db, ConvertParams(dest=str(dest), source="username:bob", pg13_is_nsfw=True))
    assert summary["done"] == 1 and (dest / "CivitAI_Browse/Videos/SFW/v1.0/bob/104.mp4").exists()


async def test_pg13_as_nsfw(setup):
    db, _paths, tmp = setup
    await run_job(db, ConvertParams(dest=str(tmp / "o"), username="bob", pg13_is_nsfw=True))
    assert (tmp / "o/CivitAI_Browse/Images/NSFW/v1.0/bob/103.webp").exists()


async def test_in_place_points_the_library_at_the_webp(setup):
    db, paths, tmp = setup
    linked = tmp / "elsewhere" / "101.jpeg"
    linked.parent.mkdir()
    os.link(paths[101], linked)
    with LibraryStore(db) as store:
        store.add_root(linked.parent, "download")  # another query's download folder
        store.mark_source_linked(101, "tag", "sea", str(linked))
    job, summary = await run_job(db, ConvertParams(in_place=True, videos=None, dest=None))
    assert summary["done"] == 4 and job.all_converted  # the video is not touched in place
    with LibraryStore(db) as store:
        for image_id in (101, 102, 103, 105):
            row = store.image(image_id)
            assert row.path.endswith(".webp") and Path(row.path).exists()
            assert not paths[image_id].exists()
            assert store.conversion_of(image_id).original_removed
            for source in store.sources_for(image_id):
                assert Path(source.path).exists(), source
        assert {s.path for s in store.sources_for(101)} == {str(paths[101].with_suffix(".webp")),
                                                          str(linked.with_suffix(".webp"))}
        assert store.image(104).cv_state == "never" and paths[104].exists()


def on_record(job: ConvertJob, action) -> None:
    """Call `action(job, n)` right after the job recorded its n-th result (n = 1, 2...).

    Not from a ProgressEvent: those are throttled to ten a second, and small test images convert
    faster than that, so a whole run can finish before the first event with done >= 1."""
    record = job._record
    count = 0

    async def recorded(result):
        nonlocal count
        await record(result)
        count += 1
        action(job, count)

    job._record = recorded


async def test_pause_then_resume_finishes(tmp_path):
    db = tmp_path / "library.sqlite3"
    add_images(db, tmp_path / "dl", [{"id": 200 + i} for i in range(12)])
    state = {"paused_at": None}

    def pause_once(job: ConvertJob, n: int) -> None:
        if state["paused_at"] is None:
            job.pause()
            state["paused_at"] = n
            asyncio.get_running_loop().call_later(0.6, check_and_resume, job)

    def check_and_resume(job: ConvertJob) -> None:
        state["state"] = job.state
        state["while_paused"] = job.tally.done
        with LibraryStore(db) as store:
            state["held"] = [i for i in range(200, 212) if store.image(i).cv_owner]
        job.resume()

    job, summary = await run_job(db, ConvertParams(dest=str(tmp_path / "o"), workers=1, batch_size=4),
                                 control=lambda job: on_record(job, pause_once))
    assert job.state == JobState.DONE and summary["done"] == 12
    assert state["paused_at"] == 1 and state["state"] == JobState.PAUSED
    # A pause finishes what already runs in the pool (at most two with one worker), no more.
    assert state["while_paused"] <= 3
    assert state["held"] == []  # a paused job holds no claims: another process may go on
    with LibraryStore(db) as store:
        assert {store.image(200 + i).cv_state for i in range(12)} == {"done"}


async def _stop_then_rerun(tmp_path, control) -> tuple[ConvertJob, dict]:
    db = tmp_path / "library.sqlite3"
    ids = [300 + i for i in range(10)]
    add_images(db, tmp_path / "dl", [{"id": i} for i in ids])
    job, summary = await run_job(db, ConvertParams(dest=str(tmp_path / "o"), workers=1, batch_size=10), control=control)
    assert job.state == JobState.STOPPED, summary
    with LibraryStore(db) as store:
        rows = [store.image(i) for i in ids]
        first = {i: store.conversion_of(i).converted_at for i in ids if store.conversion_of(i)}
    assert sum(r.cv_state == "done" for r in rows) == summary["done"] == len(first) < 10
    assert all(r.cv_owner is None for r in rows)  # unstarted claims handed back
    assert {r.cv_state for r in rows} <= {"done", "never"}
    # A new run converts exactly the rest: nothing twice.
    again, rest = await run_job(db, ConvertParams(dest=str(tmp_path / "o"), workers=1))
    assert again.state == JobState.DONE and rest["done"] == 10 - summary["done"]
    with LibraryStore(db) as store:
        assert all(store.conversion_of(i).converted_at == at for i, at in first.items())
        assert {store.image(i).cv_state for i in ids} == {"done"}
    return job, summary


async def test_stop_hands_back_unstarted_claims(tmp_path):
    job, summary = await _stop_then_rerun(tmp_path, lambda job: on_record(job, lambda j, n: j.stop()))
    # Stopped after the first result: only what was already running in the pool finished.
    assert 1 <= summary["done"] <= 3


async def test_stop_while_paused(tmp_path):
    def pause_then_stop(job: ConvertJob, n: int) -> None:
        if n == 1:
            job.pause()
            asyncio.get_running_loop().call_later(0.3, job.stop)

    job, summary = await _stop_then_rerun(tmp_path, lambda job: on_record(job, pause_then_stop))
    assert 1 <= summary["done"] <= 3


async def test_stop_before_the_first_result(tmp_path):
    def stop_at_start(job: ConvertJob) -> None:
        job.subscribe(lambda e: job.stop() if isinstance(e, ProgressEvent) else None)

    job, summary = await _stop_then_rerun(tmp_path, stop_at_start)
    assert summary["done"] <= 2


async def test_failures_are_recorded_and_reported(setup):
    db, paths, tmp = setup
    paths[101].write_bytes(b"\xff\xd8\xff" + b"\x00" * 50)  # damaged after download
    events = []
    job, summary = await run_job(db, ConvertParams(dest=str(tmp / "o")), listener=events.append)
    assert summary["failed"] == 1 and not job.all_converted
    assert summary["failures"][0]["item"] == "101"
    with LibraryStore(db) as store:
        row = store.image(101)
        assert row.cv_state == "failed" and "changed since it was downloaded" in row.cv_error
    assert any(isinstance(e, MessageEvent) and "101" in e.text for e in events)


async def test_a_resumed_job_records_the_whole_job_s_progress(tmp_path):
    db = tmp_path / "library.sqlite3"
    add_images(db, tmp_path / "dl", [{"id": 400 + i} for i in range(8)])
    params = ConvertParams(dest=str(tmp_path / "o"), workers=1)
    library = await Library.open(db)
    try:
        job_id = await library.create_job("convert", params.to_dict())
        first = ConvertJob(library, params, job_id=job_id)
        on_record(first, lambda j, n: j.stop())
        summary = await asyncio.wait_for(first.run(), 120)
        assert first.state == JobState.STOPPED and 1 <= summary["done"] < 8
        assert (await library.get_job(job_id)).progress["done"] == summary["done"]
        second = ConvertJob(library, ConvertParams.from_dict((await library.get_job(job_id)).params), job_id=job_id)
        rest = await asyncio.wait_for(second.run(), 120)
        assert rest["done"] == 8 - summary["done"]  # this run
        assert rest["earlier_done"] == summary["done"] and rest["job_done"] == 8
        row = await library.get_job(job_id)
        assert row.state == "done" and row.progress["done"] == 8 and row.progress["total"] == 8
        assert row.progress["bytes_saved"] == summary["bytes_saved"] + rest["bytes_saved"]
    finally:
        await library.close()


async def test_a_run_with_nothing_to_do_says_why(tmp_path):
    db = tmp_path / "library.sqlite3"
    add_images(db, tmp_path / "dl", [{"id": 500}, {"id": 501}])  # no tags fetched
    events = []
    _, summary = await run_job(db, ConvertParams(dest=str(tmp_path / "o"), only_tagged=True), listener=events.append)
    texts = [e.text for e in events if isinstance(e, MessageEvent)]
    assert summary["done"] == 0 and any("2 downloaded image(s) have no tags fetched" in t for t in texts), texts
    await run_job(db, ConvertParams(dest=str(tmp_path / "o")))
    events.clear()
    await run_job(db, ConvertParams(dest=str(tmp_path / "o")), listener=events.append)
    assert any("converted already" in e.text for e in events if isinstance(e, MessageEvent))
