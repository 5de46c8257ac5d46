"""Property-based tests (hypothesis) for the URLs we build and rewrite: whatever the values, a
listing URL carries exactly the parameters given (decoded back identically) on the API base; a
tRPC URL's input decodes back to its payload; a CDN rewrite keeps host, account, uuid and file
name and changes only the params segment; pasted links round-trip their identifier; and nothing
we build points anywhere but the base we were given.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, quote, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from civitgrab_desktop.core.civitai import urls
from civitgrab_desktop.core.civitai.hosts import HostPolicy

BASES = st.sampled_from(["https://civitai.com", "https://civitai.red", "http://127.0.0.1:8765", "https://civitai.com/"])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
PARAM_NAMES = st.sampled_from(["username", "modelId", "modelVersionId", "cursor", "nsfw", "sort", "period", "tags"])
CDN = "https://image.civitai.com/xG1nkqKTMzGDvpLrqFT7WA"
UUID = st.uuids().map(str)
SEGMENT_PARAMS = st.lists(
    st.sampled_from(["width=450", "original=true", "quality=90", "anim=false", "height=1024", "optimized=true"]),
    min_size=1, max_size=4,
).map(",".join)
NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,20}\.(jpeg|png|webp|mp4)", fullmatch=True)


@settings(max_examples=200)
@given(BASES, st.dictionaries(PARAM_NAMES, TEXT, max_size=6))
def test_images_url_carries_exactly_the_params_on_the_api_base(base, params):
    url = urls.images_url(base, **params)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == urls.site_origin(base)
    assert parts.path == urls.IMAGES_PATH
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    assert pairs[0] == ("limit", str(urls.PAGE_LIMIT))
    assert dict(pairs[1:]) == params and len(pairs) == len(params) + 1
    assert HostPolicy(base).is_allowed_listing(url)


@settings(max_examples=200)
@given(BASES, st.integers(min_value=0, max_value=2**63 - 1),
       st.dictionaries(st.sampled_from(["type", "authed", "note"]), st.one_of(TEXT, st.integers(), st.booleans()), max_size=3))
def test_trpc_input_decodes_back_to_its_payload(base, image_id, extra):
    payload = {"id": image_id, **extra}
    url = urls.trpc_url(base, "tag.getVotableTags", payload)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == urls.site_origin(base)
    assert parts.path == "/api/trpc/tag.getVotableTags"
    (key, raw), = parse_qsl(parts.query, keep_blank_values=True)
    assert key == "input" and json.loads(raw) == {"json": payload}


@settings(max_examples=300)
@given(UUID, SEGMENT_PARAMS, NAMES, st.booleans(), st.booleans(), st.one_of(st.none(), st.integers(1, 10_000)))
def test_cdn_rewrite_changes_only_the_params_segment(uuid, params, name, original, is_video, width):
    url = f"{CDN}/{uuid}/{params}/{name}"
    out = urls.media_url(url, original=original, is_video=is_video, width=width)
    a, b = urlsplit(url), urlsplit(out)
    assert (a.scheme, a.netloc) == (b.scheme, b.netloc)
    before, after = a.path.split("/"), b.path.split("/")
    assert len(before) == len(after)
    assert before[:3] == after[:3] and before[-1] == after[-1]  # account, uuid, file name kept
    wanted = after[3].split(",")
    if original or is_video:
        assert "original=true" in wanted
    else:
        assert wanted == [f"width={min(width or 450, urls.RESIZED_WIDTH_CAP)}"]
    # idempotent: rewriting the result again changes nothing
    assert urls.media_url(out, original=original, is_video=is_video, width=width) == out


@settings(max_examples=200)
@given(st.sampled_from(["https://civitai.com", "https://civitai.red", "https://www.civitai.com", "civitai.com"]),
       st.from_regex(r"[A-Za-z0-9_]{1,30}", fullmatch=True), st.integers(1, 10**9), st.integers(1, 10**9),
       st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_ "), min_size=1, max_size=20))
def test_pasted_links_round_trip_their_identifier(site, username, model_id, version_id, tag):
    user = urls.parse_pasted(f"{site}/user/{username}")
    assert (user.mode, user.identifier) == (1, username)
    model = urls.parse_pasted(f"{site}/models/{model_id}/some-name")
    assert (model.mode, model.identifier) == (2, str(model_id))
    version = urls.parse_pasted(f"{site}/models/{model_id}?modelVersionId={version_id}")
    assert (version.mode, version.identifier) == (4, str(version_id))
    tagged = urls.parse_pasted(f"{site}/tag/{quote(tag)}")
    assert (tagged.mode, tagged.identifier) == (3, tag)


@given(st.sampled_from(["https://evil.example", "https://civitai.com.evil.example", "http://127.0.0.2:1",
                        "https://notcivitai.com", "https://civitai.co"]),
       st.from_regex(r"[A-Za-z0-9_]{1,30}", fullmatch=True))
def test_links_to_other_hosts_are_not_identifiers_and_not_followed(host, username):
    assert urls.parse_pasted(f"{host}/user/{username}") is None
    policy = HostPolicy("https://civitai.com")
    assert not policy.is_allowed_listing(f"{host}/api/v1/images?username={username}")
    assert not policy.may_send_key(f"{host}/api/v1/images")
