"""The Saved queries page in the real window: a download saves its query; "Check for new" fetches
only what the replica published since (counted in its request log); pause,
edit and remove work from the buttons; the schedule checks by itself; Jobs → Check saved queries.
"""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QMessageBox

from tests.gui.conftest import wait_until
from tests.gui.test_download_flow import new_handle, start_download


def listing_requests(fake, username: str) -> int:
    return sum(1 for r in fake.requests("/api/v1/images") if dict(r.query).get("username") == username)


def cdn_requests(fake) -> int:
    return sum(1 for r in fake.request_log if r.path.count("/") >= 3 and not r.path.startswith(("/api/", "/images/")))


async def download(window, user: str, out_dir):
    _page, before = start_download(window, user, out_dir, workers=4)
    handle = await new_handle(window, before)
    await wait_until(lambda: handle.bridge.ended, 120, what=f"the download of {user}")
    assert handle.bridge.state == "done", handle.bridge.summary
    return handle


async def open_queries(window):
    window.show_page("queries")
    page = window.page("queries")
    await page.refresh()
    return page


def row_of(page, identifier: str) -> int:
    for row, q in enumerate(page.queries):
        if q["identifier"] == identifier:
            return row
    raise AssertionError(f"no saved query {identifier}: {[q['identifier'] for q in page.queries]}")


async def test_check_for_new_fetches_only_new_items_and_stops_early(window, fake_civitai, out_dir):
    await download(window, "alice", out_dir)
    await download(window, "bob_art", out_dir)
    page = await open_queries(window)
    assert [q["identifier"] for q in page.queries] == ["alice", "bob_art"]
    assert page.table.item(row_of(page, "alice"), 3).text() == "never"
    assert page.check_button.isEnabled()

    fresh = fake_civitai.publish_images("alice", 3)
    fake_civitai.clear_log()
    before = len(window.ctx.jobs.handles)
    page.check_button.click()
    await wait_until(lambda: len(window.ctx.jobs.handles) >= before + 2 and not page._checking, 120,
                     what="both checks to finish")
    handles = window.ctx.jobs.handles[before:]
    assert [h.kind for h in handles] == ["update", "update"]
    assert all(page.job_list.card_for(h) is not None for h in handles)
    by_title = {h.title: h for h in handles}
    assert by_title["Check username alice"].bridge.summary["done"] == 3
    assert by_title["Check username bob_art"].bridge.summary["done"] == 0

    library = await window.ctx.library()
    for image_id in fresh:
        row = await library.reader().image(image_id)
        assert row is not None and row.dl_state == "done"
    assert cdn_requests(fake_civitai) == 3  # only the new files
    # one listing request per query (the early stop over many pages: test_complete_and_update.py)
    assert listing_requests(fake_civitai, "alice") == 1 and listing_requests(fake_civitai, "bob_art") == 1
    await wait_until(lambda: page.table.item(row_of(page, "alice"), 4).text() == "3 new", 10)
    assert page.table.item(row_of(page, "bob_art"), 4).text() == "0 new"
    assert page.table.item(row_of(page, "alice"), 3).text() != "never"


async def test_pause_edit_and_remove_from_the_buttons(window, fake_civitai, out_dir, tmp_path):
    await download(window, "alice", out_dir)
    await download(window, "bob_art", out_dir)
    page = await open_queries(window)

    page.table.selectRow(row_of(page, "bob_art"))
    assert page.pause_button.text() == "Pause"
    page.pause_button.click()
    await wait_until(lambda: page.queries and page.queries[row_of(page, "bob_art")]["paused"], 10)
    assert page.table.item(row_of(page, "bob_art"), 2).text() == "Paused"
    page.table.selectRow(row_of(page, "bob_art"))
    assert page.pause_button.text() == "Resume"

    # a paused query is skipped by Check for new
    fake_civitai.publish_images("bob_art", 2)
    before = len(window.ctx.jobs.handles)
    page.check_button.click()
    await wait_until(lambda: len(window.ctx.jobs.handles) > before and not page._checking, 120)
    assert [h.title for h in window.ctx.jobs.handles[before:]] == ["Check username alice"]

    # edit: the query downloads into another folder with other options from now on
    page.table.selectRow(row_of(page, "alice"))
    page.edit_button.click()
    dialog = page.edit_dialog
    assert dialog.isVisible()
    elsewhere = tmp_path / "elsewhere"
    dialog.output.set_path(str(elsewhere))
    dialog.videos.setCurrentIndex(dialog.videos.findData("no_videos"))
    dialog.done(QDialog.DialogCode.Accepted)
    await wait_until(lambda: page.queries[row_of(page, "alice")]["options"]["output_dir"] == str(elsewhere), 10)
    assert "images only" in page.table.item(row_of(page, "alice"), 1).text()
    fresh = fake_civitai.publish_images("alice", 2, type="image")
    before = len(window.ctx.jobs.handles)
    page.table.selectRow(row_of(page, "alice"))
    page.check_selected_button.click()
    await wait_until(lambda: len(window.ctx.jobs.handles) > before and not page._checking, 120)
    assert window.ctx.jobs.handles[-1].bridge.summary["done"] == 2
    landed = {int(p.stem) for p in elsewhere.rglob("*") if p.suffix in (".png", ".jpeg", ".webp", ".mp4", ".webm")}
    assert set(fresh) <= landed  # the new folder (known items are linked in, not fetched again)
    assert not any(p.suffix in (".mp4", ".webm") for p in elsewhere.rglob("*")), "images only now"

    # remove asks first; Cancel keeps it, Remove forgets it (files stay)
    page.table.selectRow(row_of(page, "bob_art"))
    page.remove_button.click()
    box = page.confirm_box
    assert isinstance(box, QMessageBox) and box.isVisible() and "bob_art" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    await wait_until(lambda: not box.isVisible(), 5)
    assert len(page.queries) == 2
    page.remove_button.click()
    box = page.confirm_box
    next(b for b in box.buttons() if b.text() == "Remove").click()
    await wait_until(lambda: [q["identifier"] for q in page.queries] == ["alice"], 10)
    assert any(out_dir.rglob("*.json")), "the files stay"


async def test_the_schedule_and_the_menu_action_check_by_themselves(window, fake_civitai, out_dir):
    await download(window, "alice", out_dir)
    page = await open_queries(window)
    assert not page.schedule_timer.isActive() and "off" in page.schedule_label.text()
    window.ctx.settings.set("update_every_hours", 6)
    window.ctx.settingsChanged.emit()
    assert page.schedule_timer.isActive() and page.schedule_timer.interval() == 6 * 3_600_000
    assert "every 6 hours" in page.schedule_label.text()

    fake_civitai.publish_images("alice", 1)
    before = len(window.ctx.jobs.handles)
    page.schedule_timer.timeout.emit()  # what the timer does after 6 hours
    await wait_until(lambda: len(window.ctx.jobs.handles) > before and not page._checking, 120)
    assert window.ctx.jobs.handles[-1].bridge.summary["done"] == 1

    window.show_page("download")
    fake_civitai.publish_images("alice", 2)
    before = len(window.ctx.jobs.handles)
    next(a for a in window.actions() if a.shortcut().toString() == "Ctrl+U").trigger()
    assert window.current_page() is page
    await wait_until(lambda: len(window.ctx.jobs.handles) > before and not page._checking, 120)
    assert window.ctx.jobs.handles[-1].bridge.summary["done"] == 2


async def test_a_download_of_an_unknown_user_leaves_no_saved_query(window, out_dir):
    _page, before = start_download(window, "grace, nobody_here_at_all", out_dir)
    handle = await new_handle(window, before)
    await wait_until(lambda: not handle.running, 60, what="the download")
    page = await open_queries(window)
    assert [q["identifier"] for q in page.queries] == ["grace"]
