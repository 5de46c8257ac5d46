"""Fault injection, latency, the request log, control endpoints and the CLI of the fake CivitAI."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp
import pytest

from tests.fake_civitai import ACCOUNT, FakeCivitai, FaultRule
from tests.fake_civitai.client import get, post_json

ROOT = Path(__file__).resolve().parents[2]


def media_url(fake):
    img = fake.dataset.images[fake.dataset.named["large_jpeg"]]
    return f"{fake.base_url}/{ACCOUNT}/{img.uuid}/original=true/{img.uuid}.jpeg", img


@pytest.mark.parametrize(
    "kind,status",
    [("429", 429), ("429-date", 429), ("429-none", 429), ("500", 500), ("502", 502), ("503", 503), ("504", 504),
     ("html200", 200), ("json-garbage", 200)],
)
def test_status_faults_fire_once(fake_civitai, kind, status):
    fake_civitai.add_fault(FaultRule(kind, where="api", count=1, retry_after=3))
    url = fake_civitai.base_url + "/api/v1/images?username=alice"
    r = get(url)
    assert r.status == status
    ra = r.header("Retry-After")
    if kind == "429":
        assert ra == "3"
    elif kind == "429-date":
        assert parsedate_to_datetime(ra).timestamp() > time.time()
    elif kind == "503":
        assert ra == "2" and r.json() == {"error": "Server busy, please retry shortly."}
    else:
        assert ra is None
    if kind in ("502", "504", "html200"):
        assert r.header("Content-Type").startswith("text/html")
    if kind == "json-garbage":
        assert not isinstance(r.json()["items"], list)
    ok = get(url)
    assert ok.status == 200 and isinstance(ok.json()["items"], list)
    log = fake_civitai.requests("/api/v1/images")
    assert [(x.fault, x.status) for x in log] == [(kind, status), (None, 200)]


def test_fault_matching_where_and_prefix(fake_civitai):
    url, img = media_url(fake_civitai)
    fake_civitai.add_fault(FaultRule("500", where="api"))
    assert get(url).status == 200
    fake_civitai.add_fault(FaultRule("503", where="any", path_prefix="/api/v1/models"))
    assert get(fake_civitai.base_url + "/api/v1/models/1001").status == 500  # first matching rule wins
    fake_civitai.clear_faults()
    fake_civitai.add_fault(FaultRule("503", where="any", path_prefix="/api/v1/models"))
    assert get(fake_civitai.base_url + "/api/v1/models/1001").status == 503
    assert get(fake_civitai.base_url + "/api/v1/tags").status == 200
    fake_civitai.clear_faults()
    fake_civitai.add_fault(FaultRule("500", where="page"))
    assert get(f"{fake_civitai.base_url}/images/{img.id}").status == 500
    assert get(fake_civitai.base_url + "/api/v1/tags").status == 200


def test_reset_and_truncate_http_client(fake_civitai):
    url, _ = media_url(fake_civitai)
    fake_civitai.add_fault(FaultRule("reset", where="cdn", count=1))
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        get(url)
    fake_civitai.clear_faults()
    fake_civitai.add_fault(FaultRule("truncate", where="cdn", count=1))
    with pytest.raises(http.client.IncompleteRead):
        get(url)
    assert get(url).status == 200
    faults = [(r.fault, r.status) for r in fake_civitai.requests("/" + ACCOUNT)]
    assert faults == [("reset", 200), ("truncate", 200), (None, 200)]
    assert 0 < fake_civitai.request_log[0].bytes_sent < fake_civitai.request_log[-1].bytes_sent


async def test_reset_and_truncate_aiohttp(fake_civitai):
    url, img = media_url(fake_civitai)
    full, _ = fake_civitai.dataset.media(img.id)
    async with aiohttp.ClientSession() as session:
        for kind in ("reset", "truncate"):
            fake_civitai.clear_faults()
            fake_civitai.add_fault(FaultRule(kind, where="cdn", count=1))
            with pytest.raises(aiohttp.ClientPayloadError):
                async with session.get(url) as resp:
                    assert resp.status == 200 and resp.content_length == len(full)
                    await resp.read()
            async with session.get(url) as resp:
                assert await resp.read() == full


def test_corrupt_slow_and_json(fake_civitai):
    url, img = media_url(fake_civitai)
    full, ctype = fake_civitai.dataset.media(img.id)
    fake_civitai.add_fault(FaultRule("corrupt", where="cdn", count=1))
    bad = get(url)
    assert bad.status == 200 and len(bad.body) == len(full) and bad.body != full
    assert bad.header("Content-Type") == ctype and bad.body[:100] == full[:100]
    fake_civitai.clear_faults()
    fake_civitai.add_fault(FaultRule("slow", where="cdn", count=1, delay=0.3))
    start = time.perf_counter()
    assert get(url).body == full
    assert time.perf_counter() - start >= 0.3
    fake_civitai.add_fault(FaultRule("json-garbage", where="trpc", count=1))
    r = get(f"{fake_civitai.base_url}/api/trpc/tag.getVotableTags?input=%7B%7D", {"Authorization": "Bearer x"})
    assert r.status == 200 and "result" in r.json() and not isinstance(r.json()["result"], dict)


def _pattern(fake, rule, n=30):
    fake.clear_faults()
    fake.clear_log()
    fake.add_fault(rule)
    for _ in range(n):
        get(fake.base_url + "/api/v1/tags?limit=1")
    return [r.fault is not None for r in fake.request_log]


def test_triggers_rate_count_every(fake_civitai, fake_dataset):
    first = _pattern(fake_civitai, FaultRule("500", rate=0.4, seed=7))
    assert 3 < sum(first) < 27
    with FakeCivitai(fake_dataset) as other:
        assert _pattern(other, FaultRule("500", rate=0.4, seed=7)) == first  # deterministic
    assert _pattern(fake_civitai, FaultRule("500", count=3), 6) == [True] * 3 + [False] * 3
    every = _pattern(fake_civitai, FaultRule("500", every=3), 9)
    assert every == [False, False, True] * 3
    capped = _pattern(fake_civitai, FaultRule("500", every=2, count=2), 8)
    assert capped == [False, True, False, True, False, False, False, False]
    with pytest.raises(ValueError):
        FaultRule("teapot")


def test_latency_and_log(fake_civitai):
    fake_civitai.set_latency(0.25)
    start = time.perf_counter()
    r = get(fake_civitai.base_url + "/api/v1/tags?limit=2&query=a%20b", {"X-Custom-Header": "Yes"})
    assert r.status == 200 and time.perf_counter() - start >= 0.25
    start = time.perf_counter()
    get(fake_civitai.base_url + "/__fake__/log")
    assert time.perf_counter() - start < 0.2  # control endpoints are not delayed
    rec = fake_civitai.requests("/api/v1/tags")[-1]
    assert rec.method == "GET" and rec.status == 200 and rec.fault is None
    assert rec.query == [("limit", "2"), ("query", "a b")]
    assert rec.headers["X-Custom-Header"] == "Yes"
    assert rec.bytes_sent == len(r.body)
    assert not fake_civitai.requests("/__fake__")
    fake_civitai.set_latency(0)
    fake_civitai.clear_log()
    assert fake_civitai.request_log == []


def test_control_endpoints(fake_civitai):
    base = fake_civitai.base_url + "/__fake__"
    assert post_json(base + "/faults", [{"kind": "503", "where": "api", "count": 1}]).status == 200
    assert get(fake_civitai.base_url + "/api/v1/tags").status == 503
    assert get(base + "/faults").json()[0]["fired"] == 1
    assert post_json(base + "/faults", []).json() == []
    assert post_json(base + "/faults", [{"kind": "nope"}]).status == 400
    cfg = post_json(base + "/config", {"not_found_style": "500", "item_cap": 5, "latency": 0}).json()
    assert cfg["not_found_style"] == "500" and cfg["item_cap"] == 5
    assert get(fake_civitai.base_url + "/api/v1/images?username=nobody").status == 500
    assert post_json(base + "/config", {"bogus": 1}).status == 400
    ids = post_json(base + "/publish", {"username": "alice", "count": 2}).json()["ids"]
    assert ids[-1] in fake_civitai.dataset.images
    items = get(fake_civitai.base_url + "/api/v1/images?username=alice&sort=Newest&limit=2").json()["items"]
    assert [i["id"] for i in items] == ids[::-1]
    log = get(base + "/log?path=/api/v1/images").json()
    assert log and all(x["path"] == "/api/v1/images" for x in log)
    assert {"time", "method", "path", "query", "headers", "status", "fault", "bytes_sent"} == set(log[0])
    assert post_json(base + "/delete", {"ids": ids}).status == 200
    info = get(base + "/dataset").json()
    assert info["users"]["alice"] == 25 and info["account"] == ACCOUNT
    assert post_json(base + "/reset", {}).json() == {"ok": True}
    assert fake_civitai.toggles["not_found_style"] == "404" and fake_civitai.item_cap is None
    assert get(base + "/log").json() == []


def test_publish_does_not_leak(fake_civitai, fake_dataset):
    n = len(fake_dataset.images)
    fake_civitai.publish_images("newcomer", 2, type="video")
    assert len(fake_dataset.images) == n and fake_dataset.user("newcomer") is None
    vids = get(fake_civitai.base_url + "/api/v1/images?username=newcomer").json()["items"]
    assert len(vids) == 2 and all(v["type"] == "video" and v["url"].endswith(".mp4") for v in vids)


def test_cli_runs_in_foreground():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_civitai", "--port", "0", "--cap", "3", "--latency", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        body = get(base + "/api/v1/images?username=alice&nsfw=X&limit=2").json()
        assert len(body["items"]) == 2
        nxt = get(body["metadata"]["nextPage"]).json()
        assert len(nxt["items"]) == 1 and nxt["metadata"] == {}
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
