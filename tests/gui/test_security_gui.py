"""Issue 15 in the GUI: a NUL in the search box is just a separator (no error dialog), the gallery
opens only media files, and deleting removes only files under the chosen folders, checked when
each file is removed."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from civitgrab_desktop.core.library.store import LibraryStore
from tests.gui.test_gallery import apply_filters
from tests.gui.test_gallery_support import fresh_library, open_window, replica_library, shut  # noqa: F401


def words_of(text: str | None) -> set[str]:
    import re

    return set(re.findall(r"\w+", (text or "").lower()))


async def test_a_nul_in_the_search_box_is_a_separator_not_an_error(replica_library, monkeypatch):
    import sys

    hooked = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: hooked.append(exc))
    rows = replica_library.rows()
    window = await open_window(replica_library)
    try:
        page = window.page("gallery")
        expected = {r["id"] for r in rows if "lighthouse" in words_of(r["prompt"])}
        assert expected
        got = await apply_filters(page, "search", lambda: page.filter_bar.search.setText("light\x00lighthouse\x00"))
        assert page.pending_refresh.exception() is None
        assert got == expected
        got = await apply_filters(page, "search", lambda: page.filter_bar.search.setText("\x00"))
        assert page.pending_refresh.exception() is None and got == set()
        await asyncio.sleep(0.1)
        assert hooked == []
    finally:
        await shut(window)


async def test_open_hands_only_media_files_to_the_system(fresh_library, tmp_path):
    from civitgrab_desktop.gui.gallery import actions

    item = fresh_library.rows()[0]
    assert actions.openable(item["path"]) is None
    script = tmp_path / "evil.sh"
    script.write_text("#!/bin/sh\necho owned\n")
    disguised = tmp_path / "evil.png"  # a media name, not media bytes
    disguised.write_text("#!/bin/sh\necho owned\n")
    linked = tmp_path / "photo.png"  # a media name leading to a program
    linked.symlink_to(script)
    for path in (script, disguised, linked, tmp_path / "missing.png", tmp_path):
        assert actions.openable(str(path)) is not None, path
        assert actions.open_file(str(path)) is False
    window = await open_window(fresh_library)
    try:
        page = window.page("gallery")
        image_id = page.model.ids[0]
        with LibraryStore(fresh_library.data_dir / "library.sqlite3") as store:
            store.run_write(lambda c: c.execute("UPDATE images SET path = ? WHERE id = ?", (str(script), image_id)))
        await page.model.reload_items([image_id])
        messages = []
        window.ctx.statusMessage.connect(lambda text, _ms: messages.append(text))
        assert page.open_file(image_id) is False
        assert any("not an image or video" in m for m in messages), messages
    finally:
        await shut(window)


async def test_delete_checks_each_file_when_it_is_removed(fresh_library, tmp_path):
    window = await open_window(fresh_library)
    try:
        page = window.page("gallery")
        item = page.model.item(0)
        media = Path(item.path)
        # planted after the library recorded it: the query copy is now a link to a file outside
        outside = tmp_path / "victim"
        outside.mkdir()
        precious = outside / media.name
        shutil.copy(media, precious)
        copy = media.with_name(f"{item.id}_copy{media.suffix}")
        copy.symlink_to(precious)
        library = await window.ctx.library()
        await library.mark_source_linked(item.id, "model", "77", str(copy))
        outcome = await page.delete_ids([item.id])
        assert str(media) in outcome.removed
        assert precious.is_file()
        # the link itself sits in the download folder: removing it does not touch its target
        assert str(copy) in outcome.removed or any(p == str(copy) for p, _ in outcome.kept)
    finally:
        await shut(window)


def _classic_folder(root: Path, image_ids: list[int]) -> tuple[Path, Path]:
    import json

    from PIL import Image

    classic, victim = root / "classic", root / "victim"
    (classic / "Model A").mkdir(parents=True)
    victim.mkdir()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(classic / "Model A" / f"{image_ids[0]}.png")
    Image.new("RGB", (32, 32), (4, 5, 6)).save(victim / "family.png")
    entries = {f"username:alice_{image_ids[0]}_HD": {"path": f"Model A/{image_ids[0]}.png"},
               f"username:alice_{image_ids[1]}_HD": {"path": "../victim/family.png"}}
    (classic / "downloaded_images.json").write_text(json.dumps(entries), encoding="utf-8")
    return classic, victim


async def _import(window, classic: Path):
    from civitgrab_desktop.gui.migrate_dialog import ClassicImport

    flow = ClassicImport(window)
    box = await flow.run(classic)
    assert box is not None and box.isVisible()
    return flow, box


async def test_migrate_in_the_gui_asks_which_folders_to_trust(fresh_library, tmp_path):
    from PySide6.QtCore import Qt

    classic, victim = _classic_folder(tmp_path, [990001, 990002])
    window = await open_window(fresh_library)
    try:
        flow, box = await _import(window, classic)
        rows = [box.folders.item(i) for i in range(box.folders.count())]
        texts = [r.text() for r in rows]
        assert texts[0].startswith(f"{classic.resolve()}  —  1 file, the folder you picked")
        assert texts[1].startswith(f"{victim.resolve()}  —  1 file, outside the folder you picked")
        # only the picked folder is offered checked; the other must be chosen on purpose
        assert [r.checkState() for r in rows] == [Qt.CheckState.Checked, Qt.CheckState.Unchecked]
        box.trust_button.click()
        added = await asyncio.wait_for(flow.answered, 5)
        assert added == [str(classic.resolve())]
        library = await window.ctx.library()
        roots = await library.roots()
        assert roots.covers(classic) and not roots.covers(victim)
    finally:
        await shut(window)


async def test_migrate_in_the_gui_can_keep_everything_read_only(fresh_library, tmp_path):
    classic, _victim = _classic_folder(tmp_path, [990003, 990004])
    window = await open_window(fresh_library)
    try:
        library = await window.ctx.library()
        before = await library.list_roots()
        flow, box = await _import(window, classic)
        box.read_only_button.click()
        assert await asyncio.wait_for(flow.answered, 5) == []
        assert await library.list_roots() == before
        assert (await library.image(990003)).dl_state == "done"  # imported, read-only
    finally:
        await shut(window)
