"""Import of the classic CLI's downloaded_images.json and tracking_database.sqlite."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime

import pytest

from civitgrab_desktop.core.library.classic_import import (
    ClassicKey,
    parse_classic_date,
    parse_classic_key,
)
from civitgrab_desktop.core.library.store import LibraryStore
from civitgrab_desktop.jobs.migrate import import_classic
from tests.unit.test_library_support import library_path

# The classic tool's schema, exactly as its _init_db and target-tracking migration leave it.
CLASSIC_SCHEMA = """
CREATE TABLE tracked_images (image_key TEXT PRIMARY KEY, image_id TEXT NOT NULL, quality TEXT NOT NULL,
    path TEXT NOT NULL, download_date TEXT NOT NULL, url TEXT, checkpoint_name TEXT,
    target_type TEXT, target_value TEXT);
CREATE TABLE image_tags (image_key TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (image_key, tag),
    FOREIGN KEY(image_key) REFERENCES tracked_images(image_key) ON DELETE CASCADE) WITHOUT ROWID;
CREATE INDEX idx_tracked_images_key ON tracked_images (image_key);
CREATE INDEX idx_image_tags_tag ON image_tags (tag);
CREATE INDEX idx_image_tags_key ON image_tags (image_key);
CREATE INDEX idx_tracked_images_target ON tracked_images (target_type, target_value);
"""
CDN = "https://image.civitai.com/xG1nkqKTMzGDvpLrqFT7WA"


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def classic(tmp_path):
    """A classic tool folder: script dir with its JSON, its SQLite DB and image_downloads/."""
    base = tmp_path / "classic"
    dl = base / "image_downloads"
    files = {
        123: _write(dl / "alice" / "123.jpeg", b"\xff\xd8\xff jpeg 123"),
        125: _write(dl / "bob" / "125.png", b"\x89PNG\r\n\x1a\n png 125"),
        # The classic sorter moved 200 into a model folder after recording its path.
        200: _write(dl / "Username_Search" / "alice" / "juggernautXL" / "200.png", b"\x89PNG\r\n\x1a\n png 200"),
        201: _write(dl / "Model_ID_Search" / "model_77" / "201.jpeg", b"\xff\xd8\xff 201"),
        202: _write(dl / "Model_Tag_Search" / "cute_cats" / "model_77" / "202.png", b"\x89PNG\r\n\x1a\n 202"),
        204: _write(dl / "204.jpeg", b"\xff\xd8\xff 204"),
        205: _write(dl / "Username_Search" / "alice" / "205.png", b"\x89PNG\r\n\x1a\n 205"),
        206: _write(dl / "Username_Search" / "alice" / "206.mp4", b"\x00\x00\x00\x18ftypmp42 206"),
    }
    entries = {
        "123_SD": {
            "path": "image_downloads/alice/123.jpeg",
            "quality": "SD",
            "download_date": "2024-03-01 - 12:30",
        },
        "124_HD": {
            "path": "image_downloads/alice/124.png",
            "quality": "HD",
            "download_date": "2024-03-01- 12:31",
            "url": f"{CDN}/124/original=true/124.jpeg",
        },
        "username:bob_125_HD": {
            "path": "image_downloads/bob/125.png",
            "quality": "HD",
            "download_date": "2024-03-02 - 08:00",
            "checkpoint_name": "juggernautXL",
            "tags": ["cats"],
        },
        "bad_key": {"path": "x.png", "quality": "SD", "download_date": "2024-03-02 - 08:00"},
        "126_SD": "not an object",
    }
    json_path = base / "downloaded_images.json"
    json_path.write_text(json.dumps(entries), encoding="utf-8")

    db_path = base / "tracking_database.sqlite"
    conn = sqlite3.connect(db_path)
    conn.executescript(CLASSIC_SCHEMA)
    abs_dl = str(dl.resolve())
    rows = [
        (
            "username:alice_200_HD",
            "200",
            "HD",
            f"{abs_dl}/Username_Search/alice/200.png",
            "username",
            "alice",
        ),
        ("model:77_201_SD", "201", "SD", f"{abs_dl}/Model_ID_Search/model_77/201.jpeg", None, None),
        (
            "tag:cute_cats_202_HD",
            "202",
            "HD",
            f"{abs_dl}/Model_Tag_Search/cute_cats/model_77/202.png",
            "tag",
            "cute_cats",
        ),
        (
            "modelVersion:128078_203_HD",
            "203",
            "HD",
            f"{abs_dl}/Model_Version_ID_Search/modelVersion_128078/203.png",
            "modelVersion",
            "128078",
        ),
        ("204_SD", "204", "SD", f"{abs_dl}/204.jpeg", None, None),
        (
            "username:alice_205_HD",
            "205",
            "HD",
            f"{abs_dl}/Username_Search/alice/205.png",
            "username",
            "alice",
        ),
        ("model:77_205_HD", "205", "HD", f"{abs_dl}/Username_Search/alice/205.png", "model", "77"),
        (
            "username:alice_206_HD",
            "206",
            "HD",
            f"{abs_dl}/Username_Search/alice/206.mp4",
            "username",
            "alice",
        ),
        ("username:alice_123_SD", "123", "SD", str(files[123].resolve()), "username", "alice"),
        ("nonsense", "abc", "SD", "/nowhere.png", None, None),
    ]
    for key, image_id, quality, path, t_type, t_value in rows:
        conn.execute(
            "INSERT INTO tracked_images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                image_id,
                quality,
                path,
                "2025-01-05 - 09:15",
                f"{CDN}/{image_id}/original=true/x.jpeg",
                "ckpt",
                t_type,
                t_value,
            ),
        )
    conn.executemany(
        "INSERT INTO image_tags VALUES (?, ?)",
        [("tag:cute_cats_202_HD", "cute_cats"), ("tag:cute_cats_202_HD", "animals")],
    )
    conn.commit()
    conn.close()
    return {"base": base, "json": json_path, "sqlite": db_path, "files": files}


def sources(store, image_id):
    return {(s.target_type, s.target_value): s for s in store.sources_for(image_id)}


def test_import_keeps_everything_and_reruns_add_nothing(classic, tmp_path):
    sqlite_before = classic["sqlite"].read_bytes()
    with LibraryStore(library_path(tmp_path)) as store:
        report = import_classic(store, json_path=classic["json"], sqlite_path=classic["sqlite"])
        assert (report.entries, report.errors) == (15, 3), report.messages
        assert (report.images_new, report.sources_new, report.images_updated) == (10, 14, 0)
        assert (report.missing_files, report.skipped) == (2, 0)
        assert any("bad_key" in m for m in report.messages) and any("126_SD" in m for m in report.messages)

        # A file on disk: done, with size and hash from the file.
        f123 = classic["files"][123]
        img = store.image(123)
        assert (img.dl_state, img.path, img.quality, img.mime) == (
            "done",
            str(f123.resolve()),
            "resized",
            "image/jpeg",
        )
        assert img.bytes == f123.stat().st_size
        assert img.sha256 == hashlib.sha256(f123.read_bytes()).hexdigest()
        assert img.downloaded_at == datetime(2024, 3, 1, 12, 30).astimezone(UTC).isoformat(
            timespec="milliseconds"
        )
        assert set(sources(store, 123)) == {("classic", "SD"), ("username", "alice")}

        # A missing file: pending, URL kept, the old path kept as the source's plan.
        img = store.image(124)
        assert (img.dl_state, img.path, img.url) == ("pending", None, f"{CDN}/124/original=true/124.jpeg")
        (src,) = store.sources_for(124)
        assert (src.target_type, src.target_value, src.linked) == ("classic", "HD", False)
        # the plan is absolute: relative to the classic folder, never to a later job's folder
        assert src.path == str(classic["base"].resolve() / "image_downloads/alice/124.png")
        assert store.image(203).dl_state == "pending" and store.image(203).url.startswith(CDN)

        # Search tags are sources of type 'tag', never community tags.
        assert set(sources(store, 125)) == {("username", "bob"), ("tag", "cats")}
        assert store.image(125).checkpoint_name == "juggernautXL"
        assert set(sources(store, 202)) == {("tag", "cute_cats"), ("tag", "animals")}
        assert store.tags_of(202) == [] and store.stats()["tags"] == 0
        assert store.image(202).tag_state == "never"

        # The sorter's move is followed; a context key without target columns still gives a source.
        assert store.image(200).path == str(classic["files"][200].resolve())
        assert sources(store, 200)[("username", "alice")].linked
        assert set(sources(store, 201)) == {("model", "77")}
        assert set(sources(store, 204)) == {("classic", "SD")}
        assert set(sources(store, 205)) == {("username", "alice"), ("model", "77")}
        assert (store.image(206).type, store.image(206).mime) == ("video", "video/mp4")

        again = import_classic(store, json_path=classic["json"], sqlite_path=classic["sqlite"])
        assert (again.images_new, again.sources_new, again.images_updated) == (0, 0, 0)
        assert (again.skipped, again.missing_files, again.errors) == (12, 2, 3)
        assert store.count_images() == 10

        # The missing file turns up: the next import completes the pending image.
        _write(classic["base"] / "image_downloads" / "alice" / "124.png", b"\x89PNG\r\n\x1a\n late")
        late = import_classic(store, json_path=classic["json"])
        assert (late.images_new, late.images_updated, late.sources_new) == (0, 1, 0)
        assert store.image(124).dl_state == "done" and store.image(124).mime == "image/png"
    assert classic["sqlite"].read_bytes() == sqlite_before  # the classic DB is only read


def test_unreadable_inputs_are_reported_not_fatal(tmp_path):
    broken_json = tmp_path / "downloaded_images.json"
    broken_json.write_text("{not json", encoding="utf-8")
    not_db = tmp_path / "tracking_database.sqlite"
    not_db.write_bytes(b"garbage" * 200)
    with LibraryStore(library_path(tmp_path)) as store:
        report = import_classic(store, json_path=broken_json, sqlite_path=not_db)
        assert report.errors == 2 and report.images_new == 0
        report = import_classic(store, json_path=tmp_path / "missing.json")
        assert report.errors == 1 and "not found" in report.messages[0]
        list_json = tmp_path / "list.json"
        list_json.write_text("[1, 2]", encoding="utf-8")
        assert import_classic(store, json_path=list_json).errors == 1


def test_oldest_classic_database_without_target_columns_or_tags_table(tmp_path):
    db_path = tmp_path / "tracking_database.sqlite"
    conn = sqlite3.connect(db_path)
    conn.execute(
        "CREATE TABLE tracked_images (image_key TEXT PRIMARY KEY, image_id TEXT NOT NULL, quality TEXT NOT NULL,"
        " path TEXT NOT NULL, download_date TEXT NOT NULL, url TEXT, checkpoint_name TEXT)"
    )
    conn.execute(
        "INSERT INTO tracked_images VALUES ('7_SD', '7', 'SD', 'gone.jpeg', 'yesterday', NULL, NULL)"
    )
    conn.commit()
    conn.close()
    with LibraryStore(library_path(tmp_path)) as store:
        report = import_classic(store, sqlite_path=db_path)
        assert (report.images_new, report.sources_new, report.missing_files, report.errors) == (1, 1, 1, 0)
        img = store.image(7)
        assert img.dl_state == "pending" and img.first_seen_at  # an unreadable date falls back to now


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("123_SD", ClassicKey(123, "SD", None, None)),
        ("username:some_user_name_45_HD", ClassicKey(45, "HD", "username", "some_user_name")),
        ("tag:a:b c_6_SD", ClassicKey(6, "SD", "tag", "a:b c")),
        ("modelVersion:128078_7_HD", ClassicKey(7, "HD", "modelVersion", "128078")),
    ],
)
def test_parse_classic_key(key, expected):
    assert parse_classic_key(key) == expected


@pytest.mark.parametrize(
    "key", ["", "123", "SD", "_12_SD", "username:_12_SD", "username:bob_x_SD", "user_12_"]
)
def test_parse_classic_key_rejects_malformed(key):
    with pytest.raises(ValueError):
        parse_classic_key(key)


def test_parse_classic_date_variants():
    expected = datetime(2024, 3, 1, 12, 30).astimezone(UTC).isoformat(timespec="milliseconds")
    for text in ("2024-03-01 - 12:30", "2024-03-01- 12:30", "2024-03-01 12:30"):
        assert parse_classic_date(text) == expected
    assert parse_classic_date("2024-02-30 - 12:30") is None
    assert parse_classic_date(None) is None
