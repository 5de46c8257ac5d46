"""The gallery shows what is in the file (prompt, settings, tags, each with its source), as plain
text; the context menu and the Converter page rewrite converted files' metadata from the library.

The library is downloaded and converted by the real CLI from the replica; one WebP is then given a
hostile prompt (markup, as a prompt can hold) the way an old or foreign tool could have written it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from civitgrab_desktop.core.library.store import LibraryStore
from civitgrab_desktop.core.media.embed import SourceMetadata, build_metadata, read_file_xmp
from civitgrab_desktop.core.media.exif import read_exif
from civitgrab_desktop.core.media.webp import insert_metadata
from tests.gui.conftest import wait_until
from tests.gui.test_gallery_support import (  # noqa: F401 - fixtures
    fresh_library,
    open_window,
    run_cli,
    shut,
)

HOSTILE = "<b>bold</b> <img src='file:///etc/passwd'> <a href='x'>link</a> &amp; <script>x</script>"


def convert_all(library) -> dict[int, Path]:
    run_cli(library.data_dir, library.base_url, "convert", "--dest", str(library.root / "webp"), cwd=library.root)
    with LibraryStore(library.data_dir / "library.sqlite3", read_only=True) as store:
        return {r.id: Path(store.conversion_of(r.id).webp_path)
                for r in store.list_images(cv_state="done", type="image", limit=None)}


def menu_action(page, image_id: int, text: str):
    row = page.model.ids.index(image_id)
    page.view.setCurrentIndex(page.model.index(row))
    pos = page.view.viewport().mapToGlobal(page.view.visualRect(page.model.index(row)).center())
    menu = page._context_menu(pos)
    action = next(a for a in menu.actions() if a.text() == text)
    return menu, action


async def test_detail_shows_the_files_metadata_as_plain_text_with_its_sources(fresh_library):
    webps = convert_all(fresh_library)
    target, webp = next(iter(webps.items()))
    parameters = f"{HOSTILE}\nNegative prompt: <i>neg</i>\nSteps: 33, Sampler: <u>Euler</u>, CFG scale: 6.5, Seed: 777"
    built = build_metadata({"id": target, "meta": {"prompt": HOSTILE}}, [{"name": "<b>tag</b>", "score": 1}],
                           SourceMetadata(parameters))
    insert_metadata(webp, built.exif.data, built.xmp)

    window = await open_window(fresh_library)
    try:
        page = window.page("gallery")
        assert await page.show_item(target)
        detail = page.detail
        assert detail.prompt.textFormat() == Qt.TextFormat.PlainText  # never rendered as HTML
        assert detail.prompt.text() == HOSTILE
        assert detail.negative.textFormat() == Qt.TextFormat.PlainText and detail.negative.text() == "<i>neg</i>"
        assert detail.prompt_source.text() == "From the file: EXIF UserComment (A1111 parameters)"
        assert detail.fields["Steps"].text() == "33" and detail.fields["Seed"].text() == "777"
        assert detail.fields["Sampler"].text() == "<u>Euler</u>"
        assert detail.fields["Sampler"].textFormat() == Qt.TextFormat.PlainText
        assert detail.settings_source.text() == "Settings from the file: EXIF UserComment (A1111 parameters)"
        assert detail.tags_source.text() == "In the file: 1 tag in XMP dc:subject"
        assert detail.shown_prompt() == HOSTILE

        # the context menu rewrites the file from the library (the prompt comes back to CivitAI's)
        with LibraryStore(fresh_library.data_dir / "library.sqlite3", read_only=True) as store:
            library_prompt = store.image(target).meta.get("prompt")
        before = len(window.ctx.jobs.handles)
        _menu, action = menu_action(page, target, "Refresh metadata in the WebP")
        assert action.isEnabled()
        action.trigger()
        await wait_until(lambda: len(window.ctx.jobs.handles) > before, 10, what="the refresh job")
        handle = window.ctx.jobs.handles[-1]
        await wait_until(lambda: handle.bridge.ended, 60, what="the refresh job to end")
        assert handle.bridge.state == "done", handle.bridge.summary
        assert handle.bridge.summary["rewritten"] == 1
        assert read_file_xmp(webp)["description"] == library_prompt
        assert read_exif(webp)["user_comment"] != parameters
        # the pane, still on this image, reads the rewritten file again by itself
        await wait_until(lambda: detail.prompt.text() == (library_prompt or "No prompt"), 10, what="the new prompt")
    finally:
        await shut(window)


async def test_the_converter_page_refreshes_every_converted_file(fresh_library):
    webps = convert_all(fresh_library)
    old = {i: p.read_bytes() for i, p in webps.items()}
    for image_id, webp in webps.items():  # as if written by a foreign tool: no XMP, a stale comment
        built = build_metadata({"id": image_id, "meta": {"prompt": "stale"}}, [])
        insert_metadata(webp, built.exif.data, built.xmp)
    window = await open_window(fresh_library, page="convert")
    try:
        page = window.page("convert")
        before = len(window.ctx.jobs.handles)
        page.refresh_button.click()
        await wait_until(lambda: len(window.ctx.jobs.handles) > before, 10, what="the refresh job")
        handle = window.ctx.jobs.handles[-1]
        assert handle.kind == "refresh_metadata"
        await wait_until(lambda: handle.bridge.ended, 60, what="the refresh job to end")
        assert handle.bridge.state == "done", handle.bridge.summary
        assert handle.bridge.summary["done"] == len(webps)
        assert page.job_list.card_for(handle) is not None  # listed on the Converter page
        assert all(p.read_bytes() == old[i] for i, p in webps.items())  # back to what the converter wrote
    finally:
        await shut(window)
