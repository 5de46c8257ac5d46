"""Service rules kept in core/civitai: hosts, URLs, record parsing."""

from __future__ import annotations

import email.utils
import time

import pytest

from civitgrab_desktop.core.civitai import urls
from civitgrab_desktop.core.civitai.client import parse_retry_after, redact_url
from civitgrab_desktop.core.civitai.hosts import HostPolicy
from civitgrab_desktop.core.civitai.records import (
    RecordError,
    checkpoint_name,
    extract_meta,
    parse_image,
    parse_nsfw_level,
    parse_tag_vote,
)
from civitgrab_desktop.core.model import is_nsfw_level

CDN = "https://image.civitai.com/xG1nkqKTMzGDvpLrqFT7WA"


class TestHostPolicy:
    def test_civitai_hosts_allowed_over_https_only(self):
        policy = HostPolicy("https://civitai.com")
        assert policy.is_allowed("https://civitai.com/api/v1/images")
        assert policy.is_allowed("https://civitai.red/api/v1/images")
        assert policy.is_allowed(f"{CDN}/uuid/original=true/x.jpeg")
        assert not policy.is_allowed("http://image.civitai.com/x")
        assert not policy.is_allowed("https://civitai.com.evil.example/api/v1/images")
        assert not policy.is_allowed("https://evilcivitai.com/x")
        assert not policy.is_allowed("https://example.com/api/v1/images")

    def test_configured_base_is_trusted_exactly(self):
        policy = HostPolicy("http://127.0.0.1:8765")
        assert policy.is_allowed("http://127.0.0.1:8765/api/v1/images?cursor=1")
        assert not policy.is_allowed("http://127.0.0.1:8766/api/v1/images")
        assert not policy.is_allowed("https://127.0.0.1:8765/api/v1/images")

    def test_key_goes_to_api_and_site_only(self):
        policy = HostPolicy("https://civitai.com")
        assert policy.may_send_key("https://civitai.com/api/v1/images")
        assert policy.may_send_key("https://civitai.red/api/trpc/x")
        assert policy.may_send_key("https://civitai.green/api/trpc/x")
        assert not policy.may_send_key("https://civitai.greenery.example/api/trpc/x")
        assert not policy.may_send_key(f"{CDN}/u/original=true/x.jpeg")
        assert not policy.may_send_key("https://example.com/")

    def test_listing_links_must_stay_in_the_api(self):
        policy = HostPolicy("https://civitai.com")
        assert policy.is_allowed_listing("https://civitai.com/api/v1/images?cursor=2")
        assert not policy.is_allowed_listing("https://civitai.com/login?next=/api")


class TestUrls:
    def test_original_url_rewrites_width_segment(self):
        url = f"{CDN}/abc/width=450/abc.jpeg"
        assert urls.media_url(url, original=True, is_video=False) == f"{CDN}/abc/original=true/abc.jpeg"

    def test_resized_url_for_quality_one(self):
        url = f"{CDN}/abc/original=true/abc.jpeg"
        assert urls.media_url(url, original=False, is_video=False, width=4000) == f"{CDN}/abc/width=1800/abc.jpeg"
        assert urls.media_url(url, original=False, is_video=False, width=832) == f"{CDN}/abc/width=832/abc.jpeg"

    def test_videos_are_never_resized(self):
        url = f"{CDN}/abc/original=true/abc.mp4"
        assert urls.media_url(url, original=False, is_video=True) == url

    def test_url_without_params_segment_is_kept(self):
        url = f"{CDN}/abc"
        assert urls.media_url(url, original=True, is_video=False) == url

    def test_images_url_sends_page_size_first(self):
        u = urls.images_url("https://civitai.com", username="a b", nsfw="X")
        assert u == "https://civitai.com/api/v1/images?limit=200&username=a+b&nsfw=X"

    def test_trpc_url_encodes_input(self):
        u = urls.trpc_url("https://civitai.com", "tag.getVotableTags", {"id": 5, "type": "image"})
        assert u.endswith("tag.getVotableTags?input=%7B%22json%22%3A%7B%22id%22%3A5%2C%22type%22%3A%22image%22%7D%7D")

    @pytest.mark.parametrize(
        ("text", "mode", "ident"),
        [
            ("https://civitai.com/user/alice", 1, "alice"),
            ("https://civitai.red/user/Bob_1/images", 1, "Bob_1"),
            ("https://civitai.com/models/123", 2, "123"),
            ("https://civitai.com/models/123/some-name?modelVersionId=456", 4, "456"),
            ("civitai.com/models/77", 2, "77"),
            ("https://civitai.com/tag/sci-fi", 3, "sci-fi"),
            ("https://civitai.com/images/99", 6, "99"),
            ("https://civitai.red/videos/98", 6, "98"),
            ("https://civitai.green/images/97", 6, "97"),  # the SFW site (AppProvider.tsx)
            ("civitai.green/user/carol", 1, "carol"),
            ("https://civitai.com/posts/800030", 5, "800030"),
        ],
    )
    def test_pasted_links(self, text, mode, ident):
        target = urls.parse_pasted(text)
        assert target is not None and (target.mode, target.identifier) == (mode, ident)

    def test_pasted_foreign_links_are_ignored(self):
        assert urls.parse_pasted("https://example.com/user/alice") is None
        assert urls.parse_pasted("alice") is None


class TestRetryAfter:
    def test_seconds_and_cap(self):
        assert parse_retry_after("3", 60) == 3
        assert parse_retry_after("600", 60) == 60
        assert parse_retry_after(None, 60) is None
        assert parse_retry_after("soon", 60) is None

    def test_http_date(self):
        when = email.utils.formatdate(time.time() + 5, usegmt=True)
        assert 3 <= parse_retry_after(when, 60) <= 5.5

    def test_redact_token(self):
        assert redact_url("https://civitai.com/api/v1/images?token=SECRET&limit=2") == "https://civitai.com/api/v1/images?limit=2"


class TestRecords:
    def test_nested_and_flat_meta(self):
        assert extract_meta({"id": 1, "meta": {"prompt": "p"}}) == {"prompt": "p"}
        assert extract_meta({"prompt": "p"}) == {"prompt": "p"}
        assert extract_meta(None) == {}
        # the legacy path's nested shape around a missing meta is no metadata
        assert extract_meta({"id": 5, "meta": None}) == {}
        assert extract_meta({"meta": None}) == {}
        assert extract_meta({"prompt": "p", "meta": None}) == {"prompt": "p", "meta": None}  # a flat meta
        assert extract_meta("garbage") == {}

    def test_nsfw_levels_from_both_shapes(self):
        assert parse_nsfw_level({"nsfwLevel": "Mature", "browsingLevel": 4}) == 4
        assert parse_nsfw_level({"nsfwLevel": "X"}) == 8
        assert parse_nsfw_level({"nsfwLevel": 16}) == 16
        assert parse_nsfw_level({}) == 0
        assert not is_nsfw_level(2) and is_nsfw_level(2, pg13_is_nsfw=True) and is_nsfw_level(4)

    def test_urn_model_names_never_become_folders(self):
        meta = {
            "Model": "urn:air:sdxl:checkpoint:civitai:101055@128078",
            "civitaiResources": [{"type": "checkpoint", "modelVersionId": 128078, "modelVersionName": "v1.0 Real"}],
        }
        assert checkpoint_name(meta, "SDXL 1.0") == "v1.0 Real"
        assert checkpoint_name({"Model": "urn:air:x:civitai:1@2", "prompt": "x"}, "SDXL 1.0") == "SDXL 1.0"
        assert checkpoint_name({"Model": "juggernaut"}, None) == "juggernaut"
        assert checkpoint_name({}, "SDXL") is None

    def test_prompt_model_lines_are_not_a_model(self):
        meta = {"prompt": "a cat\nModel: evil\n", "Model": "good"}
        assert checkpoint_name(meta, None) == "good"

    def test_parse_image_tolerates_wrong_types(self):
        rec = parse_image(
            {"id": "42", "url": "https://x/y", "width": "512", "stats": None, "meta": {"meta": {"prompt": "p"}},
             "modelVersionIds": [1, "2", None, "x"], "type": "video"}
        )
        assert rec.id == 42 and rec.width == 512 and rec.stats == {} and rec.prompt == "p"
        assert rec.model_version_ids == [1, 2] and rec.is_video

    @pytest.mark.parametrize("bad", [None, [], {"id": None, "url": "u"}, {"id": 1}, {"id": -3, "url": "u"}])
    def test_parse_image_rejects_unusable_items(self, bad):
        with pytest.raises(RecordError):
            parse_image(bad)

    def test_tag_vote(self):
        tag = parse_tag_vote(
            {"score": 9, "upVotes": 1, "downVotes": 0, "automated": True, "needsReview": False, "concrete": True,
             "lastUpvote": None, "id": 1465, "type": "UserGenerated", "nsfwLevel": 1, "name": "butt"}
        )
        assert (tag.id, tag.name, tag.score, tag.up_votes, tag.automated) == (1465, "butt", 9, 1, True)
