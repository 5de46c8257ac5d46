"""The Gallery page in the real window, over a library the real CLI downloaded from the replica:
thumbnails (made into the disk cache, painted), search and filters, the detail pane and its
actions, hover video previews (frames reach the sink), keyboard, drag out, delete, and the
one-image tags / convert jobs.

Async tests run on the qasync loop: they poll with wait_until (asyncio.sleep), never
qtbot.waitSignal / waitUntil.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel, QMessageBox

from civitgrab_desktop.core.civitai.urls import image_page_url
from civitgrab_desktop.core.library.store import LibraryStore
from civitgrab_desktop.core.media.thumbs import thumb_cache_path
from civitgrab_desktop.gui.gallery.query import GalleryQuery
from civitgrab_desktop.gui.gallery.thumbnails import bucket_for
from civitgrab_desktop.gui.gallery.view import PREFETCH_SCREENS
from tests.gui.conftest import wait_until
from tests.gui.test_gallery_support import (  # noqa: F401 - fixtures
    fresh_library,
    open_window,
    replica_library,
    settle_thumbnails,
    shut,
)

pytestmark = pytest.mark.gui


def fully_visible_rows(page) -> list[int]:
    view = page.view
    area = view.viewport().rect()
    first, last = view.visible_rows()
    return [r for r in range(first, last + 1) if area.contains(view.visualRect(page.model.index(r)))]


def words_of(text: str | None) -> list[str]:
    return re.findall(r"\w+", (text or "").lower())


async def apply_filters(page, what: str, change) -> set[int]:
    """Change a filter through its widget, wait for the refresh it starts, return the ids."""
    before = page.pending_refresh
    change()
    await wait_until(lambda: page.pending_refresh is not before, 5, what=f"the {what} filter to apply")
    await asyncio.wait_for(asyncio.shield(page.pending_refresh), 10)
    return set(page.model.ids)


# -- thumbnails -----------------------------------------------------------------------------------


async def test_thumbnails_are_made_into_the_disk_cache_and_painted(replica_library):
    window = await open_window(replica_library)
    try:
        page = window.page("gallery")
        downloaded = replica_library.rows()
        assert page.model.rowCount() == len(downloaded) == 36
        # newest first, like the default sort
        newest = sorted(downloaded, key=lambda r: (r["created_at"], r["id"]), reverse=True)
        assert page.model.ids == [r["id"] for r in newest]

        await settle_thumbnails(page)
        page.loader.clear_disk()  # start cold: other tests of this module may have made them
        page.loader.stats.clear()
        page.view.viewport().update()
        page.view._update_visible()  # and the next screen, prefetched
        await settle_thumbnails(page)

        rows = fully_visible_rows(page)
        assert len(rows) >= 6
        items = [page.model.item(r) for r in rows]
        assert any(item.is_video for item in items), "the newest items include bob_art's videos"
        size = page._thumb_px()
        for item in items:
            disk = thumb_cache_path(window.ctx.services.paths.thumbnails, item.id, bucket_for(size))
            assert disk.is_file(), f"no cached thumbnail for {item.id}"
            assert page.loader.cached(item.id, size) is not None
        assert page.loader.stats["made"] >= 1 and page.loader.stats["frame"] >= 1  # images and video frames

        # painted: the centre of each card's thumbnail area shows the thumbnail's centre pixel
        shot = page.view.viewport().grab().toImage()
        for row, item in zip(rows, items, strict=True):
            target = page.view.delegate_.thumb_rect(page.view.visualRect(page.model.index(row)))
            thumb = page.loader.cached(item.id, size)
            painted = shot.pixelColor(target.center())
            expected = thumb.pixelColor(thumb.width() // 2, thumb.height() // 2)
            assert abs(painted.red() - expected.red()) <= 12 and abs(painted.green() - expected.green()) <= 12, (
                f"card {item.id} does not show its thumbnail"
            )

        # a second window finds them on disk: nothing is made again
        await shut(window)
        window = await open_window(replica_library)
        page = window.page("gallery")
        await settle_thumbnails(page)
        assert page.loader.stats["made"] == 0 and page.loader.stats["frame"] == 0
        assert page.loader.stats["disk"] >= len(rows)
    finally:
        await shut(window)


async def test_scrolling_keeps_only_what_is_on_screen_queued(replica_library):
    """Flinging the grid from top to bottom queues every screen it paints on the way; when the
    view settles, the requests for cards that scrolled away are dropped, unmade."""
    window = await open_window(replica_library)
    busy = threading.Event()
    try:
        page = window.page("gallery")
        page.size_slider.setValue(96)  # small cards
        window.resize(window.width(), window.minimumSizeHint().height())  # a short window: several screens
        await settle_thumbnails(page)
        page.loader.clear_memory()
        view, bar, loader = page.view, page.view.verticalScrollBar(), page.loader
        assert bar.maximum() > 0, "the grid must be taller than the window"
        # Slow thumbnail work (a cold disk): the loader's worker threads are busy until released.
        for _ in range(loader.workers):
            loader._executor.submit(busy.wait, 30)
        dropped_before = loader.stats["dropped"]
        # One fling, without yielding to the loop: each step paints (and so queues) one screen.
        bar.setValue(0)
        requested: set[int] = set()
        while True:
            view.viewport().repaint()
            requested |= {key[0] for key in loader._pending}
            if bar.value() == bar.maximum():
                break
            bar.setValue(min(bar.maximum(), bar.value() + view.viewport().height()))
        first, last = view.visible_rows()
        span = last - first + 1
        far_above = set(page.model.ids[: max(0, first - span // 2)])  # not even worth prefetching
        assert far_above & requested, "painting the top screens queued nothing"
        # The view notices the scroll (after its short debounce) and trims the queue.
        await wait_until(lambda: loader.stats["dropped"] > dropped_before, 5, what="the queue trimmed")
        queued = {key[0] for key in loader._pending}
        assert not (queued & far_above), f"{len(queued & far_above)} cards that scrolled away are still queued"
        assert queued <= set(page.model.ids[first - span // 2 : last + 1 + span * PREFETCH_SCREENS])
        busy.set()
        await settle_thumbnails(page)  # and the cards now on screen get their thumbnails
        in_memory = {key[0] for key in loader._memory}
        assert set(page.model.ids[first : last + 1]) <= in_memory | set(loader._failed)
    finally:
        busy.set()
        await shut(window)


# -- filters --------------------------------------------------------------------------------------


async def test_search_and_filters_narrow_the_grid(replica_library):
    rows = replica_library.rows()
    with LibraryStore(replica_library.data_dir / "library.sqlite3", read_only=True) as store:
        tags_by_image = {r["id"]: [t["name"] for t in store.tags_of(r["id"])] for r in rows}
    window = await open_window(replica_library)
    try:
        page = window.page("gallery")
        bar = page.filter_bar

        # a prompt word, typed into the search box (debounced)
        word = "lighthouse"
        expected = {r["id"] for r in rows if word in words_of(r["prompt"])}
        assert 0 < len(expected) < len(rows)
        started = time.perf_counter()
        got = await apply_filters(page, "search", lambda: bar.search.setText(word))
        assert got == expected
        assert (time.perf_counter() - started) < 2.0  # 250 ms debounce + the query
        assert "match" in bar.count_label.text()
        # word starts match too; words can come in any order
        assert await apply_filters(page, "search", lambda: bar.search.setText("lightho")) == expected
        bar.search.clear()
        await apply_filters(page, "search", bar._emit_now)

        # media type: videos
        videos = {r["id"] for r in rows if r["type"] == "video"}
        assert len(videos) == 3
        got = await apply_filters(page, "type", lambda: bar.media_type.setCurrentIndex(bar.media_type.findData("video")))
        assert got == videos
        assert all(page.model.item_by_id(i) is None or page.model.item_by_id(i).is_video for i in got)
        await apply_filters(page, "type", lambda: bar.media_type.setCurrentIndex(0))

        # NSFW level X (8)
        x_rated = {r["id"] for r in rows if r["nsfw_level"] == 8}
        assert x_rated
        assert await apply_filters(page, "nsfw", lambda: bar.nsfw_actions[8].setChecked(True)) == x_rated
        assert bar.nsfw.text() == "NSFW: X"
        both = {r["id"] for r in rows if r["nsfw_level"] in (8, 16)}
        assert await apply_filters(page, "nsfw", lambda: bar.nsfw_actions[16].setChecked(True)) == both
        await apply_filters(page, "nsfw", bar._clear_nsfw)

        # a community tag (exact name, any case)
        name = "long hair"
        tagged = {i for i, names in tags_by_image.items() if name in names}
        assert 0 < len(tagged) < len(rows)
        assert await apply_filters(page, "tag", lambda: bar.tag.setText("Long Hair")) == tagged
        # combined with the search box: both apply
        both = {i for i in tagged if "smile" in words_of(next(r["prompt"] for r in rows if r["id"] == i))}
        assert await apply_filters(page, "search", lambda: bar.search.setText("smile")) == both

        # user, tag state, converted, dates
        bar.reset()
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 10)
        assert len(page.model.ids) == len(rows)
        bob = {r["id"] for r in rows if r["username"] == "bob_art"}
        assert await apply_filters(page, "user", lambda: bar.username.setText("BOB_ART")) == bob
        bar.reset()
        assert await apply_filters(page, "tags state", lambda: bar.tag_state.setCurrentIndex(
            bar.tag_state.findData("never"))) == set()
        bar.reset()
        assert await apply_filters(page, "converted", lambda: bar.converted.setCurrentIndex(
            bar.converted.findData(True))) == set()
        bar.reset()
        cut = sorted(r["created_at"] for r in rows)[len(rows) // 2][:10]
        from datetime import date

        later = {r["id"] for r in rows if r["created_at"][:10] >= cut}
        got = await apply_filters(page, "date", lambda: (bar.date_from.setDate(date.fromisoformat(cut)),
                                                         bar.use_from.setChecked(True)))
        assert got == later

        # nothing matches: the empty state says so
        bar.reset()
        await apply_filters(page, "search", lambda: bar.search.setText("zzzznotaword"))
        assert page.model.rowCount() == 0 and page.empty.isVisibleTo(page.view)
        assert "Nothing matches" in page.empty.text()
    finally:
        await shut(window)


async def test_sort_orders(replica_library):
    rows = replica_library.rows()
    window = await open_window(replica_library)
    try:
        page = window.page("gallery")
        for key, expected in (
            ("id_asc", sorted(r["id"] for r in rows)),
            ("reactions", [r["id"] for r in sorted(rows, key=lambda r: (r["reactions"], r["id"]), reverse=True)]),
            ("oldest", [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]))]),
        ):
            before = page.pending_refresh
            page.sort.setCurrentIndex(page.sort.findData(key))
            await wait_until(lambda b=before: page.pending_refresh is not b)
            await asyncio.wait_for(asyncio.shield(page.pending_refresh), 10)
            assert page.model.ids == expected, key
    finally:
        await shut(window)


# -- detail pane ----------------------------------------------------------------------------------


async def test_detail_pane_shows_metadata_tags_sources_and_copies_the_prompt(replica_library):
    showcase = replica_library.fake.dataset.named["tags_showcase"]
    with LibraryStore(replica_library.data_dir / "library.sqlite3", read_only=True) as store:
        row = store.image(showcase)
        tags = store.tags_of(showcase)
        sources = store.sources_for(showcase)
        lora_rows = [r for r in store.list_images(dl_state="done", limit=None)
                     if any(str(res.get("type", "")).lower() == "lora" for res in r.meta.get("civitaiResources") or ())]
    window = await open_window(replica_library)
    try:
        page = window.page("gallery")
        assert await page.show_item(showcase)
        detail = page.detail
        assert detail.image_id == showcase and detail.isVisibleTo(page)
        assert page.model.id_at(page.view.currentIndex().row()) == showcase
        assert detail.title.text() == f"Image #{showcase}"
        assert detail.prompt.text() == row.meta["prompt"]
        assert detail.negative.text() == row.meta["negativePrompt"] and detail.negative.isVisibleTo(detail)
        assert detail.fields["Seed"].text() == str(row.meta["seed"])
        assert detail.fields["Sampler"].text() == row.meta["sampler"]
        assert detail.fields["Steps"].text() == str(row.meta["steps"])
        assert detail.fields["CFG scale"].text() == f"{float(row.meta['cfgScale']):g}"
        assert detail.fields["Model"].text() == row.checkpoint_name
        assert detail.fields["User"].text() == "alice"
        assert detail.fields["File"].path() == row.path and detail.fields["File"].toolTip() == row.path
        assert detail.fields["File"].text().replace("\u200b", "") == row.path  # wraps at its separators
        assert detail.fields["CivitAI"].text() == image_page_url(replica_library.base_url, showcase)

        # tags with their scores, highest first
        assert tags
        chips = [w.text() for w in detail.tags_box.findChildren(QLabel) if not w.isHidden()]
        assert chips == [f"{t['name']}  {t['score']}" for t in tags]
        # the query that found it
        assert sources and "User" in detail.sources_label.text() and "alice" in detail.sources_label.text()

        # copy prompt
        QGuiApplication.clipboard().clear()
        detail.buttons["copy_prompt"].click()
        assert QGuiApplication.clipboard().text() == row.meta["prompt"]
        assert detail.buttons["open"].isEnabled() and detail.buttons["reveal"].isEnabled()

        # the image itself is shown, scaled
        await wait_until(lambda: detail.media.current_image() is not None, 10, what="the image in the pane")
        assert not detail.media.is_video

        # LoRAs from civitaiResources
        assert lora_rows
        lora = lora_rows[0]
        await page.show_item(lora.id)
        # CivitAI names most LoRAs by version id alone; those are listed too, with their weights
        names = [res.get("modelVersionName") or f"version {res['modelVersionId']}"
                 for res in lora.meta["civitaiResources"] if res.get("type") == "lora"]
        assert names and all(name in detail.fields["LoRAs"].text() for name in names)

        # a video plays in the pane (frames reach its sink)
        video = next(r for r in replica_library.rows() if r["type"] == "video")
        await page.show_item(video["id"])
        assert detail.media.is_video
        await wait_until(lambda: detail.media.frames_received >= 2, 15, what="video frames in the detail pane")
        assert not detail.buttons["convert"].isEnabled()  # videos are not converted
    finally:
        await shut(window)


# -- hover preview --------------------------------------------------------------------------------


async def test_hovering_a_video_card_plays_it_in_place_and_leaving_stops_it(replica_library):
    window = await open_window(replica_library)
    try:
        page = window.page("gallery")
        view = page.view
        # bring two video cards on screen together (where they fall depends on the data and the
        # window's width, not on the preview): smaller cards, the first video at the top
        page.size_slider.setValue(128)
        videos = [r for r in range(page.model.rowCount()) if page.model.item(r) and page.model.item(r).is_video]
        assert len(videos) >= 2
        view.scrollTo(page.model.index(videos[0]), view.ScrollHint.PositionAtTop)
        await settle_thumbnails(page)
        rows = fully_visible_rows(page)
        video_rows = [r for r in rows if page.model.item(r).is_video]
        image_rows = [r for r in rows if not page.model.item(r).is_video]
        assert len(video_rows) >= 2 and image_rows, (videos, rows)
        first = page.model.item(video_rows[0])

        # the pointer moves onto the card
        QTest.mouseMove(view.viewport(), view.visualRect(page.model.index(video_rows[0])).center())
        await wait_until(lambda: page.preview.active_id == first.id, 5, what="the preview to start")
        await wait_until(lambda: page.preview.frames_received >= 5, 15, what="preview frames in the sink")
        assert page.preview.is_playing()
        frame = page.preview.frame(first.id)
        assert frame is not None and not frame.isNull()
        # the card paints the playing frame instead of its thumbnail
        painted_before = view.delegate_.paint_count
        await wait_until(lambda: view.delegate_.paint_count > painted_before, 5, what="the card to repaint")

        # another video: the one player moves there (at most one plays)
        second = page.model.item(video_rows[1])
        received = page.preview.frames_received
        QTest.mouseMove(view.viewport(), view.visualRect(page.model.index(video_rows[1])).center())
        await wait_until(lambda: page.preview.active_id == second.id, 5, what="the second preview")
        await wait_until(lambda: page.preview.frames_received > received + 2, 15, what="frames of the second")
        assert page.preview.frame(first.id) is None

        # an image card: nothing plays
        QTest.mouseMove(view.viewport(), view.visualRect(page.model.index(image_rows[0])).center())
        await wait_until(lambda: page.preview.active_id is None, 5, what="the preview to stop")
        assert not page.preview.is_playing()

        # a hover preview pauses the detail pane's video; it resumes after
        await page.show_item(first.id)
        await wait_until(lambda: page.detail.media.is_playing(), 10, what="the pane's video")
        view.hover_row(page.model.row_of(second.id))
        await wait_until(lambda: not page.detail.media.is_playing(), 5, what="the pane to pause")
        page.view._end_hover()
        await wait_until(lambda: page.detail.media.is_playing(), 5, what="the pane to resume")
    finally:
        await shut(window)


# -- keyboard, drag, quick preview ----------------------------------------------------------------


async def test_keyboard_enter_space_arrows_and_drag_out(replica_library):
    window = await open_window(replica_library)
    try:
        page = window.page("gallery")
        view = page.view
        view.setFocus()
        view.setCurrentIndex(page.model.index(0))
        per_row = max(1, view.viewport().width() // view.gridSize().width())
        QTest.keyClick(view, Qt.Key.Key_Right)
        assert view.currentIndex().row() == 1
        QTest.keyClick(view, Qt.Key.Key_Down)
        assert view.currentIndex().row() == 1 + per_row
        image_id = page.model.id_at(view.currentIndex().row())

        page.set_detail_visible(False)
        QTest.keyClick(view, Qt.Key.Key_Return)  # Enter: the detail pane
        await wait_until(lambda: page.detail.image_id == image_id, 10, what="the detail pane")
        assert page.detail.isVisibleTo(page)

        QTest.keyClick(view, Qt.Key.Key_Space)  # Space: quick preview
        assert page.quick.isVisible() and page.quick.image_id == image_id
        await wait_until(lambda: page.quick.media.current_image() is not None, 10, what="the preview image")
        QTest.keyClick(page.quick, Qt.Key.Key_Right)  # next
        assert page.quick.image_id == page.model.id_at(view.currentIndex().row()) != image_id
        QTest.keyClick(page.quick, Qt.Key.Key_Escape)
        assert not page.quick.isVisible()

        # Enter on the item already in the pane opens the full view
        view.setCurrentIndex(page.model.index(page.model.row_of(page.detail.image_id)))
        QTest.keyClick(view, Qt.Key.Key_Return)
        assert page.quick.isVisible()
        QTest.keyClick(page.quick, Qt.Key.Key_Space)
        assert not page.quick.isVisible()

        # dragging cards out carries their files as URLs
        view.selectionModel().clear()
        for row in (0, 2):
            view.selectionModel().select(page.model.index(row), view.selectionModel().SelectionFlag.Select)
        mime = page.model.mimeData(view.selectionModel().selectedIndexes())
        files = [page.model.item(0).path, page.model.item(2).path]
        assert sorted(u.toLocalFile() for u in mime.urls()) == sorted(files)
        assert all(Path(f).is_file() for f in files) and mime.urls()[0] == QUrl.fromLocalFile(mime.urls()[0].toLocalFile())
        assert page.model.supportedDragActions() == Qt.DropAction.CopyAction
        assert view.dragEnabled()

        # Ctrl+F focuses the search box
        # (the window's focus widget: after the quick preview closes, offscreen Qt may leave no
        # window active, and then no widget "has" focus although the search box is the one to get it)
        window.find_action.trigger()
        assert window.focusWidget() is page.filter_bar.search
        assert page.filter_bar.search.hasFocus() or QGuiApplication.focusWindow() is not window.windowHandle()
    finally:
        await shut(window)


# -- actions that change things -------------------------------------------------------------------


async def test_convert_in_place_from_the_gallery_asks_and_enter_does_not_replace_the_original(fresh_library):
    window = await open_window(fresh_library)
    try:
        window.page("convert").in_place.setChecked(True)  # the Converter page's options apply here
        page = window.page("gallery")
        item = next(page.model.item(r) for r in range(page.model.rowCount()) if page.model.item(r).type == "image")
        original = Path(item.path)
        before = len(window.ctx.jobs.handles)
        box = page.convert(item.id)
        assert isinstance(box, QMessageBox) and box.isVisible() and str(item.id) in box.text()
        assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)  # Enter must not replace it
        QTest.keyClick(box, Qt.Key.Key_Return)
        await asyncio.sleep(0.3)
        assert len(window.ctx.jobs.handles) == before and original.is_file()

        box = page.convert(item.id)
        next(b for b in box.buttons() if b.text() == "Convert in place").click()
        await wait_until(lambda: len(window.ctx.jobs.handles) > before, 10, what="the convert job")
        handle = window.ctx.jobs.handles[-1]
        await wait_until(lambda: handle.bridge.ended, 120, what="the convert job to end")
        assert handle.bridge.state == "done", handle.bridge.summary
        assert not original.exists() and original.with_suffix(".webp").is_file()  # replaced, after verification
    finally:
        await shut(window)


async def test_delete_key_asks_then_removes_the_files_and_the_row(fresh_library):
    window = await open_window(fresh_library)
    try:
        page = window.page("gallery")
        view = page.view
        row = 0
        item = page.model.item(row)
        media = Path(item.path)
        sidecar = media.with_name(f"{item.id}.json")
        assert media.is_file() and sidecar.is_file()
        count = page.model.rowCount()
        view.setFocus()
        view.setCurrentIndex(page.model.index(row))
        QTest.keyClick(view, Qt.Key.Key_Delete)
        box = page._confirm
        assert isinstance(box, QMessageBox) and box.isVisible() and str(item.id) in box.text()
        # Cancel keeps everything
        box.button(QMessageBox.StandardButton.Cancel).click()
        await asyncio.sleep(0.2)
        assert media.is_file() and page.model.rowCount() == count

        QTest.keyClick(view, Qt.Key.Key_Delete)
        box = page._confirm
        delete = next(b for b in box.buttons() if b.text() == "Delete")
        delete.click()
        await wait_until(lambda: page.model.rowCount() == count - 1, 10, what="the row to go")
        await wait_until(lambda: not media.exists(), 5, what="the file to go")
        assert not sidecar.exists()
        assert not media.with_name(f"{item.id}_meta.txt").exists()
        assert item.id not in page.model.ids
        with LibraryStore(fresh_library.data_dir / "library.sqlite3", read_only=True) as store:
            assert store.image(item.id) is None and store.sources_for(item.id) == []
        # the other files are untouched
        other = page.model.item(0)
        assert other is None or Path(other.path).is_file()
    finally:
        await shut(window)


async def test_delete_leaves_files_outside_known_folders(fresh_library, tmp_path):
    import shutil

    from civitgrab_desktop.gui.gallery import actions

    window = await open_window(fresh_library)
    try:
        page = window.page("gallery")
        item = page.model.item(0)
        # the library points one source at a file outside every known folder
        stray = tmp_path / "elsewhere" / Path(item.path).name
        stray.parent.mkdir()
        shutil.copy(item.path, stray)
        library = await window.ctx.library()
        await library.mark_source_linked(item.id, "model", "99", str(stray))
        roots = await actions.known_roots(window.ctx, library)
        assert roots.covers(fresh_library.downloads)
        outcome = await page.delete_ids([item.id])
        assert item.path in outcome.removed
        assert stray.is_file() and any(p == str(stray) for p, _why in outcome.kept)
    finally:
        await shut(window)


async def test_fetch_tags_now_and_convert_now_work_on_one_image(fresh_library, tmp_path):
    window = await open_window(fresh_library)
    try:
        page = window.page("gallery")
        rows = fresh_library.rows()
        assert all(r["tag_state"] == "never" for r in rows)
        target = next(r for r in rows if r["type"] == "image" and r["mime"] in ("image/png", "image/jpeg"))
        await page.show_item(target["id"])
        detail = page.detail
        assert "not fetched" in detail.tags_note.text()

        before = len(window.ctx.jobs.handles)
        detail.buttons["tags"].click()
        await wait_until(lambda: len(window.ctx.jobs.handles) > before, 10, what="the tags job")
        handle = window.ctx.jobs.handles[-1]
        await wait_until(lambda: handle.bridge.ended, 60, what="the tags job to end")
        assert handle.bridge.state == "done", handle.bridge.summary
        with LibraryStore(fresh_library.data_dir / "library.sqlite3", read_only=True) as store:
            states = {r.id: r.tag_state for r in store.list_images(limit=None)}
            tags = store.tags_of(target["id"])
        assert states[target["id"]] == "done"
        assert [i for i, s in states.items() if s != "never"] == [target["id"]]  # only this one
        await wait_until(lambda: page.model.item_by_id(target["id"]).tag_state == "done", 10, what="the card")
        if tags:
            await wait_until(lambda: detail.tags_box.findChildren(QLabel), 10, what="the tag chips")

        # convert now: to the Converter page's folder
        dest = tmp_path / "converted" / "CivitAI_Browse"
        window.page("convert").to_folder.setChecked(True)
        window.page("convert").dest.set_path(str(dest))
        before = len(window.ctx.jobs.handles)
        detail.buttons["convert"].click()
        await wait_until(lambda: len(window.ctx.jobs.handles) > before, 10, what="the convert job")
        handle = window.ctx.jobs.handles[-1]
        await wait_until(lambda: handle.bridge.ended, 120, what="the convert job to end")
        assert handle.bridge.state == "done", handle.bridge.summary
        with LibraryStore(fresh_library.data_dir / "library.sqlite3", read_only=True) as store:
            conversion = store.conversion_of(target["id"])
            converted = [r.id for r in store.list_images(cv_state="done", limit=None)]
        assert converted == [target["id"]]
        assert conversion is not None and Path(conversion.webp_path).is_file()
        assert Path(conversion.webp_path).is_relative_to(dest)
        await wait_until(lambda: page.model.item_by_id(target["id"]).cv_state == "done", 10, what="the WEBP badge")
        await wait_until(lambda: "WebP" in detail.fields, 10, what="the WebP path in the pane")
    finally:
        await shut(window)


async def test_the_page_remembers_its_filters_sort_and_size(replica_library):
    window = await open_window(replica_library)
    try:
        page = window.page("gallery")
        page.size_slider.setValue(240)
        await apply_filters(page, "type", lambda: page.filter_bar.media_type.setCurrentIndex(
            page.filter_bar.media_type.findData("video")))
        page.sort.setCurrentIndex(page.sort.findData("reactions"))
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 10)
        state = page.save_state()
    finally:
        await shut(window)
    window = await open_window(replica_library, keep_state=True)
    try:
        page = window.page("gallery")
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 10)
        assert page.size_slider.value() == 240 and page.view.thumb_size() == 240
        assert page.sort_key == "reactions"
        assert page.filter_bar.query().media_type == "video"
        assert page.model.rowCount() == 3
        assert state["query"]["media_type"] == "video"
    finally:
        await shut(window)


def test_query_round_trips_and_builds_library_filters():
    from datetime import date

    q = GalleryQuery(text=" red  fox ", media_type="video", nsfw_levels=(8, 1), username="Bob", model_version="v1",
                     tag="1girl", tag_state="done", converted=False, date_from=date(2025, 1, 1),
                     date_to=date(2025, 1, 31))
    assert GalleryQuery.from_state(q.to_state()) == q
    f = q.to_filter(dl_state="done")
    assert f.text == "red fox" and f.type == "video" and f.nsfw_levels == [1, 8] and f.username == "Bob"
    assert f.model_version_name == "v1" and f.tags == ["1girl"] and f.tag_state == "done"
    assert f.cv_state == ["never", "failed", "skipped"] and f.dl_state == "done"
    assert f.created_after == "2025-01-01" and f.created_before == "2025-02-01"
    assert q.to_filter(fts=False).search == "red fox"
    assert GalleryQuery().is_empty() and q.active_filters() == 8
    assert GalleryQuery.from_state({"media_type": "bogus", "nsfw_levels": ["x", 4]}) == GalleryQuery(nsfw_levels=(4,))


def test_generation_info_reads_both_meta_shapes():
    from civitgrab_desktop.gui.gallery.metadata import generation_info

    info = generation_info({
        "prompt": "p", "negativePrompt": "n", "seed": 12, "sampler": "Euler a", "steps": 30, "cfgScale": 7.0,
        "Model": "juggernautXL", "Clip skip": "2",
        "resources": [{"name": "detailTweaker", "type": "lora", "weight": 0.6}, {"name": "x", "type": "model"}],
        "civitaiResources": [{"type": "lora", "modelVersionId": 20, "modelVersionName": "v1", "weight": 0.8},
                             {"type": "lora", "modelVersionId": 249861, "weight": 0.65},
                             {"type": "lora"}, {"type": "checkpoint", "modelVersionName": "v9"}, "junk"],
    })
    assert (info.prompt, info.negative_prompt, info.seed, info.sampler, info.steps, info.cfg_scale) == (
        "p", "n", "12", "Euler a", "30", "7")
    assert [r.label() for r in info.loras] == ["v1 (0.8)", "version 249861 (0.65)", "detailTweaker (0.6)"]
    assert info.loras[1].version_id == 249861
    assert info.model == "juggernautXL" and info.clip_skip == "2"
    assert generation_info(None, prompt="fallback").prompt == "fallback"
    assert generation_info({"seed": {"odd": 1}, "resources": "no"}).seed is None


async def test_no_qpoint_needed_for_an_empty_library(data_dir, fake_civitai):
    from tests.gui.conftest import make_window

    window = make_window(data_dir, fake_civitai.base_url)
    window.show()
    await window.started()
    try:
        window.show_page("gallery")
        page = window.page("gallery")
        await asyncio.wait_for(asyncio.shield(page.pending_refresh), 10)
        assert page.model.rowCount() == 0
        assert page.empty.isVisibleTo(page.view) and "No downloads yet" in page.empty.text()
        assert page.view.indexAt(QPoint(10, 10)).isValid() is False
    finally:
        await shut(window)


def test_playback_guard_suspends_resumes_and_drops_deleted_owners(qapp):
    """One video at a time across windows; a closed window's paused player is never called."""
    import shiboken6
    from PySide6.QtCore import QObject

    from civitgrab_desktop.gui.gallery.video import PlaybackGuard

    class Owner(QObject):
        def __init__(self):
            super().__init__()
            self.calls: list[str] = []

        def suspend(self):
            self.calls.append("suspend")
            self.setProperty("suspended", True)  # like a player: raises once the C++ side is gone

        def resume(self):
            self.calls.append("resume")
            self.setProperty("suspended", False)

    guard = PlaybackGuard()
    pane, hover, other = Owner(), Owner(), Owner()
    guard.acquire(pane)
    guard.acquire(hover)
    assert pane.calls == ["suspend"] and guard.active() is hover
    guard.release(hover)
    assert pane.calls == ["suspend", "resume"] and guard.active() is pane
    shiboken6.delete(pane)  # its window closed with the video still on the stack
    guard.acquire(other)
    assert guard.active() is other and pane.calls == ["suspend", "resume"]
    guard.release(other)
    assert guard.active() is None


def test_browse_ids_rowid_subqueries_select_the_same_rows_as_direct_conditions(replica_library):
    """browse_ids writes indexed conditions as rowid subqueries (for speed on 100,000 items):
    every filter and order gives exactly the rows, in the order, the plain conditions give."""
    from civitgrab_desktop.core.library.browsing import BROWSE_ORDERS
    from civitgrab_desktop.core.library.filters import ImageFilter

    rows = replica_library.rows()
    first_day = sorted(r["created_at"] for r in rows)[len(rows) // 3][:10]
    filters = [
        ImageFilter(dl_state="done"), ImageFilter(), ImageFilter(dl_state="done", type="video"),
        ImageFilter(dl_state="done", nsfw_levels=[8, 16]), ImageFilter(dl_state="done", username="BOB_ART"),
        ImageFilter(dl_state="done", model_version_name=next(r["model_version_name"] for r in rows
                                                           if r["model_version_name"])),
        ImageFilter(dl_state="done", tag_state="done"), ImageFilter(dl_state="done", cv_state=["never", "failed"]),
        ImageFilter(dl_state="done", created_after=first_day, created_before="2100-01-01"),
        ImageFilter(dl_state="done", type="image", nsfw_levels=[1, 2], tag_state="done", username="alice",
                    created_after=first_day, text="lighthouse"),
        ImageFilter(tag_state="done", type="image"), ImageFilter(dl_state="done", type=[]),
    ]
    with replica_library.store() as store:
        for f in filters:
            where, params = f.to_sql()
            for order in ("created_at", "reactions", "id", "downloaded_at", "username", "tags_count"):
                for descending in (True, False):
                    d = "DESC" if descending else "ASC"
                    tail = f", images.id {d}" if order != "id" else ""
                    expected = [r[0] for r in store.connection.execute(
                        f"SELECT images.id FROM images WHERE {where} ORDER BY {BROWSE_ORDERS[order]} {d}{tail}", params)]
                    assert store.browse_ids(f, order_by=order, descending=descending) == expected, (f, order, d)
    # the rowid form is the one used: a filter on the type reads idx_images_type, not the table
    sql, params = ImageFilter(dl_state="done", type="video").to_sql(via_rowid=["type"])
    assert "images.id IN (SELECT id FROM images WHERE type IN (?))" in sql and params == ["done", "video"]
    with pytest.raises(ValueError):
        ImageFilter().to_sql(via_rowid=["prompt"])
