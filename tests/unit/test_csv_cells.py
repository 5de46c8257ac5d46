"""CSV cells never start a formula (issue 15, finding 3): OWASP's rule, numbers kept as numbers."""

from __future__ import annotations

import csv

import pytest

from civitgrab_desktop.core.library.csv_export import csv_cell, export_csv
from civitgrab_desktop.core.library.store import LibraryStore
from tests.unit.test_convert_job import add_images


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "=1"])
def test_text_a_spreadsheet_would_run_gets_a_quote(text):
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", [12, -3, 2.5, "-12", "+4.5", "1e6", "plain", "a=b", " =1", "", "'quoted"])
def test_numbers_and_harmless_text_stay_as_they_are(value):
    assert csv_cell(value) == value


def test_none_is_an_empty_cell():
    assert csv_cell(None) == ""


def test_export_writes_hostile_names_as_text(tmp_path):
    db = tmp_path / "library.sqlite3"
    add_images(db, tmp_path / "dl", [{"id": 1}, {"id": 2}])
    with LibraryStore(db) as store:
        store.run_write(lambda c: c.execute(
            "UPDATE images SET checkpoint_name = ?, prompt = ?, username = ? WHERE id = 1",
            ('=HYPERLINK("http://evil","x")', "-masterpiece, +best", "@admin")))
        export_csv(store, tmp_path / "out.csv")
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8", newline="")))
    first = rows[0]
    assert first["checkpoint_name"] == '\'=HYPERLINK("http://evil","x")'
    assert first["prompt"] == "'-masterpiece, +best" and first["username"] == "'@admin"
    assert first["image_id"] == "1" and first["width"] in ("", "96") and first["nsfw_level"] == "1"
