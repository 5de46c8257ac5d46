"""The fake CivitAI CDN (§6) and tRPC endpoints (§7)."""

from __future__ import annotations

import io
import json
from urllib.parse import quote

import pytest
from PIL import Image

from tests.fake_civitai import ACCOUNT
from tests.fake_civitai.client import get, request
from tests.fake_civitai.trpc import ORIGIN_GATE_MESSAGE, devalue_parse

# -- CDN ------------------------------------------------------------------------------------------


def cdn(fake, img, params="original=true", name=None, query=""):
    name = f"{img.uuid}.jpeg" if name is None else name
    tail = f"/{params}" + (f"/{name}" if name else "")
    return get(f"{fake.base_url}/{ACCOUNT}/{img.uuid}{tail}{query}")


def pick(ds, fmt):
    return next(i for i in ds.images_for_user("alice", mask=63) + ds.images_for_user("bob_art", mask=63)
                if i.media_format == fmt)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "mp4", "webm"])
def test_original_bytes_real_content_type(fake_civitai, fmt):
    ds = fake_civitai.dataset
    img = pick(ds, fmt)
    expected, ctype = ds.media(img.id)
    for params in ("original=true", "original=true,quality=100", "transcode=true,original=true"):
        r = cdn(fake_civitai, img, params, name=f"{img.uuid}.jpeg")
        assert r.status == 200
        assert r.header("Content-Type") == ctype
        assert int(r.header("Content-Length")) == len(expected)
        assert r.body == expected
    # the extension in the name and any query string are ignored
    assert cdn(fake_civitai, img, name="whatever.png", query="?original=true&x=1").body == expected
    assert cdn(fake_civitai, img, name="").body == expected  # danbooru form, no file name


def test_variants_are_jpeg(fake_civitai):
    ds = fake_civitai.dataset
    png = pick(ds, "png")
    r = cdn(fake_civitai, png, "width=64")
    assert r.header("Content-Type") == "image/jpeg"
    pic = Image.open(io.BytesIO(r.body))
    assert pic.format == "JPEG" and pic.size == (64, round(png.height * 64 / png.width))
    r = cdn(fake_civitai, png, "w")
    assert r.header("Content-Type") == "image/jpeg"
    assert Image.open(io.BytesIO(r.body)).size == (png.width, png.height)
    # ?original=true on a width URL does not make it original (query ignored)
    assert cdn(fake_civitai, png, "width=64", query="?original=true").header("Content-Type") == "image/jpeg"
    video = ds.images[ds.named["bob_mp4"]]
    still = cdn(fake_civitai, video, "anim=false,transcode=true,width=450", name=f"{video.uuid}.mp4")
    assert still.header("Content-Type") == "image/jpeg"
    assert Image.open(io.BytesIO(still.body)).format == "JPEG"
    assert cdn(fake_civitai, video, "transcode=true,width=450").header("Content-Type") == "video/mp4"


def test_cdn_not_found_range_head(fake_civitai):
    ds = fake_civitai.dataset
    img = pick(ds, "jpeg")
    assert get(f"{fake_civitai.base_url}/{ACCOUNT}/00000000-0000-4000-8000-000000000000/original=true/x.jpeg").status == 404
    assert get(f"{fake_civitai.base_url}/otherAccount/{img.uuid}/original=true/x.jpeg").status == 404
    full, _ = ds.media(img.id)
    r = get(f"{fake_civitai.base_url}/{ACCOUNT}/{img.uuid}/original=true/x.jpeg", {"Range": "bytes=10-"})
    assert r.status == 206 and r.body == full[10:]
    assert r.header("Content-Range") == f"bytes 10-{len(full) - 1}/{len(full)}"
    h = request("HEAD", f"{fake_civitai.base_url}/{ACCOUNT}/{img.uuid}/original=true/x.jpeg")
    assert h.status == 200 and h.body == b"" and int(h.header("Content-Length")) == len(full)


def test_deleted_image_disappears_from_cdn(fake_civitai):
    img = pick(fake_civitai.dataset, "webp")
    assert cdn(fake_civitai, img).status == 200
    fake_civitai.delete_images([img.id])
    assert cdn(fake_civitai, img).status == 404


# -- tRPC -----------------------------------------------------------------------------------------


def trpc_url(fake, image_id, proc="tag.getVotableTags", extra=None):
    payload = {"id": image_id, "type": "image"} if proc == "tag.getVotableTags" else {"id": image_id}
    if extra:
        payload.update(extra)
    return f"{fake.base_url}/api/trpc/{proc}?input={quote(json.dumps({'json': payload}))}"


def same_origin(fake):
    return {"Referer": f"{fake.base_url}/images/1"}


def test_votable_tags_shape(fake_civitai):
    ds = fake_civitai.dataset
    iid = ds.named["tags_showcase"]
    r = get(trpc_url(fake_civitai, iid), same_origin(fake_civitai))
    assert r.status == 200
    body = r.json()
    data = body["result"]["data"]
    assert data["json"] == ds.expected_tags(iid)
    for item in data["json"]:
        assert list(item) == ["score", "upVotes", "downVotes", "automated", "needsReview", "concrete",
                              "lastUpvote", "id", "type", "nsfwLevel", "name"]
    dated = {f"{k}.lastUpvote": ["Date"] for k, t in enumerate(data["json"]) if t["lastUpvote"]}
    assert dated and data["meta"] == {"values": dated}
    undated = next(i for i in ds.images.values()
                   if ds.expected_tags(i.id) and not any(t["lastUpvote"] for t in ds.expected_tags(i.id)))
    plain = get(trpc_url(fake_civitai, undated.id), same_origin(fake_civitai)).json()["result"]["data"]
    assert "meta" not in plain
    assert get(trpc_url(fake_civitai, 123), same_origin(fake_civitai)).json() == {"result": {"data": {"json": []}}}


def test_origin_gate(fake_civitai):
    url = trpc_url(fake_civitai, fake_civitai.dataset.named["tags_showcase"])
    host = fake_civitai.base_url
    r = get(url)
    assert r.status == 401
    assert r.json() == {"error": {"json": {"message": ORIGIN_GATE_MESSAGE, "code": -32001,
                                           "data": {"code": "UNAUTHORIZED", "httpStatus": 401,
                                                    "path": "tag.getVotableTags"}}}}
    assert get(url, {"Origin": host}).status == 200
    assert get(url, {"Referer": host + "/"}).status == 200
    assert get(url, {"Referer": "https://civitai.com/images/1"}).status == 401
    assert get(url, {"Origin": "http://evil.example", "Referer": host + "/"}).status == 401  # Origin first
    assert get(url, {"Authorization": "Bearer abc"}).status == 200
    fake_civitai.configure(trpc_auth_required=True)
    assert get(url, {"Referer": host + "/"}).status == 401
    assert get(url, {"Authorization": "Bearer abc"}).status == 200


@pytest.mark.parametrize(
    "raw",
    [
        '{"json":{"id":"abc","type":"image"}}',
        '{"json":{"id":1}}',
        '{"json":{"id":1,"type":"post"}}',
        "{not json",
        None,
    ],
)
def test_bad_input_is_400(fake_civitai, raw):
    url = f"{fake_civitai.base_url}/api/trpc/tag.getVotableTags"
    if raw is not None:
        url += "?input=" + quote(raw)
    r = get(url, same_origin(fake_civitai))
    assert r.status == 400
    err = r.json()["error"]["json"]
    assert err["code"] == -32600 and err["data"]["code"] == "BAD_REQUEST"


def test_batched_and_unknown_proc(fake_civitai):
    iid = fake_civitai.dataset.named["tags_showcase"]
    inp = {"0": {"json": {"id": iid, "type": "image"}}, "1": {"json": {"id": iid}}}
    url = f"{fake_civitai.base_url}/api/trpc/tag.getVotableTags,image.get?batch=1&input={quote(json.dumps(inp))}"
    r = get(url, same_origin(fake_civitai))
    assert r.status == 200
    body = r.json()
    assert isinstance(body, list) and len(body) == 2
    assert body[0]["result"]["data"]["json"] == fake_civitai.dataset.expected_tags(iid)
    assert body[1]["result"]["data"]["json"]["id"] == iid
    r = get(f"{fake_civitai.base_url}/api/trpc/nope.nothing?input={quote('{}')}", same_origin(fake_civitai))
    assert r.status == 404 and r.json()["error"]["json"]["data"]["code"] == "NOT_FOUND"


def test_devalue_toggle(fake_civitai):
    iid = fake_civitai.dataset.named["tags_showcase"]
    fake_civitai.configure(trpc_encoding="devalue")
    body = get(trpc_url(fake_civitai, iid), same_origin(fake_civitai)).json()
    assert isinstance(body["result"]["data"], str)
    assert devalue_parse(body["result"]["data"]) == fake_civitai.dataset.expected_tags(iid)


def test_image_get_and_model_tags(fake_civitai):
    ds = fake_civitai.dataset
    img = ds.images[ds.named["bob_webm"]]
    data = get(trpc_url(fake_civitai, img.id, "image.get"), same_origin(fake_civitai)).json()["result"]["data"]
    j = data["json"]
    assert j["url"] == img.uuid and j["mimeType"] == "video/webm" and j["nsfwLevel"] == img.nsfw_level
    assert j["user"]["username"] == "bob_art" and data["meta"] == {"values": {"createdAt": ["Date"]}}
    r = get(trpc_url(fake_civitai, 5, "image.get"), same_origin(fake_civitai))
    assert r.status == 404 and r.json()["error"]["json"]["message"] == "No image with id 5"
    gen = get(trpc_url(fake_civitai, img.id, "image.getGenerationData"), same_origin(fake_civitai)).json()
    assert gen["result"]["data"]["json"]["resources"][0]["modelVersionId"] == 2012
    url = f"{fake_civitai.base_url}/api/trpc/tag.getVotableTags?input=" + quote(
        json.dumps({"json": {"id": 1001, "type": "model"}}))
    tags = get(url, same_origin(fake_civitai)).json()["result"]["data"]["json"]
    assert [t["name"] for t in tags] == ["anime", "illustration", "style"] and all(t["nsfwLevel"] == 0 for t in tags)


def test_votable_tags_take_and_its_default(fake_civitai):
    """tag.schema.ts: `take` is optional; tag.service.ts defaults it to 100."""
    ds = fake_civitai.dataset
    iid = ds.named["many_tags"]
    headers = {"Referer": fake_civitai.base_url + "/"}

    def call(inp):
        url = f"{fake_civitai.base_url}/api/trpc/tag.getVotableTags?input=" + quote(json.dumps({"json": inp}))
        return get(url, headers).json()["result"]["data"]["json"]

    assert len(call({"id": iid, "type": "image"})) == 100
    tags = call({"id": iid, "type": "image", "take": 1000})
    assert len(tags) == 150 and tags == ds.all_tags(iid)
    assert len(call({"id": iid, "type": "image", "take": 7})) == 7
