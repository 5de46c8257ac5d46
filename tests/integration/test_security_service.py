"""A hostile service (issue 15, findings 2 and 4): huge bodies, JSON nested past the recursion
limit, cursors that never end, redirects to other hosts, a key over plain http. A small aiohttp
server on 127.0.0.1 plays the service (the fake CivitAI copies the real one, which does none of
this); the client, the REST listing and the CLI are the real ones."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from civitgrab_desktop.core.civitai import rest
from civitgrab_desktop.core.civitai.client import (
    CivitaiClient,
    CivitaiError,
    ClientOptions,
    ClientRequestError,
    HostNotAllowedError,
    UnreadableAnswerError,
)
from civitgrab_desktop.core.civitai.hosts import HostPolicy

REPO = Path(__file__).resolve().parents[2]
KEY = "cgTESTservice0key0" + "9b2c" * 6


class Service:
    """Routes: path -> handler(request, n) where n counts the requests to that path."""

    def __init__(self):
        self.routes = {}
        self.count: dict[str, int] = {}
        self.auth: list[tuple[str, str | None]] = []
        self.runner = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.count[path] = self.count.get(path, 0) + 1
        self.auth.append((path, request.headers.get("Authorization")))
        handler = self.routes.get(path)
        if handler is None:
            return web.json_response({"error": "not found"}, status=404)
        return await handler(request, self.count[path])

    async def start(self) -> Service:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def service():
    svc = await Service().start()
    try:
        yield svc
    finally:
        await svc.runner.cleanup()


def client_for(base: str, **options) -> CivitaiClient:
    opts = ClientOptions(**{"retries": 3, "listing_retries": 3, "backoff_max": 0.05, "timeout": 10, **options})
    return CivitaiClient(base, api_key=KEY, options=opts)


# -- body size ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_endpoint_cap_fails_once_without_reading_it_all(service, chunked):
    blob = json.dumps({"items": ["x" * 1000] * 3000}).encode()  # ~3 MB

    async def big(request, n):
        if not chunked:
            return web.Response(body=blob, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(blob), 65536):
            await resp.write(blob[i:i + 65536])
        await resp.write_eof()
        return resp

    service.routes["/api/v1/big"] = big
    async with client_for(service.base) as client:
        with pytest.raises(UnreadableAnswerError, match="larger than 1 MB"):
            await client.get_json(f"{service.base}/api/v1/big", max_bytes=1024 * 1024)
    assert service.count["/api/v1/big"] == 1  # not retried: the same request gets the same answer


async def test_listing_pages_have_their_own_cap(service, monkeypatch):
    monkeypatch.setattr(rest, "LISTING_PAGE_MAX_BYTES", 64 * 1024)

    async def page(request, n):
        return web.json_response({"items": [{"id": i, "url": "x", "pad": "y" * 1000} for i in range(1, 200)],
                                  "metadata": {}})

    service.routes["/api/v1/images"] = page
    async with client_for(service.base) as client:
        with pytest.raises(UnreadableAnswerError, match="a listing page is larger"):
            async for _page in rest.iter_image_pages(client, username="alice"):
                pass


# -- JSON depth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [150, 100_000])
async def test_deeply_nested_json_is_a_reported_error_not_a_crash(service, depth):
    async def deep(request, n):
        return web.Response(text="[" * depth + "]" * depth, content_type="application/json")

    async def deep_error(request, n):
        return web.Response(text="{\"error\":" + "[" * 5000 + "]" * 5000 + "}", status=400,
                            content_type="application/json")

    service.routes["/api/v1/images"] = deep
    service.routes["/api/v1/models/1"] = deep_error
    async with client_for(service.base) as client:
        with pytest.raises(UnreadableAnswerError, match="nested"):
            async for _page in rest.iter_image_pages(client, username="alice"):
                pass
        with pytest.raises(ClientRequestError):  # the error body of a 400 is read safely too
            await rest.get_model(client, 1)
    assert service.count["/api/v1/images"] == 1


async def test_an_item_the_parser_cannot_read_is_a_problem_of_that_item_only(service):
    async def page(request, n):
        items = [{"id": 1, "url": "https://image.civitai.com/x/a/original=true/1.png", "meta": {"prompt": "ok"}},
                 {"id": 2, "url": ["not", "a", "string"], "meta": 7, "stats": "?"}]
        return web.json_response({"items": items, "metadata": {}})

    service.routes["/api/v1/images"] = page
    async with client_for(service.base) as client:
        pages = [p async for p in rest.iter_image_pages(client, username="alice")]
    assert [r.id for r in pages[0].records] == [1] and len(pages[0].problems) == 1


# -- cursors --------------------------------------------------------------------------------------


def _cursor_page(base: str, items: list[int], cursor: str | int) -> dict:
    return {"items": [{"id": i, "url": f"https://image.civitai.com/x/a/original=true/{i}.png"} for i in items],
            "metadata": {"nextPage": f"{base}/api/v1/images?username=alice&cursor={cursor}"}}


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("same items", "only items it had listed already"), ("empty", "no items"), ("cursor again", "a second time")],
)
async def test_a_runaway_cursor_is_stopped_with_a_reason(service, kind, reason):
    async def page(request, n):
        if n > 50:  # the old code walked on until here
            return web.json_response({"items": [], "metadata": {}})
        if kind == "same items":
            return web.json_response(_cursor_page(service.base, [1, 2, 3], n))
        if kind == "empty":
            return web.json_response(_cursor_page(service.base, [], n))
        # a new URL every time (an extra parameter), the same cursor value
        body = _cursor_page(service.base, [n], "7|123")
        body["metadata"]["nextPage"] += f"&x={n}"
        return web.json_response(body)

    service.routes["/api/v1/images"] = page
    async with client_for(service.base) as client:
        pages = [p async for p in rest.iter_image_pages(client, username="alice")]
    assert len(pages) <= 4, len(pages)
    assert reason in (pages[-1].stopped_reason or "")


def test_the_download_job_ends_on_a_runaway_cursor_and_says_why(tmp_path):
    """The CLI against a service whose cursor never ends (empty pages, always a next page)."""
    script = tmp_path / "serve.py"
    script.write_text(
        "import sys\nfrom aiohttp import web\n"
        "async def images(request):\n"
        "    n = int(request.query.get('cursor', '0')) + 1\n"
        "    base = f'http://127.0.0.1:{request.url.port}'\n"
        "    nxt = None if n > 200 else f'{base}/api/v1/images?username=alice&cursor={n}'\n"
        "    return web.json_response({'items': [], 'metadata': {'nextPage': nxt}})\n"
        "app = web.Application(); app.router.add_get('/api/v1/images', images)\n"
        "web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=lambda *a: None)\n"
    )
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(script), str(port)])
    try:
        import time

        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        env = {**os.environ, "CIVITGRAB_DATA_DIR": str(tmp_path / "data"), "CIVITGRAB_API_BASE": f"http://127.0.0.1:{port}",
               "PYTHONPATH": str(REPO)}
        env.pop("CIVITAI_API_KEY", None)
        run = subprocess.run([sys.executable, "-m", "civitgrab_desktop.cli", "--mode", "1", "--username", "alice",
                              "--no-save"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.terminate()
        server.wait(10)
    assert "the cursor would run forever" in run.stdout + run.stderr, run.stdout + run.stderr


# -- where the key goes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "url", "allowed"),
    [
        ("http://127.0.0.1:8781", "http://127.0.0.1:8781/api/v1/images", True),
        ("http://localhost:8781", "http://localhost:8781/api/v1/images", True),
        ("http://mirror.example.org", "http://mirror.example.org/api/v1/images", False),  # plain http, not loopback
        ("https://mirror.example.org", "https://mirror.example.org/api/v1/images", True),
        ("https://civitai.com", "https://civitai.red/api/v1/images", True),
        ("https://civitai.com", "http://civitai.com/api/v1/images", False),
        ("https://civitai.com", "https://image.civitai.com/x/1.png", False),  # the CDN never gets it
        ("http://127.0.0.1:8781", "http://localhost:8781/api/v1/images", False),  # another host
        ("http://127.0.0.1:8781", "http://127.0.0.1:9999/api/v1/images", False),  # another port
    ],
)
def test_which_urls_may_carry_the_key(base, url, allowed):
    assert HostPolicy(base).may_send_key(url) is allowed


async def test_a_redirect_to_another_host_is_refused_and_carries_nothing(service):
    other = await Service().start()
    try:
        async def moved(request, n):
            raise web.HTTPFound(f"http://localhost:{other.port}/api/v1/images")

        service.routes["/api/v1/images"] = moved
        async with client_for(service.base) as client:
            with pytest.raises(HostNotAllowedError):
                await client.get_json(f"{service.base}/api/v1/images")
        assert service.auth[0] == ("/api/v1/images", f"Bearer {KEY}")
        assert other.auth == []
    finally:
        await other.runner.cleanup()


async def test_every_failure_is_a_civitai_error(service):
    """Nothing but CivitaiError leaves get_json, whatever the body."""
    bodies = [b"", b"\xff\xfe", b"nul\x00l", b'{"a":' * 3000, b"1e99999", b'"\\ud800"']

    async def odd(request, n):
        return web.Response(body=bodies[(n - 1) % len(bodies)], content_type="application/json")

    service.routes["/api/v1/odd"] = odd
    async with client_for(service.base, retries=0, listing_retries=0) as client:
        for _ in bodies:
            with contextlib.suppress(CivitaiError):
                await client.get_json(f"{service.base}/api/v1/odd", validate=lambda d: None)
