"""The Database page in the real window, over the library the real CLI downloaded from the
replica: rows fetched lazily in chunks (canFetchMore/fetchMore), SQL-side sorting, the gallery's
filters, "Export to CSV" of what is shown with the columns of `civitgrab-cli export-csv`, and a
double-click opening the image in the gallery's detail pane.

Async tests run on the qasync loop: they poll with wait_until (asyncio.sleep), never
qtbot.waitSignal / waitUntil.
"""

from __future__ import annotations

import asyncio
import csv

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

from civitgrab_desktop.gui.panels import database_model
from tests.gui.conftest import wait_until
from tests.gui.test_gallery_support import (  # noqa: F401 - fixtures
    open_window,
    replica_library,
    run_cli,
    shut,
)

pytestmark = pytest.mark.gui

USER_COLUMN = [c.key for c in database_model.COLUMNS].index("username")


def all_rows(library) -> list[dict]:
    with library.store() as store:
        return [dict(r) for r in store.connection.execute("SELECT * FROM images")]


async def open_table(library):
    window = await open_window(library, page="database")
    page = window.page("database")
    await wait_until(lambda: page.model.queried and page.model.rowCount() > 0, 20, what="the table's first rows")
    return window, page


async def refreshed(page, change) -> int:
    """Apply `change` and wait for the table's refresh it starts; returns the matching total."""
    totals: list[int] = []
    page.model.refreshed.connect(totals.append)
    try:
        change()
        await wait_until(lambda: totals, 10, what="the table to refresh")
    finally:
        page.model.refreshed.disconnect(totals.append)
    return totals[-1]


def shown_ids(page) -> list[int]:
    return [page.model.id_at(r) for r in range(page.model.rowCount())]


async def test_rows_are_fetched_lazily_and_sorted_by_sqlite(replica_library, monkeypatch):
    monkeypatch.setattr(database_model, "CHUNK", 8)
    rows = all_rows(replica_library)
    assert len(rows) > 3 * 8
    window, page = await open_table(replica_library)
    try:
        model, table = page.model, page.table
        assert model.total == len(rows)
        # only what the view asked for: a chunk or a few (the view fetches while it has room)
        assert model.rowCount() < len(rows) and model.canFetchMore(table.rootIndex())
        assert shown_ids(page) == sorted(r["id"] for r in rows)[: model.rowCount()]  # id order
        before = model.rowCount()
        table.scrollToBottom()
        await wait_until(lambda: model.rowCount() > before, 10, what="more rows while scrolling")
        for _ in range(20):
            if not model.canFetchMore(table.rootIndex()):
                break
            table.scrollToBottom()
            await asyncio.sleep(0.05)
        await model.fetch_all_until(len(rows) - 1)
        assert model.rowCount() == len(rows) and not model.canFetchMore(table.rootIndex())

        # a click on a header sorts in SQL (a new query), case-insensitively, ties by id
        total = await refreshed(page, lambda: table.sortByColumn(USER_COLUMN, Qt.SortOrder.DescendingOrder))
        assert total == len(rows) and model.rowCount() < len(rows)  # lazily again
        await model.fetch_all_until(len(rows) - 1)
        expected = [r["id"] for r in sorted(rows, key=lambda r: ((r["username"] or "").lower(), r["id"]), reverse=True)]
        assert shown_ids(page) == expected
        assert table.horizontalHeader().sortIndicatorSection() == USER_COLUMN
        assert model.data(model.index(0, USER_COLUMN)) == next(r["username"] for r in rows if r["id"] == expected[0])
    finally:
        await shut(window)


async def test_the_gallery_filters_narrow_the_table(replica_library):
    rows = all_rows(replica_library)
    window, page = await open_table(replica_library)
    try:
        bar = page.filter_bar
        videos = {r["id"] for r in rows if r["type"] == "video"}
        assert await refreshed(page, lambda: bar.media_type.setCurrentIndex(bar.media_type.findData("video"))) == len(
            videos)
        assert set(shown_ids(page)) == videos
        assert {page.model.data(page.model.index(r, 1)) for r in range(page.model.rowCount())} == {"video"}
        bar.reset()
        await wait_until(lambda: page.model.total == len(rows), 10, what="the reset")
        bob = {r["id"] for r in rows if r["username"] == "bob_art"}
        assert await refreshed(page, lambda: (bar.username.setText("bob_art"), bar._emit_now())) == len(bob)
        assert set(shown_ids(page)) == bob
        # the download state selector: only what is downloaded
        done = {r["id"] for r in rows if r["dl_state"] == "done" and r["username"] == "bob_art"}
        assert await refreshed(page, lambda: page.state.setCurrentIndex(page.state.findData("done"))) == len(done)
    finally:
        await shut(window)


async def test_export_to_csv_writes_what_is_shown_with_the_cli_columns(replica_library, tmp_path):
    rows = all_rows(replica_library)
    cli_csv = tmp_path / "cli.csv"
    run_cli(replica_library.data_dir, replica_library.base_url, "export-csv", str(cli_csv), cwd=tmp_path)
    with cli_csv.open(encoding="utf-8", newline="") as fh:
        cli = list(csv.DictReader(fh))
    assert len(cli) == len(rows)
    window, page = await open_table(replica_library)
    try:
        # everything: the same file the CLI writes
        everything = tmp_path / "all.csv"
        assert await page.export(str(everything)) == len(rows)
        assert everything.read_text(encoding="utf-8") == cli_csv.read_text(encoding="utf-8")

        # filtered: only the rows shown, same columns
        bar = page.filter_bar
        await refreshed(page, lambda: bar.nsfw_actions[8].setChecked(True))
        shown = set(shown_ids(page))
        assert shown and len(shown) < len(rows)
        exported: list = []
        page.exported.connect(lambda path, count: exported.append((path, count)))
        path = tmp_path / "x-rated.csv"
        assert await page.export(str(path)) == len(shown)
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            got = list(reader)
            assert reader.fieldnames == list(cli[0].keys())
        assert {int(r["image_id"]) for r in got} == shown
        assert all(r["nsfw_level"] == "8" for r in got)
        by_id = {r["image_id"]: r for r in cli}
        assert all(r == by_id[r["image_id"]] for r in got)  # the same values as the CLI's rows
        assert exported == [(str(path), len(shown))]
        assert page.export_button.isEnabled()

        # sorted by a header: the file keeps the table's order
        await refreshed(page, lambda: page.table.sortByColumn(USER_COLUMN, Qt.SortOrder.DescendingOrder))
        order = [page.model.id_at(r) for r in range(page.model.rowCount())]
        assert order != sorted(order)
        sorted_csv = tmp_path / "sorted.csv"
        assert await page.export(str(sorted_csv)) == len(order)
        with sorted_csv.open(encoding="utf-8", newline="") as fh:
            assert [int(r["image_id"]) for r in csv.DictReader(fh)] == order
        # nothing shown: the button is off
        await refreshed(page, lambda: (bar.search.setText("zzzznotaword"), bar._emit_now()))
        assert page.model.rowCount() == 0 and not page.export_button.isEnabled()
    finally:
        await shut(window)


async def test_double_click_opens_the_image_in_the_gallery_detail_pane(replica_library):
    window, page = await open_table(replica_library)
    try:
        row = next(r for r in range(page.model.rowCount()) if page.model.row_data(r)["dl_state"] == "done")
        image_id = page.model.id_at(row)
        index = page.model.index(row, 2)
        page.table.doubleClicked.emit(index)
        gallery = window.page("gallery")
        await wait_until(lambda: gallery.detail.image_id == image_id, 10, what="the detail pane")
        assert window.current_page() is gallery and gallery.detail.isVisibleTo(gallery)
        assert gallery.model.id_at(gallery.view.currentIndex().row()) == image_id
    finally:
        await shut(window)


def _luminance(colour: QColor) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.red()) + 0.7152 * channel(colour.green()) + 0.0722 * channel(colour.blue())


def _contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
async def test_selected_rows_stay_readable_in_both_themes(replica_library, theme):
    window = await open_window(replica_library, theme=theme, page="database")
    page = window.page("database")
    try:
        await wait_until(lambda: page.model.rowCount() > 0, 20, what="rows")
        option = QStyleOptionViewItem()
        option.initFrom(page.table)
        option.state |= QStyle.StateFlag.State_Selected
        page.table.itemDelegate().initStyleOption(option, page.model.index(0, USER_COLUMN))
        text = option.palette.color(QPalette.ColorRole.HighlightedText)
        background = option.palette.color(QPalette.ColorRole.Highlight)
        assert _contrast(text, background) >= 4.5, (theme, text.name(), background.name())
    finally:
        await shut(window)
