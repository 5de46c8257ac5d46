"""The fake CivitAI dataset: determinism, named fixtures, media bytes."""

from __future__ import annotations

import io
import time

from PIL import Image

from civitgrab_desktop.core.civitai.records import checkpoint_name, extract_meta
from tests.fake_civitai import build_dataset, display_name
from tests.fake_civitai.dataset import DATASET_NOW_MS, FRESH_UPVOTE_MS, parse_iso_ms


def test_build_is_deterministic(fake_dataset):
    again = build_dataset()
    assert list(again.images) == list(fake_dataset.images)
    a = again.images[fake_dataset.named["tags_showcase"]]
    b = fake_dataset.images[fake_dataset.named["tags_showcase"]]
    assert (a.uuid, a.created_at, a.meta, a.hash) == (b.uuid, b.created_at, b.meta, b.hash)
    assert again.media(a.id) == fake_dataset.media(b.id)


def test_named_users_and_counts(fake_dataset):
    ds = fake_dataset
    counts = ds.summary()
    assert counts["alice"] == 25
    assert counts["bob_art"] == 12
    assert counts["MixedCase"] == 5
    assert counts["hostile"] == 12
    assert counts["bigcap"] == 600
    assert counts["empty_user"] == 0 and counts["ghost"] == 0
    assert ds.user("ghost").deleted
    assert [i.id for i in ds.images_for_user("mixedcase")] == [i.id for i in ds.images_for_user("MIXEDCASE")]
    assert len(ds.images_for_user("MixedCase")) == 5
    # ghost: the server ignores the filter (global feed)
    assert ds.images_for_user("ghost") == []
    ghost = ds.query_images(username="ghost", mask=31, sort="Newest")
    assert ghost and {i.username for i in ghost} - {"ghost"}


def test_alice_variety(fake_dataset):
    imgs = fake_dataset.images_for_user("alice")
    assert {i.media_format for i in imgs} == {"png", "jpeg", "webp"}
    assert {i.nsfw_level for i in fake_dataset.images_for_user("alice", mask=63)} == {1, 2, 4, 8, 16, 32}
    assert sum(i.meta is None for i in imgs) == 3
    invalid = [i for i in imgs if i.meta is not None and checkpoint_name(i.meta, i.base_model) is None]
    assert len(invalid) == 3
    assert fake_dataset.named["alice_invalid_meta"] in {i.id for i in invalid}
    versions = {v for i in imgs for v in i.model_version_ids}
    assert {2001, 2002, 2003, 2004, 2007} <= versions
    # cross-mode: alice's images also show up in version queries
    assert any(i.username == "alice" for i in fake_dataset.images_for_version(2001))
    assert any(i.username != "alice" for i in fake_dataset.images_for_version(2001))
    assert max(i.width for i in imgs) == 1024 and min(i.width for i in imgs) == 64


def test_bob_videos_and_bigcap(fake_dataset):
    bob = fake_dataset.images_for_user("bob_art")
    assert sorted(i.media_format for i in bob if i.type == "video") == ["mp4", "mp4", "webm"]
    big = fake_dataset.images_for_user("bigcap")
    assert len(big) == 600
    for vid in range(2014, 2020):
        assert len(fake_dataset.images_for_version(vid)) == 100
    assert 0 < len(fake_dataset.images_for_user("bigcap", mask=1)) < 600


def test_hostile_fixtures(fake_dataset):
    imgs = fake_dataset.images_for_user("hostile")
    models = {i.meta.get("Model") for i in imgs if i.meta}
    assert "../../etc/passwd" in models and "CON" in models and "nul.txt" in models
    assert any(m and len(m) == 300 for m in models)
    assert "urn:air:sdxl:checkpoint:civitai:101055@128078" in models
    assert any("Model: evil" in i.meta["prompt"] for i in imgs if i.meta)
    assert fake_dataset.models[1005].name == "../../etc/passwd"
    wrong = fake_dataset.images[fake_dataset.named["wrong_types"]]
    assert wrong.overrides == {"width": "512", "stats": None}
    assert fake_dataset.images[fake_dataset.named["nested_meta"]].meta_nested_always


def test_expected_tags_filter_and_order(fake_dataset):
    iid = fake_dataset.named["tags_showcase"]
    tags = fake_dataset.expected_tags(iid)
    names = [t["name"] for t in tags]
    assert "hat" not in names  # stale non-concrete: dropped
    assert "blue eyes" in names  # fresh non-concrete: kept
    assert "clothing" not in names and "woman" in names  # Rekognition rule
    assert len(tags) > 6
    assert [(-t["score"], t["id"]) for t in tags] == sorted((-t["score"], t["id"]) for t in tags)
    assert list(tags[0]) == ["score", "upVotes", "downVotes", "automated", "needsReview", "concrete",
                             "lastUpvote", "id", "type", "nsfwLevel", "name"]
    page = fake_dataset.page_tag_order(iid)
    assert page[0]["name"] in ("ass", "suggestive") and page[1]["name"] in ("ass", "suggestive")
    assert display_name("1girl") == "woman" and display_name("ass") == "butt"
    for img in list(fake_dataset.images.values())[:200]:
        for t in fake_dataset.expected_tags(img.id):
            fresh = t["lastUpvote"] and parse_iso_ms(t["lastUpvote"]) >= DATASET_NOW_MS - FRESH_UPVOTE_MS
            assert t["concrete"] or fresh
    with_many = [i for i in fake_dataset.images.values() if len(fake_dataset.expected_tags(i.id)) > 6]
    assert len(with_many) > 40
    assert any(not i.tags for i in fake_dataset.images.values())


def test_media_bytes(fake_dataset):
    ds = fake_dataset
    seen = set()
    for img in ds.images_for_user("alice", mask=63) + ds.images_for_user("bob_art", mask=63):
        data, ctype = ds.media(img.id)
        assert ctype == img.content_type
        if img.type == "video":
            assert (data[4:8] == b"ftyp") if img.media_format == "mp4" else data[:4] == b"\x1a\x45\xdf\xa3"
            assert len(data) < 40_000
            continue
        pic = Image.open(io.BytesIO(data))
        assert pic.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[img.media_format]
        assert pic.size == (img.width, img.height)
        if img.media_format == "png" and img.meta:
            text = pic.text["parameters"]
            assert img.meta["prompt"] in text and "Steps:" in text
        seen.add(img.media_format)
        # visual structure: not a flat colour
        lo, hi = pic.convert("L").getextrema()
        assert hi - lo > 30
    assert seen == {"png", "jpeg", "webp"}
    assert ds.media(ds.named["tags_showcase"]) == ds.media(ds.named["tags_showcase"])


def test_meta_shapes_parse(fake_dataset):
    img = fake_dataset.images[fake_dataset.named["alice_urn"]]
    meta = extract_meta({"id": img.id, "meta": img.meta})
    assert meta["Model"].startswith("urn:air:")
    assert checkpoint_name(meta, img.base_model) == next(
        r["modelVersionName"] for r in meta["civitaiResources"] if r["type"] == "checkpoint")


def test_bench_dataset_builds_fast():
    start = time.perf_counter()
    ds = build_dataset(bench_images=10_000)
    assert time.perf_counter() - start < 5
    bench = ds.images_for_user("bench", mask=31)
    assert len(bench) == 10_000
    data, ctype = ds.media(bench[0].id)
    assert ctype == "image/jpeg" and 15_000 < len(data) < 45_000
    assert Image.open(io.BytesIO(data)).size == (256, 256)


def test_fork_isolation(fake_dataset):
    fork = fake_dataset.fork()
    before = len(fake_dataset.images)
    ids = fork.publish("alice", 2)
    assert len(fork.images) == before + 2 and len(fake_dataset.images) == before
    assert fork.images_for_user("alice")[0].id == ids[-1]
    fork.delete([ids[0], fake_dataset.named["tags_showcase"]])
    assert fake_dataset.named["tags_showcase"] in fake_dataset.images
    assert fake_dataset.named["tags_showcase"] not in fork.images
