"""The library's gallery support: migration 2 (FTS5 index kept in sync by triggers, gallery
indexes), the `text` filter, browse_ids / browse_rows / distinct_values / library_signature,
and delete_images."""

from __future__ import annotations

import sqlite3
import time

import pytest

from civitgrab_desktop.core.library import schema
from civitgrab_desktop.core.library.db import user_version
from civitgrab_desktop.core.library.deleting import ImageBusyError
from civitgrab_desktop.core.library.filters import ImageFilter, fts_query, without_fts
from civitgrab_desktop.core.library.owners import new_owner
from civitgrab_desktop.core.library.store import READ_METHODS, LibraryStore, Source
from tests.unit.test_library_support import downloaded_store, library_path, record, tag


def meta(prompt: str, model: str = "juggernautXL", version: str = "v9") -> dict:
    return {
        "prompt": prompt,
        "Model": model,
        "civitaiResources": [{"type": "checkpoint", "modelVersionId": 1, "modelVersionName": version}],
    }


@pytest.fixture
def store(tmp_path):
    s = downloaded_store(library_path(tmp_path), [1, 2, 3, 4])
    yield s
    s.close()


def tag_as_older_versions_did(store: LibraryStore, image_id: int, tags) -> None:
    """Tags written straight into the tables, as code before schema 3 (no tags_count) did."""
    with store.connection:
        for t in tags:
            store.connection.execute("INSERT OR IGNORE INTO tags (id, name) VALUES (?, ?)", (t.id, t.name))
            store.connection.execute("INSERT INTO image_tags (image_id, tag_id, score) VALUES (?, ?, ?)",
                                     (image_id, t.id, t.score))


def fts_rows(store: LibraryStore) -> dict[int, tuple]:
    rows = store.connection.execute("SELECT rowid, prompt, username, models, tags FROM images_fts").fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def ids(store: LibraryStore, **kw) -> list[int]:
    return store.browse_ids(ImageFilter(**kw))


# -- migration 2 ----------------------------------------------------------------------------------


def test_a_new_library_is_at_the_latest_version_with_the_index_and_triggers(tmp_path):
    with LibraryStore(library_path(tmp_path)) as s:
        assert user_version(s.connection) == schema.SCHEMA_VERSION >= 3
        names = {r[0] for r in s.connection.execute("SELECT name FROM sqlite_master")}
        assert {"images_fts", "images_fts_insert", "images_fts_update", "images_fts_delete",
                "images_fts_tag_added", "images_fts_tag_removed", "images_fts_tag_renamed"} <= names
        assert {"idx_images_done_created", "idx_images_done_reactions", "idx_images_downloaded"} <= names
        assert {"idx_images_tags_count", "idx_images_path", "idx_images_id"} <= names
        assert s.has_fts()
    # a brand-new library gets no pointless backup
    assert not list(library_path(tmp_path).parent.glob("*.bak-*"))


def test_migrating_a_version_1_library_indexes_what_it_holds(tmp_path):
    path = library_path(tmp_path)
    with LibraryStore(path, migrations=schema.MIGRATIONS[:1]) as old:
        old.upsert_listed([record(1, meta=meta("a red fox"))], Source("username", "alice"))
        tag_as_older_versions_did(old, 1, [tag(7, "forest")])
        assert user_version(old.connection) == 1
    with LibraryStore(path) as s:
        assert user_version(s.connection) == schema.SCHEMA_VERSION
        assert fts_rows(s)[1] == ("a red fox", "alice", "v9 juggernautXL", "forest")
        assert ids(s, text="forest") == [1]
    assert len(list(path.parent.glob("*.bak-v1-*"))) == 1  # an existing library is backed up first


def test_migration_3_counts_the_tags_each_image_already_has(tmp_path):
    path = library_path(tmp_path)
    with LibraryStore(path, migrations=schema.MIGRATIONS[:2]) as old:
        old.upsert_listed([record(1), record(2)], Source("username", "alice"))
        tag_as_older_versions_did(old, 1, [tag(7, "forest"), tag(8, "fox"), tag(9, "red")])
    with LibraryStore(path) as s:
        assert user_version(s.connection) == schema.SCHEMA_VERSION  # 3, then the later ones
        counts = dict(s.connection.execute("SELECT id, tags_count FROM images").fetchall())
        assert counts == {1: 3, 2: 0}
        assert s.browse_ids(order_by="tags_count", descending=True) == [1, 2]
        s.store_tags(2, "o:1:t", [tag(7, "forest"), tag(8, "fox"), tag(9, "red"), tag(10, "moss")], "api")
        s.store_tags(1, "o:1:t", [tag(7, "forest")], "api")  # a re-tag replaces the count
        assert s.browse_ids(order_by="tags_count", descending=True) == [2, 1]
        rows = {r["id"]: r["tags_count"] for r in s.browse_rows([1, 2])}
        assert rows == {1: 1, 2: 4}


def test_a_read_only_connection_refuses_a_library_not_yet_migrated(tmp_path):
    path = library_path(tmp_path)
    LibraryStore(path, migrations=schema.MIGRATIONS[:1]).close()
    with pytest.raises(Exception, match="needs an upgrade"):
        LibraryStore(path, read_only=True)


# -- the index follows the data -------------------------------------------------------------------


def test_listing_tagging_renaming_and_deleting_keep_the_index_in_sync(store):
    store.upsert_listed([record(1, meta=meta("A Red Fox in snow", "dreamshaper", "v8"))], Source("username", "a"))
    assert fts_rows(store)[1][:3] == ("A Red Fox in snow", "alice", "v8 dreamshaper")
    owner = new_owner()
    store.store_tags(1, owner, [tag(10, "1girl"), tag(11, "long hair")], "api")
    assert set(fts_rows(store)[1][3].split(" ")) == {"1girl", "long", "hair"}
    store.store_tags(1, owner, [tag(11, "long hair")], "api")  # re-tag replaces
    assert fts_rows(store)[1][3] == "long hair"
    # a canonical rename of the tag (api method) reaches every image carrying it
    store.store_tags(2, owner, [tag(11, "long flowing hair")], "api")
    assert fts_rows(store)[1][3] == "long flowing hair"
    # listing the same metadata again leaves the row alone; new metadata replaces it
    store.upsert_listed([record(1, meta=meta("a blue whale", "dreamshaper", "v8"))], Source("username", "a"))
    assert fts_rows(store)[1][0] == "a blue whale"
    store.delete_images([1])
    assert 1 not in fts_rows(store)
    assert len(fts_rows(store)) == 3


def test_text_search_matches_words_and_word_starts_in_every_column(store):
    store.upsert_listed([record(1, meta=meta("a red fox, misty forest", "animeDiffusionXl_v10", "v1.0"))],
                        Source("username", "x"))
    store.upsert_listed([record(2, username="bob_art", meta=meta("a cat wearing a hat"))], Source("username", "x"))
    store.store_tags(3, "o:1:t", [tag(5, "landscape")], "api")
    assert ids(store, text="fox") == [1]
    assert ids(store, text="FOX misty") == [1]  # every word, any case
    assert ids(store, text="fo") == [1]  # word starts
    assert ids(store, text="red cat") == []
    assert ids(store, text="bob") == [2]  # username
    assert ids(store, text="animediff") == [1]  # model names
    assert ids(store, text="landsc") == [3]  # tag names
    assert ids(store, text="juggernautxl") == [2, 3, 4]


@pytest.mark.parametrize("text", ['"', "(", "fox AND", "NEAR(", "-", "*", "a:b", "OR", "'; DROP TABLE images; --"])
def test_text_search_never_breaks_on_fts_syntax(store, text):
    store.browse_ids(ImageFilter(text=text))  # no sqlite3.OperationalError
    assert store.count_images() == 4


def test_fts_query_quotes_every_word():
    assert fts_query("red fox") == '"red"* "fox"*'
    assert fts_query('say "hi"') == '"say"* """hi"""*'
    assert fts_query("  -- ** ") is None


def test_without_fts_turns_the_text_into_a_like_search(store):
    f = without_fts(ImageFilter(text="number  cat", dl_state="done"))
    assert f.text is None and f.search == "number cat" and f.dl_state == "done"
    assert store.browse_ids(f) == []  # a substring: word order matters without the index
    assert store.browse_ids(without_fts(ImageFilter(text="number 2"))) == [2]


def test_browse_ids_falls_back_to_like_when_the_index_is_missing(tmp_path):
    path = library_path(tmp_path)
    with downloaded_store(path, [1, 2]) as s:
        s.run_write(lambda c: [c.execute(f"DROP TRIGGER {t}") for t in (
            "images_fts_insert", "images_fts_update", "images_fts_delete", "images_fts_tag_added",
            "images_fts_tag_removed", "images_fts_tag_renamed")] and c.execute("DROP TABLE images_fts"))
        assert not s.has_fts()
        assert s.browse_ids(ImageFilter(text="number 2")) == [2]


# -- browsing -------------------------------------------------------------------------------------


def test_browse_ids_orders_by_every_key_with_the_id_as_tie_breaker(store):
    owner = new_owner()
    store.upsert_listed([record(3, stats={"likeCount": 50}), record(4, stats={"likeCount": 50})],
                        Source("username", "alice"))
    store.store_tags(1, owner, [tag(1, "a"), tag(2, "b")], "api")
    assert store.browse_ids(order_by="id", descending=True) == [4, 3, 2, 1]
    assert store.browse_ids(order_by="reactions", descending=True)[:2] == [4, 3]
    assert store.browse_ids(order_by="tags_count", descending=True)[0] == 1
    for key in ("created_at", "downloaded_at", "nsfw_level", "type", "username", "model_version_name", "path",
                "tag_state", "cv_state", "webp_path"):
        assert sorted(store.browse_ids(order_by=key)) == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        store.browse_ids(order_by="prompt; DROP TABLE images")


def test_filters_combine_as_the_gallery_uses_them(store):
    owner = new_owner()
    store.upsert_listed([record(2, type="video", nsfwLevel="X", browsingLevel=8, username="bob")],
                        Source("username", "bob"))
    store.store_tags(3, owner, [tag(1, "Forest")], "api")
    store.record_conversion(4, owner, webp_path="/lib/4.webp")
    assert ids(store, dl_state="done", type="video") == [2]
    assert ids(store, nsfw_levels=[8]) == [2]
    assert ids(store, username="BOB") == [2]
    assert ids(store, tags=["forest"]) == [3]
    assert ids(store, tag_state="done") == [3]
    assert ids(store, cv_state="done") == [4]
    assert ids(store, cv_state=["never", "failed", "skipped"]) == [1, 2, 3]
    assert ids(store, created_after="2025-05-01", created_before="2025-05-02") == [1, 2, 3, 4]
    assert ids(store, created_after="2025-05-02") == []


def test_browse_rows_gives_the_light_columns_in_the_order_asked(store):
    owner = new_owner()
    store.store_tags(2, owner, [tag(1, "a"), tag(2, "b"), tag(3, "c")], "api")
    store.record_conversion(2, owner, webp_path="/lib/2.webp", src_bytes=10, webp_bytes=5)
    rows = store.browse_rows([2, 99, 1])
    assert [r["id"] for r in rows] == [2, 1]
    assert rows[0]["tags_count"] == 3 and rows[0]["webp_path"] == "/lib/2.webp" and rows[0]["cv_state"] == "done"
    assert rows[1]["tags_count"] == 0 and rows[1]["webp_path"] is None
    assert rows[1]["path"] == "/lib/1.png" and rows[1]["username"] == "alice" and rows[1]["type"] == "image"
    assert "prompt" not in rows[0] and "record_json" not in rows[0]


def test_distinct_values_most_used_first(store):
    store.upsert_listed([record(9, username="bob")], Source("username", "bob"))
    assert store.distinct_values("username") == [("alice", 4), ("bob", 1)]
    assert store.distinct_values("model_version_name", limit=1) == [("v9", 5)]
    with pytest.raises(ValueError):
        store.distinct_values("prompt")


def test_library_signature_changes_with_downloads_tags_conversions_and_deletions(store):
    owner = new_owner()
    first = store.library_signature()
    assert first[0] == 4
    store.store_tags(1, owner, [tag(1, "a")], "api")
    second = store.library_signature()
    assert second != first
    store.record_conversion(1, owner, webp_path="/lib/1.webp")
    third = store.library_signature()
    assert third != second
    time.sleep(0.002)
    store.delete_images([2])
    assert store.library_signature() != third
    assert store.library_signature() == store.library_signature()


def test_the_new_reads_are_offered_by_the_read_connection(tmp_path):
    for name in ("has_fts", "browse_ids", "browse_rows", "distinct_values", "library_signature"):
        assert name in READ_METHODS
    path = library_path(tmp_path)
    downloaded_store(path, [1]).close()
    with LibraryStore(path, read_only=True) as reader:
        assert reader.browse_ids(ImageFilter(text="cat")) == [1]


# -- deleting ------------------------------------------------------------------------------------


def test_delete_images_removes_the_row_tags_sources_and_conversion(store):
    owner = new_owner()
    store.store_tags(1, owner, [tag(1, "a")], "api")
    store.mark_source_linked(1, "model", "77", "/out/model/1.png")
    store.record_conversion(1, owner, webp_path="/browse/1.webp")
    (gone,) = store.delete_images([1, 1, 12345])
    assert gone.id == 1 and gone.path == "/lib/1.png" and gone.webp_path == "/browse/1.webp"
    assert set(gone.source_paths) == {"/out/model/1.png"}
    assert gone.files[0] == "/lib/1.png" and set(gone.files) == {"/lib/1.png", "/browse/1.webp", "/out/model/1.png"}
    assert store.image(1) is None
    assert store.tags_of(1) == [] and store.sources_for(1) == [] and store.conversion_of(1) is None
    c = store.connection
    assert c.execute("SELECT COUNT(*) FROM image_tags WHERE image_id = 1").fetchone()[0] == 0
    assert c.execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 1  # the vocabulary stays
    assert store.count_images() == 3
    assert store.delete_images([]) == []


def test_delete_images_refuses_an_image_a_live_job_holds(store):
    owner = new_owner()  # this process: alive
    (claimed,) = store.claim_for_tags(owner, 1)
    with pytest.raises(ImageBusyError, match="fetching the tags"):
        store.delete_images([4, claimed.id])
    assert store.count_images() == 4  # all or nothing
    assert [d.id for d in store.delete_images([claimed.id], force=True)] == [claimed.id]


def test_delete_images_ignores_claims_of_dead_owners(store):
    dead = "some-host:999999:dead"
    store.run_write(lambda c: c.execute(
        "UPDATE images SET cv_owner = ?, cv_claimed_at = ? WHERE id = 2", (dead, time.time() - 10**6)))
    assert [d.id for d in store.delete_images([2])] == [2]


def test_foreign_keys_and_fts_survive_a_delete_in_a_transaction_that_fails(store):
    def boom(c: sqlite3.Connection):
        c.execute("DELETE FROM images WHERE id = 3")
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        store.run_write(boom)
    assert store.image(3) is not None and 3 in fts_rows(store)
