"""LibraryStore operations in one process: listing, claims, tags, conversion, paths, reads."""

from __future__ import annotations

import os
import time

import pytest

from civitgrab_desktop.core.library.owners import new_owner, parse_owner
from civitgrab_desktop.core.library.store import LibraryStore, Source
from civitgrab_desktop.core.library.store_base import UnknownImageError
from tests.unit.test_library_support import downloaded_store, library_path, record, tag

OTHER_HOST_OWNER = "some-other-host:4242:abcd"


@pytest.fixture
def store(tmp_path):
    s = LibraryStore(library_path(tmp_path))
    yield s
    s.close()


# -- listing -----------------------------------------------------------------------------------


def test_upsert_inserts_pending_images_with_sources_and_planned_paths(store):
    states = store.upsert_listed(
        [record(1), record(2, type="video")],
        Source("username", "alice", {1: "/out/alice/1.png", 2: "/out/alice/2.mp4"}),
    )
    assert set(states) == {1, 2}
    assert states[1].dl_state == "pending" and states[1].path is None and not states[1].dl_owner_alive
    row = store.image(1)
    assert row.username == "alice" and row.meta["prompt"] == "a cat number 1"
    assert row.record["id"] == 1 and row.model_version_ids == [128078]
    assert row.model_version_name == "v9" and row.checkpoint_name == "juggernautXL"
    assert row.reactions == 5 and row.nsfw_level == 1
    assert row.first_seen_at.endswith("+00:00") and row.first_seen_at == row.last_seen_at
    assert store.image(2).is_video
    (src,) = store.sources_for(1)
    assert (src.target_type, src.target_value, src.path, src.linked) == (
        "username",
        "alice",
        "/out/alice/1.png",
        False,
    )


def test_upsert_refreshes_metadata_but_never_work_state(store):
    owner = new_owner()
    store.upsert_listed([record(1)], Source("username", "alice"))
    assert store.claim_download(1, owner)
    store.mark_downloaded(1, owner, "/lib/1.png", "image/png", 10, "ab" * 32, "original")
    store.store_tags(1, owner, [tag(5, "cat")], "api")
    first_seen = store.image(1).first_seen_at
    time.sleep(0.01)

    # Listed again without meta (as anonymous callers get it), with new stats.
    states = store.upsert_listed([record(1, meta=None, stats={"likeCount": 40})], Source("model", "77"))
    row = store.image(1)
    assert row.dl_state == "done" and row.path == "/lib/1.png" and row.sha256 == "ab" * 32
    assert row.tag_state == "done" and row.cv_state == "never"
    assert row.model_version_name == "v9"  # not overwritten by null
    assert row.checkpoint_name == "juggernautXL" and row.prompt == "a cat number 1"
    assert row.meta["prompt"] == "a cat number 1"
    assert row.reactions == 40 and row.record["stats"] == {"likeCount": 40}
    assert row.first_seen_at == first_seen and row.last_seen_at > first_seen
    assert states[1].dl_state == "done" and states[1].path == "/lib/1.png" and states[1].bytes == 10
    assert {(s.target_type, s.target_value) for s in store.sources_for(1)} == {
        ("username", "alice"),
        ("model", "77"),
    }


def test_upsert_replaces_names_when_the_service_sends_new_ones(store):
    store.upsert_listed([record(1)], Source("username", "alice"))
    meta = {"prompt": "p", "civitaiResources": [{"type": "checkpoint", "modelVersionName": "v10"}]}
    store.upsert_listed([record(1, meta=meta)], Source("username", "alice"))
    assert store.image(1).model_version_name == "v10"


def test_upsert_reports_live_claims_of_other_owners(store):
    store.upsert_listed([record(1), record(2)], Source("username", "alice"))
    assert store.claim_download(1, OTHER_HOST_OWNER)
    states = store.upsert_listed([record(1), record(2)], Source("username", "alice"))
    assert states[1].dl_owner == OTHER_HOST_OWNER and states[1].dl_owner_alive
    assert not states[2].dl_owner_alive


def test_upsert_keeps_a_linked_source_path_and_updates_an_unlinked_plan(store):
    owner = new_owner()
    store.upsert_listed([record(1), record(2)], Source("username", "alice", {1: "/a/1.png", 2: "/a/2.png"}))
    store.claim_download(1, owner)
    store.mark_downloaded(1, owner, "/a/1.png", "image/png", 1, "00", "original")
    store.upsert_listed([record(1), record(2)], Source("username", "alice", {1: "/b/1.png", 2: "/b/2.png"}))
    by_id = {s.image_id: s for s in store.sources_for(1) + store.sources_for(2)}
    assert (by_id[1].path, by_id[1].linked) == ("/a/1.png", True)
    assert (by_id[2].path, by_id[2].linked) == ("/b/2.png", False)


def test_upsert_links_a_new_source_whose_plan_is_the_existing_file(store):
    owner = new_owner()
    store.upsert_listed([record(1)], Source("username", "alice", {1: "/a/1.png"}))
    store.claim_download(1, owner)
    store.mark_downloaded(1, owner, "/a/1.png", "image/png", 1, "00", "original")
    store.upsert_listed([record(1)], Source("modelVersion", "128078", {1: "/a/1.png"}))
    assert all(s.linked for s in store.sources_for(1))


def test_upsert_pages_of_more_than_200_and_duplicate_ids(store):
    records = [record(i) for i in range(1, 451)] + [record(3, username="bob")]
    states = store.upsert_listed(records, Source("tag", "cats", model_id=55))
    assert len(states) == 450
    assert store.count_images() == 450
    assert store.image(3).username == "bob"  # the last listing of an id wins
    assert store.sources_for(3)[0].model_id == 55


def test_gone_and_listed_again(store):
    store.upsert_listed([record(1), record(2)], Source("username", "alice"))
    assert store.mark_gone([1, 99]) == 1
    assert store.image(1).gone_at is not None and store.image(2).gone_at is None
    assert store.count_images(include_gone=False) == 1
    store.mark_gone([2])
    store.upsert_listed([record(2)], Source("username", "alice"))  # listed again: back
    assert store.image(2).gone_at is None
    assert store.count_images() == 2  # rows are never deleted


# -- download claims ---------------------------------------------------------------------------


def test_download_claim_is_exclusive_until_released(store):
    a, b = new_owner(), new_owner()
    store.upsert_listed([record(1)], Source("username", "alice"))
    assert store.claim_download(1, a)
    assert store.claim_download(1, a)  # idempotent for the holder
    assert not store.claim_download(1, b)  # a is this live process
    assert store.release_claims(a) == 1
    assert store.claim_download(1, b)
    assert not store.claim_download(999, b)  # unknown image


def test_done_images_are_not_claimed_unless_forced(store):
    owner = new_owner()
    store.upsert_listed([record(1)], Source("username", "alice"))
    store.claim_download(1, owner)
    store.mark_downloaded(1, owner, "/x/1.png", "image/png", 5, "ff", "original")
    row = store.image(1)
    assert row.dl_owner is None and row.dl_state == "done" and row.downloaded_at and row.dl_attempts == 1
    assert not store.claim_download(1, owner)
    assert store.claim_download(1, owner, force=True)


def test_failed_download_is_recorded_and_retryable(store):
    owner = new_owner()
    store.upsert_listed([record(1)], Source("username", "alice"))
    store.claim_download(1, owner)
    store.mark_download_failed(1, owner, "HTTP 404")
    row = store.image(1)
    assert (row.dl_state, row.dl_error, row.dl_owner) == ("failed", "HTTP 404", None)
    assert store.claim_download(1, owner)
    store.mark_downloaded(1, owner, "/x/1.png", "image/png", 5, "ff", "original")
    assert store.image(1).dl_error is None


def test_failure_does_not_overwrite_another_owners_claim_or_a_done_image(store):
    a = new_owner()
    store.upsert_listed([record(1), record(2)], Source("username", "alice"))
    store.claim_download(1, OTHER_HOST_OWNER)
    store.mark_download_failed(1, a, "late failure")
    assert store.image(1).dl_state == "pending" and store.image(1).dl_owner == OTHER_HOST_OWNER
    store.claim_download(2, a)
    store.mark_downloaded(2, a, "/x/2.png", "image/png", 5, "ff", "original")
    store.mark_download_failed(2, a, "late failure")
    assert store.image(2).dl_state == "done"


def test_claims_of_dead_local_processes_and_expired_leases_are_reclaimed(tmp_path):
    with LibraryStore(library_path(tmp_path), download_lease=0.3) as store:
        store.upsert_listed([record(1), record(2), record(3)], Source("username", "alice"))
        host = parse_owner(new_owner())[0]
        dead = f"{host}:{_dead_pid()}:zz"
        assert store.claim_download(1, dead)
        assert store.claim_download(2, OTHER_HOST_OWNER)
        me = new_owner()
        assert store.claim_download(1, me)  # dead pid on this host: free at once
        assert not store.claim_download(2, me)  # other host: wait for the lease
        time.sleep(0.35)
        assert store.claim_download(2, me)


def test_renew_claims_keeps_a_lease_alive(tmp_path):
    with LibraryStore(library_path(tmp_path), download_lease=0.4) as store:
        store.upsert_listed([record(1)], Source("username", "alice"))
        store.claim_download(1, OTHER_HOST_OWNER)
        time.sleep(0.25)
        assert store.renew_claims(OTHER_HOST_OWNER) == 1
        time.sleep(0.25)
        assert not store.claim_download(1, new_owner())


def test_release_claims_of_one_image(store):
    owner = new_owner()
    store.upsert_listed([record(1), record(2)], Source("username", "alice"))
    assert store.claim_downloads([1, 2, 3], owner) == {1, 2}
    assert store.release_claims(owner, image_id=1) == 1
    assert store.image(1).dl_owner is None and store.image(2).dl_owner == owner


def _dead_pid() -> int:
    """A pid that is not running (a finished child)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return proc.pid
    pytest.skip("pid got reused")


# -- sources and paths -------------------------------------------------------------------------


def test_mark_downloaded_links_the_matching_source_and_others_stay_unlinked(store):
    owner = new_owner()
    store.upsert_listed([record(1)], Source("username", "alice", {1: "/u/alice/1.png"}))
    store.upsert_listed([record(1)], Source("model", "77", {1: "/m/77/1.png"}))
    store.claim_download(1, owner)
    store.mark_downloaded(1, owner, "/u/alice/1.png", "image/png", 5, "ff", "original")
    (pending,) = store.unlinked_sources(1)
    assert (pending.target_type, pending.path) == ("model", "/m/77/1.png")
    store.mark_source_linked(1, "model", "77", "/m/77/1.png")
    assert store.unlinked_sources(1) == []
    store.mark_source_linked(1, "tag", "cats", "/t/cats/1.png")  # creates the source
    assert len(store.sources_for(1)) == 3


# -- tags --------------------------------------------------------------------------------------


def test_claim_for_tags_only_downloaded_images_and_each_once(tmp_path):
    with downloaded_store(library_path(tmp_path), range(1, 11)) as store:
        store.upsert_listed([record(50)], Source("username", "alice"))  # not downloaded
        a, b = new_owner(), new_owner()
        got_a = store.claim_for_tags(a, 6)
        got_b = store.claim_for_tags(b, 6)
        assert [r.id for r in got_a] == [1, 2, 3, 4, 5, 6]
        assert [r.id for r in got_b] == [7, 8, 9, 10]
        assert got_a[0].tag_owner == a
        assert store.claim_for_tags(b, 6) == []
        assert store.claim_for_tags(a, 0) == []


def test_claims_limited_to_given_images_are_still_exclusive(tmp_path):
    """"Fetch tags now" / "convert now" in the gallery claim one image like any job does."""
    with downloaded_store(library_path(tmp_path), range(1, 6)) as store:
        a, b = new_owner(), new_owner()
        assert [r.id for r in store.claim_for_tags(a, 10, image_ids=[4])] == [4]
        assert store.claim_for_tags(b, 10, image_ids=[4]) == []  # a holds it
        assert [r.id for r in store.claim_for_tags(b, 10)] == [1, 2, 3, 5]
        assert [r.id for r in store.claim_for_convert(a, 10, image_ids=[2, 3])] == [2, 3]
        assert store.claim_for_convert(b, 10, image_ids=[3]) == []
        assert store.claim_for_convert(b, 10, image_ids=[]) == []


def test_store_tags_replaces_tags_and_keeps_canonical_names(tmp_path):
    with downloaded_store(library_path(tmp_path), [1, 2]) as store:
        owner = new_owner()
        store.claim_for_tags(owner, 10)
        store.store_tags(
            1, owner, [tag(5, "cat", 30, up_votes=31, down_votes=1), tag(6, "dog", 50, automated=True)], "api"
        )
        row = store.image(1)
        assert (
            row.tag_state == "done"
            and row.tag_owner is None
            and row.tag_method == "api"
            and row.tags_fetched_at
        )
        assert [t["name"] for t in store.tags_of(1)] == ["dog", "cat"]
        assert store.tags_of(1)[0] == {
            "id": 6,
            "name": "dog",
            "type": "Label",
            "score": 50,
            "up_votes": 0,
            "down_votes": 0,
            "automated": True,
            "needs_review": False,
        }
        # A display name read from the rendered page does not replace the canonical one; the API's
        # name does, and so does the page's own tRPC answer (the browser method's usual source).
        store.store_tags(2, owner, [tag(5, "Cat", 1, from_page=True)], "browser")
        assert store.tags_of(2)[0]["name"] == "cat"
        store.store_tags(2, owner, [tag(5, "kitty", 1)], "browser")
        assert store.tags_of(2)[0]["name"] == "kitty"
        store.store_tags(2, owner, [tag(5, "feline", 1)], "api")
        assert store.tags_of(1)[1]["name"] == "feline"
        # A re-fetch replaces the image's tags entirely (an empty answer is valid).
        store.store_tags(1, owner, [], "api")
        assert store.tags_of(1) == []
        assert store.image(1).tag_state == "done"
        assert store.top_tags() == [{"id": 5, "name": "feline", "type": "Label", "count": 1}]
        with pytest.raises(UnknownImageError):
            store.store_tags(404, owner, [tag(1, "x")], "api")


def test_failed_tags_are_retried_by_a_later_job_but_not_in_the_same_one(tmp_path):
    with downloaded_store(library_path(tmp_path), [1, 2]) as store:
        job1 = new_owner()
        assert [r.id for r in store.claim_for_tags(job1, 1)] == [1]
        store.mark_tags_failed(1, job1, "HTTP 500")
        assert (store.image(1).tag_state, store.image(1).tag_error) == ("failed", "HTTP 500")
        assert [r.id for r in store.claim_for_tags(job1, 5)] == [2]  # the loop ends
        store.store_tags(2, job1, [], "api")
        assert store.claim_for_tags(job1, 5) == []
        store.release_claims(job1)
        time.sleep(0.01)
        job2 = new_owner()
        assert store.claim_for_tags(job2, 5, retry_failed=False) == []
        assert [r.id for r in store.claim_for_tags(job2, 5)] == [1]


def test_retag_and_max_age(tmp_path):
    with downloaded_store(library_path(tmp_path), [1, 2, 3]) as store:
        owner = new_owner()
        for row in store.claim_for_tags(owner, 10):
            store.store_tags(row.id, owner, [tag(1, "cat")], "api")
        store.release_claims(owner)
        assert store.claim_for_tags(new_owner(), 10) == []
        assert store.claim_for_tags(new_owner(), 10, max_age_days=1) == []
        store.connection.execute(
            "UPDATE images SET tags_fetched_at = '2020-01-01T00:00:00.000+00:00' WHERE id = 2"
        )
        stale = new_owner()
        assert [r.id for r in store.claim_for_tags(stale, 10, max_age_days=30)] == [2]
        store.release_claims(stale)
        time.sleep(0.01)
        retagger = new_owner()
        first = store.claim_for_tags(retagger, 10, retag=True)
        assert [r.id for r in first] == [1, 2, 3]
        for row in first:
            store.store_tags(row.id, retagger, [tag(1, "cat")], "api")
        assert store.claim_for_tags(retagger, 10, retag=True) == []  # no endless re-tag loop


def test_failed_retag_keeps_existing_tags(tmp_path):
    with downloaded_store(library_path(tmp_path), [1]) as store:
        owner = new_owner()
        store.claim_for_tags(owner, 1)
        store.store_tags(1, owner, [tag(1, "cat")], "api")
        store.mark_tags_failed(1, owner, "timeout")
        assert store.image(1).tag_state == "done" and store.tags_of(1)


# -- conversion --------------------------------------------------------------------------------


def test_claim_for_convert_filters(tmp_path):
    path = library_path(tmp_path)
    with downloaded_store(path, [1, 2, 3, 4, 5, 6]) as store:
        owner = new_owner()
        store.upsert_listed([record(2, type="video")], Source("username", "alice"))
        store.upsert_listed([record(3, browsingLevel=4, username="bob")], Source("model", "77"))
        store.upsert_listed([record(4, browsingLevel=2)], Source("username", "alice"))
        meta = {"prompt": "p", "civitaiResources": [{"type": "checkpoint", "modelVersionName": "other"}]}
        store.upsert_listed([record(5, meta=meta)], Source("username", "alice"))
        store.claim_for_tags(owner, 1)
        store.store_tags(1, owner, [tag(1, "cat")], "api")

        def ids(**kw):
            o = new_owner()
            got = [r.id for r in store.claim_for_convert(o, 100, **kw)]
            store.release_claims(o)
            return got

        assert ids() == [1, 2, 3, 4, 5, 6]
        assert ids(include_videos=False) == [1, 3, 4, 5, 6]
        assert ids(only_tagged=True) == [1]
        assert ids(username="BOB") == [3]
        assert ids(model_version_name="other") == [5]
        assert ids(source=("model", "77")) == [3]
        assert ids(nsfw="nsfw") == [3]
        assert ids(nsfw="nsfw", pg13_is_nsfw=True) == [3, 4]
        assert ids(nsfw="sfw") == [1, 2, 4, 5, 6]
        with pytest.raises(ValueError):
            store.claim_for_convert(owner, 1, nsfw="maybe")


def test_record_conversion_with_original_removed_moves_paths(store):
    owner = new_owner()
    store.upsert_listed([record(1)], Source("username", "alice", {1: "/u/1.png"}))
    store.upsert_listed([record(1)], Source("model", "7", {1: "/m/1.png"}))
    store.claim_download(1, owner)
    store.mark_downloaded(1, owner, "/u/1.png", "image/png", 500, "ff", "original")
    store.mark_source_linked(1, "model", "7", "/m/1.png")
    (claimed,) = store.claim_for_convert(owner, 5)
    assert claimed.cv_owner == owner

    class Result:  # what the converter hands back
        webp_path = "/u/1.webp"
        quality = 90
        lossless = False
        src_phash = "aa"
        webp_phash = "ab"
        distance = 1
        src_bytes = 500
        webp_bytes = 120
        original_removed = True

    store.record_conversion(1, owner, Result(), moved_paths={"/m/1.png": "/m/1.webp"})
    row = store.image(1)
    assert (row.cv_state, row.cv_owner, row.path) == ("done", None, "/u/1.webp")
    assert {s.path for s in store.sources_for(1)} == {"/u/1.webp", "/m/1.webp"}
    conv = store.conversion_of(1)
    assert (conv.webp_path, conv.distance, conv.webp_bytes, conv.original_removed) == (
        "/u/1.webp",
        1,
        120,
        True,
    )
    assert store.claim_for_convert(new_owner(), 5) == []


def test_record_conversion_keeping_the_original(store):
    owner = new_owner()
    store.upsert_listed([record(1)], Source("username", "alice", {1: "/u/1.png"}))
    store.claim_download(1, owner)
    store.mark_downloaded(1, owner, "/u/1.png", "image/png", 500, "ff", "original")
    store.record_conversion(1, owner, {"webp_path": "/browse/1.webp", "quality": 80}, lossless=True)
    assert store.image(1).path == "/u/1.png"
    assert store.conversion_of(1).lossless is True
    with pytest.raises(TypeError):
        store.record_conversion(1, owner, webp_path="/a.webp", colour="red")
    with pytest.raises(ValueError):
        store.record_conversion(1, owner, {})


def test_convert_failed_and_skipped(tmp_path):
    with downloaded_store(library_path(tmp_path), [1, 2]) as store:
        job = new_owner()
        store.claim_for_convert(job, 2)
        store.mark_convert_failed(1, job, "phash distance 12")
        store.mark_convert_skipped(2, job, "already webp")
        assert (store.image(1).cv_state, store.image(1).cv_error) == ("failed", "phash distance 12")
        assert (store.image(2).cv_state, store.image(2).cv_error) == ("skipped", "already webp")
        assert store.claim_for_convert(job, 5) == []  # not again in the same job
        store.release_claims(job)
        time.sleep(0.01)
        assert [r.id for r in store.claim_for_convert(new_owner(), 5)] == [1]  # skipped stays skipped


# -- reads -------------------------------------------------------------------------------------


def test_reads_filters_and_order(tmp_path):
    with downloaded_store(library_path(tmp_path), [1, 2, 3]) as store:
        store.upsert_listed(
            [record(4, username="bob", createdAt="2024-01-01T00:00:00Z")], Source("username", "bob")
        )
        owner = new_owner()
        store.claim_for_tags(owner, 1)
        store.store_tags(1, owner, [tag(9, "Cat"), tag(10, "hat")], "api")
        assert [r.id for r in store.list_images(dl_state="done", limit=2, offset=1)] == [2, 3]
        assert store.image_ids(order_by="created_at") == [4, 1, 2, 3]
        assert store.image_ids(order_by="id", descending=True) == [4, 3, 2, 1]
        assert store.image_ids(tags=["cat", "HAT"]) == [1]
        assert store.image_ids(search="number 2") == [2]
        assert store.image_ids(search="%") == []
        assert store.image_ids({"username": "bob"}) == [4]
        assert store.image_ids(ids=[]) == []
        assert store.count_images(dl_state=["pending", "failed"]) == 1
        assert store.version_ids_of_user("ALICE") == [128078]
        with pytest.raises(ValueError):
            store.list_images(order_by="path; DROP TABLE images")
        row = store.image(1)
        assert row["username"] == row.get("username") == "alice" and row.get("nope", 5) == 5


def test_stats(tmp_path):
    with downloaded_store(library_path(tmp_path), [1, 2]) as store:
        store.upsert_listed([record(3, type="video")], Source("username", "alice"))
        owner = new_owner()
        store.claim_for_tags(owner, 1)
        store.store_tags(1, owner, [tag(1, "cat")], "api")
        store.record_conversion(2, owner, webp_path="/w/2.webp", src_bytes=1002, webp_bytes=300)
        stats = store.stats()
        assert stats["images"] == 3 and stats["videos"] == 1
        assert stats["dl_state"] == {"done": 2, "pending": 1}
        assert stats["tag_state"] == {"done": 1, "never": 2}
        assert stats["cv_state"] == {"done": 1, "never": 2}
        assert stats["bytes"] == 1001 + 1002
        assert stats["webp_bytes"] == 300 and stats["conversions"] == 1 and stats["tags"] == 1


def test_tag_summary_rows(store):
    store.upsert_listed(
        [record(1), record(2)], Source("tag", "cats", {1: "/t/cats/1.png", 2: "/t/cats/2.png"})
    )
    store.upsert_listed([record(1)], Source("tag", "animals", {1: "/t/animals/1.png"}))
    rows = store.tag_summary_rows("cats")
    assert [(r["image_id"], r["path"], r["other_tags"]) for r in rows] == [
        (1, "/t/cats/1.png", ["animals"]),
        (2, "/t/cats/2.png", []),
    ]
    assert rows[0]["checkpoint_name"] == "juggernautXL" and rows[0]["url"].startswith("https://")


# -- jobs and saved queries --------------------------------------------------------------------


def test_jobs_lifecycle_and_interrupted_detection(tmp_path):
    with LibraryStore(library_path(tmp_path)) as store:
        me = new_owner()
        dead = f"{parse_owner(me)[0]}:{_dead_pid()}:qq"
        job = store.create_job("download", {"mode": 1, "identifiers": ["alice"]}, owner=me)
        assert store.get_job(job).state == "queued"
        assert store.update_job(job, state="running", progress={"done": 3, "total": 10})
        got = store.get_job(job)
        assert (got.state, got.progress, got.params["identifiers"]) == (
            "running",
            {"done": 3, "total": 10},
            ["alice"],
        )
        assert got["id"] == job and got.get("summary") is None
        orphan = store.create_job("tags", {}, owner=dead, state="running")
        remote = store.create_job("convert", {}, owner=OTHER_HOST_OWNER, state="running")
        finished = store.create_job("tags", {}, owner=dead, state="done")
        assert store.mark_interrupted_jobs() == [orphan]
        assert store.get_job(orphan).state == "interrupted"
        assert store.get_job(remote).state == "running" and store.get_job(finished).state == "done"
        store.update_job(job, state="done", summary={"downloaded": 10})
        assert store.get_job(job).summary == {"downloaded": 10}
        assert [j.id for j in store.list_jobs(kind="tags")] == [finished, orphan]
        assert {j.id for j in store.list_jobs(states=["running"])} == {remote}
        assert store.list_jobs(states=[]) == []
        assert not store.update_job("nope", state="done")
        assert store.get_job("nope") is None
        with pytest.raises(ValueError):
            store.update_job(job, state="exploded")


def test_saved_queries(store):
    qid = store.save_query(1, "alice", {"nsfw": "x"})
    assert store.save_query(1, "alice", {"nsfw": "soft"}) == qid  # upsert on (mode, identifier)
    other = store.save_query(3, "cats", {})
    q = store.get_query(qid)
    assert (q.mode, q.identifier, q.options, q.paused, q.last_run_at) == (
        1,
        "alice",
        {"nsfw": "soft"},
        False,
        None,
    )
    assert store.update_query(qid, paused=True)
    assert store.update_query(qid, options={"nsfw": "none"})
    assert store.get_query(qid).paused and store.get_query(qid).options == {"nsfw": "none"}
    assert store.mark_query_run(qid, {"new": 4})
    assert store.get_query(qid).last_result == {"new": 4} and store.get_query(qid).last_run_at
    assert [q.id for q in store.list_queries()] == [qid, other]
    assert store.delete_query(other) and not store.delete_query(other)
    assert store.get_query(other) is None
    assert not store.update_query(other, paused=False)
