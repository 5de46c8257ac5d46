"""Drive the real window: download a user from the fake CivitAI, pause, resume, stop, retry, and
check the files on disk and the rows in the library."""

from __future__ import annotations

from pathlib import Path

from tests.gui.conftest import media_files, part_files, wait_until


def start_download(window, identifiers: str, out_dir: Path, *, workers: int = 2, mode: int = 1):
    page = window.page("download")
    page.mode.set_value(mode)
    page.identifiers.setText(identifiers)
    page.output.set_path(str(out_dir))
    page.workers.setValue(workers)
    before = len(window.ctx.jobs.handles)
    page.start_button.click()
    return page, before


async def new_handle(window, before: int):
    await wait_until(lambda: len(window.ctx.jobs.handles) > before, what="the job to start")
    return window.ctx.jobs.handles[-1]


def finished_count(handle) -> int:
    p = handle.bridge.last_progress
    return 0 if p is None else p.done + p.skipped + p.failed


async def test_download_pause_resume_stop_and_retry(window, fake_civitai, out_dir):
    fake_civitai.set_latency(0.25)
    page, before = start_download(window, "alice", out_dir, workers=2)
    handle = await new_handle(window, before)
    card = page.job_list.card_for(handle)
    assert card is not None and card.title.text() == "user alice"
    assert page.job_list.empty.isHidden()

    await wait_until(lambda: handle.bridge.last_progress and handle.bridge.last_progress.done >= 2, 60, what="2 downloads")
    assert window.jobs_indicator.label.text().startswith("1 job running")

    # pause: the state shows, the buttons swap, and the counts stop moving
    card.pause_button.click()
    await wait_until(lambda: handle.bridge.state == "paused", what="paused")
    assert card.chip.text() == "Paused"
    assert card.resume_button.isVisibleTo(card) and not card.pause_button.isVisibleTo(card)
    # Another download started now is the clock: while it fetches a whole user from the same
    # slow service, the paused job must not move. Its count is read once the other job has
    # finished a few items: transfers that were in flight at the pause reached the service
    # earlier, so they have ended at their checkpoint by then.
    _, before_beside = start_download(window, "grace", out_dir.parent / "beside", workers=2)
    beside = await new_handle(window, before_beside)
    await wait_until(lambda: finished_count(beside) >= 3, 60, what="the other job's first items")
    frozen = finished_count(handle)
    await wait_until(lambda: beside.bridge.ended, 60, what="the other job")
    assert beside.bridge.state == "done" and finished_count(beside) >= 10
    assert finished_count(handle) == frozen, "a paused job kept working"
    assert handle.bridge.state == "paused"

    # resume: it continues
    card.resume_button.click()
    await wait_until(lambda: handle.bridge.state == "running", what="running again")
    await wait_until(lambda: finished_count(handle) > frozen, 60, what="progress after resume")

    # stop: the job ends as stopped, keeps what it downloaded, leaves no partial file
    card.stop_button.click()
    await wait_until(lambda: handle.bridge.ended, 60, what="the stop")
    assert handle.bridge.state == "stopped"
    assert card.chip.text() == "Stopped"
    assert card.summary.isVisibleTo(card) and "Downloaded" in card.summary.text()
    assert card.retry_button.isVisibleTo(card)
    assert part_files(out_dir) == []
    library = await window.ctx.library()
    done_rows = await library.reader().list_images(username="alice", dl_state="done")
    stopped_with = len(done_rows)
    listed = handle.bridge.last_progress.total
    assert listed and listed >= 20  # alice has ~25 images (one is not listed at every NSFW level)
    assert 0 < stopped_with < listed
    for row in done_rows:
        assert row.path and Path(row.path).is_file(), row.path
    job_row = await library.get_job(handle.job_id)
    assert job_row.state == "stopped"

    # run again: what is done is skipped, the rest is downloaded
    fake_civitai.set_latency(0)
    before = len(window.ctx.jobs.handles)
    card.retry_button.click()
    again = await new_handle(window, before)
    await wait_until(lambda: again.bridge.ended, 120, what="the second run")
    assert again.bridge.state == "done", again.bridge.summary
    summary = again.bridge.summary
    assert summary["done"] == listed - stopped_with
    assert summary["skipped"] >= stopped_with
    rows = await library.reader().list_images(username="alice", dl_state="done")
    assert len(rows) == listed
    on_disk = {p.stem for p in media_files(out_dir)}
    assert {str(r.id) for r in rows} <= on_disk
    assert part_files(out_dir) == []
    again_card = page.job_list.card_for(again)
    assert again_card.chip.text() == "Done"
    assert not again_card.retry_button.isVisibleTo(again_card)
    assert window.jobs_indicator.label.text() == "No jobs running"

    # both cards are finished: "Clear finished" removes them and the empty state returns
    assert page.clear_button.isEnabled()
    page.clear_button.click()
    assert page.job_list.cards == {} and not page.job_list.empty.isHidden()
    assert window.ctx.jobs.handles == [] and not page.clear_button.isEnabled()


async def test_every_mode_is_restored_with_the_page(window):
    """The page remembers its mode across restarts, the post and image modes too."""
    page = window.page("download")
    for mode in (5, 6, 1):
        page.mode.set_value(mode)
        state = page.save_state()
        page.mode.set_value(2)
        page.restore_state(state)
        assert page.mode.value() == mode
