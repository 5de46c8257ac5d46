"""Run the tags and convert jobs from their pages, after a download from the fake CivitAI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gui.conftest import media_files, wait_until
from tests.gui.test_download_flow import new_handle, start_download

pytestmark = pytest.mark.slow


async def download_alice(window, out_dir):
    _page, before = start_download(window, "alice", out_dir, workers=4)
    handle = await new_handle(window, before)
    await wait_until(lambda: handle.bridge.ended, 120, what="the download")
    assert handle.bridge.state == "done", handle.bridge.summary
    return handle


async def test_fetch_tags_from_the_tag_page(window, fake_civitai, out_dir):
    await download_alice(window, out_dir)
    window.show_page("tags")
    page = window.page("tags")
    await wait_until(lambda: "files on disk" in page.library_line.text(), 10)
    assert page.start_button.isEnabled(), page.start_button.toolTip()
    page.method.setCurrentIndex(page.method.findData("api"))
    page.workers.setValue(4)
    before = len(window.ctx.jobs.handles)
    page.start_button.click()
    handle = await new_handle(window, before)
    assert handle.kind == "tags"
    card = page.job_list.card_for(handle)
    assert card is not None
    await wait_until(lambda: handle.bridge.ended, 120, what="the tags job")
    summary = handle.bridge.summary
    assert handle.bridge.state == "done", summary
    assert summary["done"] > 0 and summary["failed"] == 0
    assert card.summary.text().startswith("Tagged")
    library = await window.ctx.library()
    reader = library.reader()
    downloaded = await reader.count_images(dl_state="done", username="alice")
    assert await reader.count_images(dl_state="done", tag_state="done") == downloaded
    # the sidecar next to a file carries its tags
    tagged_rows = [r for r in await reader.list_images(username="alice", dl_state="done") if await reader.tags_of(r.id)]
    assert tagged_rows, "no image got tags"
    row = tagged_rows[0]
    sidecar = json.loads(Path(row.path).with_name(f"{row.id}.json").read_text())
    names = {t["name"] for t in sidecar["tags"]}
    assert names == {t["name"] for t in await reader.tags_of(row.id)}
    await wait_until(lambda: f"{downloaded:,} tagged" in page.library_line.text(), 10)

    # nothing left to do: a second run finishes at once without fetching anything again
    fake_civitai.clear_log()
    before = len(window.ctx.jobs.handles)
    page.start_button.click()
    again = await new_handle(window, before)
    await wait_until(lambda: again.bridge.ended, 60)
    assert again.bridge.summary["done"] == 0
    assert not fake_civitai.requests("/api/trpc")


async def test_convert_from_the_converter_page(window, out_dir, tmp_path):
    await download_alice(window, out_dir)
    window.show_page("convert")
    page = window.page("convert")
    assert page.start_button.isEnabled(), page.start_button.toolTip()
    dest = tmp_path / "converted"
    page.to_folder.setChecked(True)
    page.dest.set_path(str(dest))
    page.quality.setValue(80)
    page.workers.setValue(2)
    page.batch.setValue(10)
    before = len(window.ctx.jobs.handles)
    page.start_button.click()
    handle = await new_handle(window, before)
    assert handle.kind == "convert"
    card = page.job_list.card_for(handle)
    await wait_until(lambda: handle.bridge.ended, 180, what="the convert job")
    summary = handle.bridge.summary
    assert handle.bridge.state == "done", summary
    assert summary["done"] > 0 and summary["failed"] == 0, summary
    assert "as WebP" in card.summary.text()
    webps = sorted(dest.rglob("*.webp"))
    assert webps and all(w.with_suffix(".json").exists() for w in webps)
    library = await window.ctx.library()
    assert await library.reader().count_images(cv_state="done") >= len(webps)
    # the originals stay in the download folder
    assert len(media_files(out_dir)) >= 20


async def test_convert_options_are_checked_before_starting(window):
    window.show_page("convert")
    page = window.page("convert")
    page.source.setText("nonsense")
    page.start_button.click()
    assert page.error.isVisibleTo(page) and "source must look like" in page.error.text().lower()
    page.source.clear()
    page.in_place.setChecked(True)
    page.start_button.click()  # asks first: in place removes originals
    assert page.confirm_box.isVisible()
    page.confirm_box.reject()
    assert window.ctx.jobs.handles == []


async def test_pages_without_their_job_say_so(qapp, data_dir, fake_civitai, monkeypatch):
    from civitgrab_desktop.gui.panels import work
    from tests.gui.conftest import close_window, make_window

    monkeypatch.setattr(work, "module_available", lambda name: False)
    w = make_window(data_dir, fake_civitai.base_url)
    try:
        for key in ("tags", "convert"):
            page = w.page(key)
            assert not page.start_button.isEnabled()
            assert "not available in this build" in page.start_button.toolTip()
            assert "not available in this build" in page.error.text()
            page.start()  # a shortcut press does nothing
        assert w.ctx.jobs.handles == []
    finally:
        await close_window(w)
        w.deleteLater()
