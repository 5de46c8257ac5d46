"""TagsJob driven in-process the way the GUI's Tag Scraper panel does: constructor, events,
pause / resume / stop, job record."""

from __future__ import annotations

import asyncio

from civitgrab_desktop.core.civitai.client import CivitaiClient, ClientOptions
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.jobs.job import FinishedEvent, JobState, ProgressEvent, StateChanged
from civitgrab_desktop.jobs.tags import TagsJob, TagsParams
from tests.integration.test_tags_cli import api_tag_calls, assert_api_tags, download, downloaded_ids


async def wait_for(predicate, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_pause_resume_and_events(workspace, fake_civitai):
    download(workspace, "alice")
    fake_civitai.set_latency(0.1)
    fake_civitai.clear_log()
    events = []
    library = await Library.open(workspace.data_dir / "library.sqlite3")
    client = CivitaiClient(fake_civitai.base_url, options=ClientOptions(concurrency=2))
    try:
        params = TagsParams(method="api", workers=2)
        job_id = await library.create_job("tags", params.to_dict())
        job = TagsJob(library, client, params, job_id=job_id, listener=events.append)
        task = asyncio.create_task(job.run())
        await wait_for(lambda: job.tally.done >= 3)
        job.pause()
        await asyncio.sleep(0.3)  # the fetches in flight finish
        calls = len(api_tag_calls(fake_civitai))
        await asyncio.sleep(0.5)
        assert len(api_tag_calls(fake_civitai)) == calls, "no fetch while paused"
        assert (await library.get_job(job_id)).state == "paused"
        job.resume()
        summary = await asyncio.wait_for(task, 60)
    finally:
        await client.close()
        await library.close()
    assert summary["state"] == "done" and summary["done"] == 24 and summary["failed"] == 0
    assert summary["methods"] == {"api": 24} and summary["method"] == "api"
    states = [e.state for e in events if isinstance(e, StateChanged)]
    assert states == [JobState.RUNNING, JobState.PAUSED, JobState.RUNNING, JobState.DONE]
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    assert progress and progress[-1].done == 24 and progress[-1].total == 24
    assert isinstance(events[-1], FinishedEvent) and events[-1].summary["done"] == 24
    with workspace.store() as store:
        for iid in downloaded_ids(store):
            assert_api_tags(store, fake_civitai.dataset, iid)
        job_row = store.get_job(job_id)
        assert job_row.state == "done" and job_row.summary["done"] == 24


async def test_stop_keeps_what_was_fetched_and_releases_the_rest(workspace, fake_civitai):
    download(workspace, "alice")
    fake_civitai.set_latency(0.1)
    library = await Library.open(workspace.data_dir / "library.sqlite3")
    client = CivitaiClient(fake_civitai.base_url)
    try:
        job = TagsJob(library, client, TagsParams(method="api", workers=3))
        task = asyncio.create_task(job.run())
        await wait_for(lambda: job.tally.done >= 2)
        job.stop()
        summary = await asyncio.wait_for(task, 60)
    finally:
        await client.close()
        await library.close()
    assert summary["state"] == "stopped" and summary["failed"] == 0
    assert 2 <= summary["done"] < 24
    fetched = set(api_tag_calls(fake_civitai))
    with workspace.store() as store:
        # every fetch that started was saved; nothing stays claimed
        assert store.count_images(tag_state="done") == summary["done"] == len(fetched)
        assert all(store.image(i).tag_owner is None for i in downloaded_ids(store))
