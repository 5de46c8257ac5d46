"""The network policy of core/civitai/client.py, against the fake CivitAI over real HTTP."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from civitgrab_desktop.core.civitai import rest, trpc
from civitgrab_desktop.core.civitai.client import (
    CivitaiClient,
    ClientOptions,
    ClientRequestError,
    HostNotAllowedError,
    HostThrottle,
    RateLimitedError,
    ServerError,
)
from tests.fake_civitai import FaultRule


def make_client(base: str, **opts) -> CivitaiClient:
    options = ClientOptions(**{"backoff_max": 0.05, "retries": 3, "listing_retries": 5, **opts})
    return CivitaiClient(base, options=options)


async def test_throttle_backs_off_once_per_window_and_recovers():
    now = [100.0]
    throttle = HostThrottle(min_interval=0.0, clock=lambda: now[0])
    throttle.on_overload(None)
    first = throttle.interval
    assert first > 0
    for _ in range(7):  # the same burst seen by eight workers
        throttle.on_overload(None)
    assert throttle.interval == first
    now[0] += 0.99  # still inside the window
    throttle.on_overload(None)
    assert throttle.interval == first
    now[0] += 0.02  # the window (at least 1 s) has passed
    throttle.on_overload(None)
    assert throttle.interval == pytest.approx(first * 2)
    for _ in range(60):
        throttle.on_success()
    assert throttle.interval == 0.0


async def test_retry_after_pauses_the_host_and_is_honoured(fake_civitai):
    fake_civitai.add_fault(FaultRule("429", where="api", count=1, retry_after=1))
    waits = []
    async with make_client(fake_civitai.base_url) as client:
        client.add_wait_listener(lambda host, s, why: waits.append((s, why)))
        data = await client.get_json(f"{fake_civitai.base_url}/api/v1/images?username=grace&limit=1")
    assert data["items"]
    assert waits and waits[0][1] == "rate limited" and 0.5 <= waits[0][0] <= 1.0
    # The service saw the retry only after the Retry-After it had asked for (its own clock).
    limited, retried = [r for r in fake_civitai.request_log if r.path == "/api/v1/images"][:2]
    assert limited.fault and not retried.fault
    assert retried.time - limited.time >= 0.9


async def test_retry_after_as_http_date(fake_civitai):
    # The date lies 3 s ahead; the cap (0.4 s) keeps the test short. Without reading the date the
    # client would fall back to its backoff (at most backoff_max = 0.05 s).
    fake_civitai.add_fault(FaultRule("429-date", where="api", count=1, retry_after=3))
    waits = []
    async with make_client(fake_civitai.base_url, retry_after_cap=0.4) as client:
        client.add_wait_listener(lambda host, s, why: waits.append((s, why)))
        data = await client.get_json(f"{fake_civitai.base_url}/api/v1/images?username=grace&limit=1")
    assert data["items"]
    assert sum(1 for r in fake_civitai.request_log if r.fault) == 1
    assert waits == [(0.4, "rate limited")]


async def test_listing_pages_are_retried_harder_than_files(fake_civitai):
    fake_civitai.add_fault(FaultRule("502", where="api", count=5))
    async with make_client(fake_civitai.base_url, retries=1, listing_retries=6) as client:
        pages = [p async for p in rest.iter_image_pages(client, username="grace", nsfw="X")]
    assert pages[0].records
    fake_civitai.clear_faults()
    fake_civitai.add_fault(FaultRule("500", where="cdn", count=3))
    image = fake_civitai.dataset.images_for_user("grace")[0]
    url = f"{fake_civitai.base_url}/xG1nkqKTMzGDvpLrqFT7WA/{image.uuid}/original=true/{image.uuid}.jpeg"
    async with make_client(fake_civitai.base_url, retries=1) as client:

        async def attempt():
            async with client.open(url) as resp:
                return await resp.read()

        with pytest.raises(ServerError):
            await client.retrying(attempt, kind="file")


async def test_other_client_errors_fail_at_once_with_the_service_reason(fake_civitai):
    async with make_client(fake_civitai.base_url) as client:
        with pytest.raises(ClientRequestError) as info:
            await client.get_json(f"{fake_civitai.base_url}/api/v1/images?username=bad%20name")
    assert info.value.status == 400
    assert len([r for r in fake_civitai.request_log if r.path == "/api/v1/images"]) == 1


async def test_unknown_user_is_identifier_not_found_in_both_styles(fake_civitai):
    async with make_client(fake_civitai.base_url) as client:
        with pytest.raises(rest.IdentifierNotFound):
            async for _ in rest.iter_image_pages(client, username="nobody_here"):
                pass
        fake_civitai.configure(not_found_style="500")
        with pytest.raises(rest.IdentifierNotFound):
            async for _ in rest.iter_image_pages(client, username="nobody_here"):
                pass


async def test_foreign_hosts_are_never_contacted(fake_civitai):
    async with make_client(fake_civitai.base_url) as client:
        with pytest.raises(HostNotAllowedError):
            await client.get_json("http://127.0.0.2:9/api/v1/images")
        with pytest.raises(HostNotAllowedError):
            await client.get_json("https://example.com/api/v1/images")


async def test_unknown_tag_is_detected_although_the_service_lists_all_models(fake_civitai):
    async with make_client(fake_civitai.base_url) as client:
        unknown = await rest.search_models_by_tag(client, "zzz-not-a-tag")
        known = await rest.search_models_by_tag(client, "Landscape")
    assert not unknown.tag_found and unknown.models == []
    assert known.tag_found and {m.id for m in known.models} == {m.id for m in fake_civitai.dataset.models_with_tag("landscape")}


async def test_trpc_tags_and_the_origin_gate(fake_civitai):
    image_id = fake_civitai.dataset.named["tags_showcase"]
    async with make_client(fake_civitai.base_url) as client:
        tags = await trpc.get_votable_tags(client, image_id)
    expected = fake_civitai.dataset.expected_tags(image_id)
    assert [t.id for t in tags] == [t["id"] if isinstance(t, dict) else t.id for t in expected]
    trpc_calls = [r for r in fake_civitai.request_log if r.path.startswith("/api/trpc/")]
    assert trpc_calls[0].headers.get("Referer", "").startswith(fake_civitai.base_url)
    fake_civitai.configure(trpc_encoding="devalue")
    async with make_client(fake_civitai.base_url) as client:
        with pytest.raises(trpc.UnsupportedShape):
            await trpc.get_votable_tags(client, image_id)


async def test_politeness_interval_spaces_requests(fake_civitai):
    async with make_client(fake_civitai.base_url, politeness=0.2) as client:
        await asyncio.gather(*[client.get_json(f"{fake_civitai.base_url}/api/v1/tags?limit=1&page={i}") for i in range(1, 5)])
    # The service's own clock: the four requests arrived one politeness interval apart.
    arrivals = sorted(r.time for r in fake_civitai.request_log if r.path == "/api/v1/tags")
    assert len(arrivals) == 4
    assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 0.18


async def test_rate_limited_error_carries_retry_after(fake_civitai):
    fake_civitai.add_fault(FaultRule("429", where="api", count=10, retry_after=2))
    async with make_client(fake_civitai.base_url, retries=0, listing_retries=0) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.get_json(f"{fake_civitai.base_url}/api/v1/tags?limit=1")
    assert info.value.retry_after == pytest.approx(2, abs=0.1)
