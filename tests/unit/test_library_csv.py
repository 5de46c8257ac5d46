"""CSV export of a populated library, parsed back with the csv module."""

from __future__ import annotations

import csv
import sqlite3

import pytest

from civitgrab_desktop.core.library import csv_export
from civitgrab_desktop.core.library.csv_export import CSV_COLUMNS, export_csv
from civitgrab_desktop.core.library.store import Source, new_owner
from tests.unit.test_library_support import downloaded_store, library_path, record, tag

REQUIRED = (
    "image_id",
    "type",
    "nsfw_level",
    "username",
    "model_version_name",
    "path",
    "sha256",
    "downloaded_at",
    "tags",
    "tags_scraped",
    "converted",
    "webp_path",
)


@pytest.fixture
def populated(tmp_path):
    store = downloaded_store(library_path(tmp_path), [1, 2, 3])
    odd_name = 'v9, "final"\nsecond line'
    meta = {"prompt": "p", "civitaiResources": [{"type": "checkpoint", "modelVersionName": odd_name}]}
    store.upsert_listed([record(2, username="Zoë", meta=meta, browsingLevel=8)], Source("username", "Zoë"))
    store.upsert_listed([record(4, type="video")], Source("username", "alice"))  # not downloaded
    owner = new_owner()
    store.claim_for_tags(owner, 1)
    store.store_tags(1, owner, [tag(1, "cat", 5), tag(2, "hat", 40), tag(3, "mat", 5)], "api")
    store.record_conversion(3, owner, webp_path="/browse/3.webp", webp_bytes=10)
    yield store, odd_name
    store.close()


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as fh:
        assert fh.read(1) != "\ufeff"  # no BOM
        fh.seek(0)
        return list(csv.DictReader(fh))


def test_export_round_trips_every_image(populated, tmp_path):
    store, odd_name = populated
    out = tmp_path / "export" / "library.csv"
    assert export_csv(store, out) == 4
    rows = read_csv(out)
    assert set(REQUIRED) <= set(CSV_COLUMNS)
    assert list(rows[0]) == list(CSV_COLUMNS)
    by_id = {int(r["image_id"]): r for r in rows}
    assert list(by_id) == [1, 2, 3, 4]

    for image_id, row in by_id.items():
        db = store.image(image_id)
        assert row["type"] == db.type
        assert int(row["nsfw_level"]) == db.nsfw_level
        assert row["username"] == (db.username or "")
        assert row["model_version_name"] == (db.model_version_name or "")
        assert row["path"] == (db.path or "")
        assert row["sha256"] == (db.sha256 or "")
        assert row["downloaded_at"] == (db.downloaded_at or "")

    assert by_id[1]["tags"] == "hat;cat;mat"  # score desc, then name
    assert (by_id[1]["tags_scraped"], by_id[2]["tags_scraped"], by_id[2]["tags"]) == ("1", "0", "")
    assert (by_id[3]["converted"], by_id[3]["webp_path"]) == ("1", "/browse/3.webp")
    assert (by_id[1]["converted"], by_id[1]["webp_path"]) == ("0", "")
    assert by_id[2]["username"] == "Zoë" and by_id[2]["model_version_name"] == odd_name
    assert by_id[4]["path"] == "" and by_id[4]["type"] == "video"
    assert [p.name for p in out.parent.iterdir()] == ["library.csv"]  # no temp file left


def test_export_with_filters_and_columns(populated, tmp_path):
    store, _ = populated
    out = tmp_path / "some.csv"
    n = export_csv(store, out, filters={"dl_state": "done", "nsfw": "sfw"}, columns=["image_id", "tags"])
    assert n == 2
    assert read_csv(out) == [{"image_id": "1", "tags": "hat;cat;mat"}, {"image_id": "3", "tags": ""}]


def test_export_from_a_plain_connection(populated, tmp_path):
    store, _ = populated
    conn = sqlite3.connect(store.path)  # no Row factory, not a LibraryStore
    try:
        assert export_csv(conn, tmp_path / "plain.csv") == 4
    finally:
        conn.close()
    assert len(read_csv(tmp_path / "plain.csv")) == 4


def test_failed_export_leaves_the_old_file_alone(populated, tmp_path, monkeypatch):
    store, _ = populated
    out = tmp_path / "keep.csv"
    out.write_text("previous export\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown CSV columns"):
        export_csv(store, out, columns=["image_id", "secret"])

    def broken(conn, image_id):
        raise RuntimeError("disk full")

    monkeypatch.setattr(csv_export, "_tag_names", broken)
    with pytest.raises(RuntimeError):
        export_csv(store, out)
    assert out.read_text(encoding="utf-8") == "previous export\n"
    assert [p.name for p in tmp_path.glob(".keep.csv.*")] == []


def test_export_of_an_empty_library_writes_the_header(tmp_path):
    from civitgrab_desktop.core.library.store import LibraryStore

    with LibraryStore(library_path(tmp_path)) as store:
        assert export_csv(store, tmp_path / "empty.csv") == 0
    assert (tmp_path / "empty.csv").read_text(encoding="utf-8").strip() == ",".join(CSV_COLUMNS)
