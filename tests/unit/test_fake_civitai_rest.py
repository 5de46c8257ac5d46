"""The fake CivitAI REST API against civitai_api.md §3-§4 (real HTTP)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fake_civitai import ACCOUNT
from tests.fake_civitai.client import get, request

ITEM_KEYS = ["id", "url", "hash", "width", "height", "nsfwLevel", "type", "nsfw", "browsingLevel", "createdAt",
             "postId", "stats", "meta", "username", "baseModel", "modelVersionIds"]


def api(fake, path, headers=None):
    return get(fake.base_url + path, headers)


def walk(fake, path, headers=None):
    """Follow metadata.nextPage; returns (items, pages' metadata)."""
    items, metas = [], []
    url = fake.base_url + path
    for _ in range(500):
        r = get(url, headers)
        assert r.status == 200, r.body
        body = r.json()
        items += body["items"]
        metas.append(body["metadata"])
        url = body["metadata"].get("nextPage")
        if not url:
            return items, metas
    raise AssertionError("did not stop")


@pytest.mark.parametrize(
    "query,mask",
    [
        ("", 1),
        ("&nsfw=false", 1),
        ("&nsfw=None", 1),
        ("&nsfw=Soft", 3),
        ("&nsfw=Mature", 7),
        ("&nsfw=X", 31),
        ("&nsfw=true", 60),
        ("&nsfw=TRUE", 60),
        ("&nsfw=yes", 60),
        ("&nsfw=0", 1),
        ("&nsfw=Blocked", 32),
        ("&browsingLevel=6", 6),
        ("&nsfw=X&browsingLevel=16", 16),
    ],
)
def test_nsfw_mask_table(fake_civitai, query, mask):
    r = api(fake_civitai, f"/api/v1/images?username=alice&limit=200&sort=Newest{query}")
    assert r.status == 200
    got = [i["id"] for i in r.json()["items"]]
    assert got == [i.id for i in fake_civitai.dataset.images_for_user("alice", mask=mask)]
    assert got
    if mask == 60:
        assert not {i["browsingLevel"] for i in r.json()["items"]} & {1, 2}


def test_item_shape_and_urls(fake_civitai):
    ds = fake_civitai.dataset
    r = api(fake_civitai, "/api/v1/images?username=bob_art&nsfw=X&limit=200&sort=Newest")
    items = r.json()["items"]
    assert [i["id"] for i in items] == [i.id for i in ds.images_for_user("bob_art")]
    for it in items:
        assert list(it) == ITEM_KEYS
        img = ds.images[it["id"]]
        ext = "mp4" if img.type == "video" else "jpeg"
        assert it["url"] == f"{fake_civitai.base_url}/{ACCOUNT}/{img.uuid}/original=true/{img.uuid}.{ext}"
        assert it["meta"] is None  # withMeta off
        assert it["nsfw"] == (it["nsfwLevel"] != "None")
        assert it["createdAt"].endswith("Z") and len(it["createdAt"]) == 24
        assert it["stats"]["dislikeCount"] == 0
    soft = next(i for i in items if i["browsingLevel"] == 2)
    assert soft["nsfwLevel"] == "Soft" and soft["nsfw"] is True
    fake_civitai.configure(url_era="width")
    it = api(fake_civitai, f"/api/v1/images?imageId={items[0]['id']}&nsfw=X").json()["items"][0]
    img = ds.images[it["id"]]
    assert it["url"].endswith(f"/{img.uuid}/width={img.width}/{img.uuid}.{img.url_ext}")


def test_meta_shapes(fake_civitai):
    ds = fake_civitai.dataset
    iid = ds.named["tags_showcase"]
    img = ds.images[iid]
    flat = api(fake_civitai, "/api/v1/images?username=alice&nsfw=X&withMeta=true&limit=200").json()["items"]
    by_id = {i["id"]: i for i in flat}
    assert by_id[iid]["meta"] == img.meta
    assert by_id[ds.named["alice_no_meta"]]["meta"] is None
    legacy = api(fake_civitai, f"/api/v1/images?imageId={iid}&withMeta=true").json()["items"]
    assert legacy[0]["meta"] == {"id": iid, "meta": img.meta}
    by_model = api(fake_civitai, "/api/v1/images?modelId=1001&nsfw=X&withMeta=true&limit=200").json()["items"]
    assert all(i["meta"] is None or set(i["meta"]) == {"id", "meta"} for i in by_model)
    assert {i["id"] for i in by_model} == {i.id for i in ds.images_for_model(1001)}
    forced = api(fake_civitai, f"/api/v1/images?imageId={iid}&withMeta=true&flatMeta=true").json()["items"]
    assert forced[0]["meta"] == img.meta
    nested = ds.named["nested_meta"]
    hostile = api(fake_civitai, "/api/v1/images?username=hostile&nsfw=X&withMeta=true&limit=200").json()["items"]
    assert {i["id"]: i for i in hostile}[nested]["meta"]["id"] == nested
    wrong = {i["id"]: i for i in hostile}[ds.named["wrong_types"]]
    assert wrong["width"] == "512" and wrong["stats"] is None and wrong["url"].startswith("http")
    fake_civitai.configure(meta_shape_default="nested")
    items = api(fake_civitai, "/api/v1/images?username=alice&nsfw=X&withMeta=true").json()["items"]
    assert all(i["meta"] is None or set(i["meta"]) == {"id", "meta"} for i in items)
    fake_civitai.configure(meta_always=True, meta_shape_default="flat")
    items = api(fake_civitai, "/api/v1/images?username=alice&nsfw=X").json()["items"]
    assert any(i["meta"] for i in items)


def test_with_tags(fake_civitai):
    iid = fake_civitai.dataset.named["tags_showcase"]
    it = api(fake_civitai, f"/api/v1/images?imageId={iid}&withTags=true").json()["items"][0]
    assert list(it)[-1] == "tags"
    assert {t["id"] for t in it["tags"]} == {v.id for v in fake_civitai.dataset.images[iid].tags}  # unfiltered


def test_next_page_repeats_params_and_host(fake_civitai):
    path = "/api/v1/images?limit=7&username=alice&nsfw=X&sort=Most%20Reactions&foo=a%20b%7Cc"
    r = api(fake_civitai, path, {"Host": "civitai.example:8443"})
    meta = r.json()["metadata"]
    nxt = meta["nextPage"]
    prefix = "http://civitai.example:8443/api/v1/images?limit=7&username=alice&nsfw=X&sort=Most%20Reactions" \
             "&foo=a%20b%7Cc&cursor="
    assert nxt.startswith(prefix)
    assert "%7C" in nxt[len(prefix):] and "|" in meta["nextCursor"]
    assert dict(parse_qsl(urlsplit(nxt).query))["cursor"] == meta["nextCursor"]
    assert r.json()["items"][0]["url"].startswith(f"http://civitai.example:8443/{ACCOUNT}/")
    # cursor replaced in place
    r2 = api(fake_civitai, f"/api/v1/images?cursor={meta['nextCursor'].replace('|', '%7C')}&limit=7"
                           "&username=alice&nsfw=X&sort=Most%20Reactions")
    nxt2 = r2.json()["metadata"]["nextPage"]
    assert urlsplit(nxt2).query.startswith("cursor=") and urlsplit(nxt2).query.count("cursor=") == 1
    # overrides
    fake_civitai.configure(next_page_host_override="http://evil.example:1", allowed_media_host_override="http://cdn.evil:2")
    r3 = api(fake_civitai, "/api/v1/images?limit=2&username=alice&nsfw=X").json()
    assert r3["metadata"]["nextPage"].startswith("http://evil.example:1/api/v1/images?limit=2&")
    assert r3["items"][0]["url"].startswith(f"http://cdn.evil:2/{ACCOUNT}/")


@pytest.mark.parametrize("sort", ["Newest", "Oldest", "Most Reactions", "Most Comments", "Most Collected", "Random"])
def test_full_walk_every_sort(fake_civitai, sort):
    items, metas = walk(fake_civitai, f"/api/v1/images?limit=9&username=alice&nsfw=X&sort={sort.replace(' ', '%20')}")
    ids = [i["id"] for i in items]
    assert sorted(ids) == sorted(i.id for i in fake_civitai.dataset.images_for_user("alice"))
    assert ids == [i.id for i in fake_civitai.dataset.images_for_user("alice", sort=sort)]
    assert metas[-1] == {}
    if sort == "Oldest":
        assert ids == [i.id for i in fake_civitai.dataset.images_for_user("alice")][::-1]


def test_empty_and_not_found(fake_civitai):
    assert api(fake_civitai, "/api/v1/images?username=empty_user&nsfw=X").json() == {"items": [], "metadata": {}}
    assert api(fake_civitai, "/api/v1/images?modelVersionId=999999").json() == {"items": [], "metadata": {}}
    r = api(fake_civitai, "/api/v1/images?username=nobody_here")
    assert (r.status, r.json()) == (404, {"error": "User not found", "code": "NOT_FOUND"})
    fake_civitai.configure(not_found_style="500")
    r = api(fake_civitai, "/api/v1/images?username=nobody_here")
    assert (r.status, r.json()) == (500, {"error": "User not found"})
    ghost = api(fake_civitai, "/api/v1/images?username=ghost&nsfw=X&limit=50")
    assert ghost.status == 200
    assert ghost.json()["items"] and all(i["username"] != "ghost" for i in ghost.json()["items"])


def test_citext_username(fake_civitai):
    a = api(fake_civitai, "/api/v1/images?username=mixedcase&nsfw=X").json()["items"]
    b = api(fake_civitai, "/api/v1/images?username=MixedCase&nsfw=X").json()["items"]
    assert len(a) == 5 and a == b


@pytest.mark.parametrize(
    "query,field",
    [
        ("username=bad-name", "username"),
        ("username=a%20b", "username"),
        ("sort=Best", "sort"),
        ("nsfw=maybe", "nsfw"),
        ("nsfw=Safe", "nsfw"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("type=gif", "type"),
        ("withMeta=perhaps", "withMeta"),
        ("period=Century", "period"),
        ("modelVersionId=x1", "modelVersionId"),
    ],
)
def test_bad_params_400(fake_civitai, query, field):
    r = api(fake_civitai, f"/api/v1/images?{query}")
    assert r.status == 400
    err = r.json()["error"]
    assert err["name"] == "ZodError" and err["issues"][0]["path"] == [field]


def test_unknown_params_ignored_and_bad_cursor(fake_civitai):
    assert api(fake_civitai, "/api/v1/images?username=alice&whatever=1&nsfw=X").status == 200
    assert api(fake_civitai, "/api/v1/images?username=alice&cursor=garbage").status == 400


def test_page_mode_and_429(fake_civitai):
    exp = [i.id for i in fake_civitai.dataset.images_for_user("alice", sort="Newest")]
    body = api(fake_civitai, "/api/v1/images?username=alice&nsfw=X&sort=Newest&limit=10&page=2").json()
    assert [i["id"] for i in body["items"]] == exp[10:20]
    meta = body["metadata"]
    assert meta["currentPage"] == 2 and meta["pageSize"] == 10
    assert meta["nextPage"].endswith("&limit=10&page=3")
    last = api(fake_civitai, "/api/v1/images?username=alice&nsfw=X&sort=Newest&limit=10&page=3").json()
    assert last["metadata"] == {"currentPage": 3, "pageSize": 10}
    r = api(fake_civitai, "/api/v1/images?username=alice&limit=200&page=6")
    assert r.status == 429
    assert r.json() == {"error": "You've requested too many pages, please use cursors instead"}
    assert api(fake_civitai, "/api/v1/images?username=alice&limit=200&page=5").status == 200


def test_default_limit_and_cap(fake_civitai):
    assert len(api(fake_civitai, "/api/v1/images?username=bigcap&nsfw=X").json()["items"]) == 100
    fake_civitai.configure(default_limit=50)
    assert len(api(fake_civitai, "/api/v1/images?username=bigcap&nsfw=X").json()["items"]) == 50
    fake_civitai.set_item_cap(250)
    newest, metas = walk(fake_civitai, "/api/v1/images?limit=100&username=bigcap&nsfw=X&sort=Newest")
    assert [len(m) for m in metas] == [2, 2, 0] and len(newest) == 250
    oldest, _ = walk(fake_civitai, "/api/v1/images?limit=100&username=bigcap&nsfw=X&sort=Oldest")
    sfw, _ = walk(fake_civitai, "/api/v1/images?limit=100&username=bigcap&sort=Newest")
    assert len(oldest) == 250 and len(sfw) == 250
    assert len({i["id"] for i in newest + oldest}) == 500
    per_version = walk(fake_civitai, "/api/v1/images?limit=200&username=bigcap&modelVersionId=2015&nsfw=X")[0]
    assert {i["id"] for i in per_version} == {i.id for i in fake_civitai.dataset.images_for_version(2015)}
    fake_civitai.set_item_cap(None)
    assert len(walk(fake_civitai, "/api/v1/images?limit=200&username=bigcap&nsfw=X")[0]) == 600


def test_filters(fake_civitai):
    ds = fake_civitai.dataset
    vids = api(fake_civitai, "/api/v1/images?username=bob_art&nsfw=X&type=video").json()["items"]
    assert len(vids) == 3 and all(v["url"].endswith(".mp4") for v in vids)
    img = ds.images[ds.named["tags_showcase"]]
    post = api(fake_civitai, f"/api/v1/images?postId={img.post_id}&nsfw=X").json()["items"]
    assert img.id in {i["id"] for i in post} and all(i["postId"] == img.post_id for i in post)
    uid = api(fake_civitai, f"/api/v1/images?userId={img.user_id}&nsfw=X&limit=200").json()["items"]
    assert len(uid) == len(ds.images_for_user("alice", mask=31)) == 24
    tagged = api(fake_civitai, "/api/v1/images?tags=5133&nsfw=X&limit=200").json()["items"]
    assert img.id in {i["id"] for i in tagged}
    base = api(fake_civitai, "/api/v1/images?baseModels=Pony&nsfw=X&limit=200").json()["items"]
    assert base and all(i["baseModel"] == "Pony" for i in base)


def test_publish_while_paging(fake_civitai):
    first = api(fake_civitai, "/api/v1/images?limit=10&username=alice&nsfw=X&sort=Newest").json()
    new_ids = fake_civitai.publish_images("alice", 3)
    rest, _ = walk(fake_civitai, urlsplit(first["metadata"]["nextPage"]).path + "?" +
                   urlsplit(first["metadata"]["nextPage"]).query)
    ids = [i["id"] for i in first["items"] + rest]
    assert len(ids) == len(set(ids)) == 24 and not set(ids) & set(new_ids)
    fresh = api(fake_civitai, "/api/v1/images?limit=3&username=alice&nsfw=X&sort=Newest").json()["items"]
    assert [i["id"] for i in fresh] == new_ids[::-1]
    fake_civitai.delete_images(new_ids[:1])
    after = api(fake_civitai, "/api/v1/images?limit=200&username=alice&nsfw=X").json()["items"]
    assert len(after) == 26 and new_ids[0] not in {i["id"] for i in after}


def test_headers_and_methods(fake_civitai):
    r = api(fake_civitai, "/api/v1/images?username=alice")
    assert r.header("Content-Type").startswith("application/json")
    assert r.header("Cache-Control") == "public, s-maxage=300, stale-while-revalidate=150"
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert request("POST", fake_civitai.base_url + "/api/v1/images").status == 405


# -- models -------------------------------------------------------------------------------------


def test_models_list_and_tag_semantics(fake_civitai):
    ds = fake_civitai.dataset
    everything, _ = walk(fake_civitai, "/api/v1/models?nsfw=true&limit=5")
    assert sorted(m["id"] for m in everything) == sorted(ds.models)
    anime = api(fake_civitai, "/api/v1/models?tag=anime&nsfw=True").json()["items"]
    assert sorted(m["id"] for m in anime) == [m.id for m in ds.models_with_tag("anime")] == [1001, 1005]
    assert api(fake_civitai, "/api/v1/models?tag=ANIME&nsfw=true").json()["items"] == anime
    assert api(fake_civitai, "/api/v1/models?tagname=anime&nsfw=true").json()["items"] == anime
    unknown = api(fake_civitai, "/api/v1/models?tag=no%20such%20tag%20xyz&nsfw=true&limit=100").json()["items"]
    assert len(unknown) == len(ds.models)  # §4.2: unknown tag → all models
    assert api(fake_civitai, "/api/v1/models?tag=retro%20style&nsfw=true").json() == {"items": [], "metadata": {}}
    hostile = api(fake_civitai, "/api/v1/models?username=hostile&nsfw=true").json()["items"]
    assert sorted(m["id"] for m in hostile) == [1005, 1012]
    q = api(fake_civitai, "/api/v1/models?query=portrait&nsfw=true").json()["items"]
    assert [m["id"] for m in q] == [1004]


def test_model_item_shape(fake_civitai):
    m = api(fake_civitai, "/api/v1/models/1001").json()
    assert list(m)[:3] == ["id", "name", "description"]
    assert m["creator"] == {"username": "carol", "image": None}
    assert [v["id"] for v in m["modelVersions"]] == [2001, 2002]
    v = m["modelVersions"][0]
    assert v["files"][0]["primary"] is True and v["downloadUrl"].endswith("/api/download/models/2001")
    img = v["images"][0]
    assert isinstance(img["nsfwLevel"], int) and img["url"].endswith(f"/original=true/{img['id']}.jpeg")
    archived = api(fake_civitai, "/api/v1/models/1007").json()
    assert archived["mode"] == "Archived" and archived["modelVersions"][0]["files"] == []
    assert "downloadUrl" not in archived["modelVersions"][0]
    r = api(fake_civitai, "/api/v1/models/424242")
    assert (r.status, r.json()) == (404, {"error": "No model with id 424242"})
    assert api(fake_civitai, "/api/v1/models/abc").status == 400


def test_models_errors_and_paging(fake_civitai):
    r = api(fake_civitai, "/api/v1/models?limit=100&page=11")
    assert r.status == 429
    assert api(fake_civitai, "/api/v1/models?query=x&page=1").status == 400
    assert api(fake_civitai, "/api/v1/models?limit=101").status == 400
    assert api(fake_civitai, "/api/v1/models?favorites=true").status == 401
    body = api(fake_civitai, "/api/v1/models?limit=3&page=1&nsfw=true").json()
    assert body["metadata"]["currentPage"] == 1 and "cursor=" in body["metadata"]["nextPage"]
    sfw = api(fake_civitai, "/api/v1/models?limit=100").json()["items"]
    for m in sfw:
        for v in m["modelVersions"]:
            assert all(i["nsfwLevel"] == 1 for i in v["images"])


def test_model_versions(fake_civitai):
    ds = fake_civitai.dataset
    v = api(fake_civitai, "/api/v1/model-versions/2003").json()
    assert v["id"] == 2003 and v["modelId"] == 1002 and v["air"] == "urn:air:sd1:checkpoint:civitai:1002@2003"
    assert 0 < len(v["images"]) <= 10
    for img in v["images"]:
        src = ds.images[img["id"]]
        assert img["meta"] == src.meta and img["nsfwLevel"] == src.nsfw_level
        assert img["url"].endswith(f"/{src.uuid}/original=true/{src.id}.{src.url_ext}")
    assert api(fake_civitai, "/api/v1/model-versions/2009").json()["name"] == "CON"
    r = api(fake_civitai, "/api/v1/model-versions/99999")
    assert (r.status, r.json()) == (404, {"error": "Model not found"})
    r = api(fake_civitai, "/api/v1/model-versions/0")
    assert (r.status, r.json()) == (400, {"error": "Missing modelVersionId"})
    assert api(fake_civitai, "/api/v1/model-versions/abc").status == 400
    assert api(fake_civitai, "/api/v1/model-versions/2013").json() == {"error": "Missing model file"}


def test_tags_endpoint(fake_civitai):
    assert api(fake_civitai, "/api/v1/tags?limit=0").status == 400
    first = api(fake_civitai, "/api/v1/tags").json()
    assert len(first["items"]) == 20
    assert first["metadata"] == {"totalItems": 0, "currentPage": 1, "pageSize": 20, "totalPages": 1}
    assert "nextPage" not in first["metadata"]
    names, page = [], 1
    while True:
        items = api(fake_civitai, f"/api/v1/tags?limit=200&page={page}").json()["items"]
        if not items:
            break
        names += [i["name"] for i in items]
        page += 1
    assert page >= 3 and len(names) == len(set(names)) > 400
    assert "nsfw" not in names and "unfeatured thing" not in names
    spaced = next(i for i in first["items"] if " " in i["name"])
    assert spaced["link"].endswith(f"/api/v1/models?tag={spaced['name']}")
    pref = api(fake_civitai, "/api/v1/tags?query=sci").json()["items"]
    assert pref[0]["name"] == "sci-fi"
    assert "nsfw" in [i["name"] for i in api(fake_civitai, "/api/v1/tags?query=nsf").json()["items"]]
    fake_civitai.configure(tags_metadata="legacy")
    legacy = api(fake_civitai, "/api/v1/tags?limit=200").json()["metadata"]
    assert legacy["totalItems"] == len(names) and legacy["nextPage"].endswith("limit=200&page=2")


# -- behaviours copied from the real source for issue 18 ---------------------------------------------


def test_legacy_path_nests_a_null_meta(fake_civitai):
    """image-search.service.ts runImageSearch: the legacy path wraps even a missing meta."""
    ds = fake_civitai.dataset
    iid = ds.named["alice_no_meta"]
    item = api(fake_civitai, f"/api/v1/images?imageId={iid}&nsfw=X&withMeta=true").json()["items"][0]
    assert item["meta"] == {"id": iid, "meta": None}
    item = api(fake_civitai, f"/api/v1/images?imageId={iid}&nsfw=X&withMeta=true&flatMeta=true").json()["items"][0]
    assert item["meta"] is None
    item = api(fake_civitai, f"/api/v1/images?imageId={iid}&nsfw=X").json()["items"][0]
    assert item["meta"] is None  # no withMeta: null on every path


def test_private_posts_only_for_their_owner(fake_civitai):
    ids = fake_civitai.publish_images("alice", 2, availability="Private")
    fake_civitai.add_api_key("alices-key", "alice")
    listed = lambda headers=None: {i["id"] for i in walk(fake_civitai, "/api/v1/images?username=alice&nsfw=X", headers)[0]}  # noqa: E731
    assert not set(ids) & listed()
    assert not set(ids) & listed({"Authorization": "Bearer someone-else"})
    assert set(ids) <= listed({"Authorization": "Bearer alices-key"})


def test_anonymous_cap_and_me(fake_civitai):
    everything = walk(fake_civitai, "/api/v1/images?username=alice&nsfw=X")[0]
    assert {i["browsingLevel"] for i in everything} > {1}
    fake_civitai.configure(anonymous_public_only=True)
    anonymous = walk(fake_civitai, "/api/v1/images?username=alice&nsfw=X")[0]
    assert anonymous and {i["browsingLevel"] for i in anonymous} == {1}
    keyed = walk(fake_civitai, "/api/v1/images?username=alice&nsfw=X", {"Authorization": "Bearer k"})[0]
    assert len(keyed) == len(everything)
    # /api/v1/me (AuthedEndpoint): 401 without a valid key; a revoked key is anonymous everywhere
    assert get(f"{fake_civitai.base_url}/api/v1/me").status == 401
    assert get(f"{fake_civitai.base_url}/api/v1/me", {"Authorization": "Bearer k"}).json()["username"]
    fake_civitai.revoke_api_key("k")
    assert get(f"{fake_civitai.base_url}/api/v1/me", {"Authorization": "Bearer k"}).status == 401
    assert len(walk(fake_civitai, "/api/v1/images?username=alice&nsfw=X", {"Authorization": "Bearer k"})[0]) == len(anonymous)
