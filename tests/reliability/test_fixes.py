"""Regression tests for the product bugs the reliability suite found (one per fix commit)."""

from __future__ import annotations

import pytest

from civitgrab_desktop.core.civitai import rest
from civitgrab_desktop.core.civitai.client import BadPayloadError, CivitaiClient, ClientOptions
from tests.fake_civitai import FaultRule


def _client(fake) -> CivitaiClient:
    return CivitaiClient(fake.base_url, options=ClientOptions(retries=1, listing_retries=3, backoff_max=0.05))


async def test_a_listing_page_that_breaks_the_schema_is_retried_not_taken_as_empty(fake_civitai):
    # {"items": {"oops": true}, "metadata": []} used to end the listing with 0 items: the user's
    # download "found nothing" (exit 0) and every image it had found before was marked gone.
    fake_civitai.add_fault(FaultRule("json-garbage", where="api", count=2))
    async with _client(fake_civitai) as client:
        pages = [p async for p in rest.iter_image_pages(client, **rest.listing_params(username="grace"))]
    assert sum(len(p.records) for p in pages) == len(fake_civitai.dataset.images_for_user("grace"))
    assert [r.fault for r in fake_civitai.request_log[:3]] == ["json-garbage", "json-garbage", None]


async def test_a_listing_that_never_keeps_to_the_schema_fails_with_a_reason(fake_civitai):
    fake_civitai.add_fault(FaultRule("json-garbage", where="api"))
    async with _client(fake_civitai) as client:
        with pytest.raises(BadPayloadError, match="without a list of items"):
            async for _ in rest.iter_image_pages(client, **rest.listing_params(username="grace")):
                pass
        with pytest.raises(BadPayloadError):
            await rest.search_models_by_tag(client, "landscape")
    assert len(fake_civitai.request_log) == 4 + 4  # 1 + 3 retries each
