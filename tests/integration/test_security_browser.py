"""The API key never follows a redirect in the browser tag path (issue 15, finding 2).

Real Chromium through Playwright, two loopback host names standing for two hosts: the API base is
`http://127.0.0.1:<a>`, the redirect target `http://localhost:<b>` (another host: not the API base,
not CivitAI). Playwright routes only the first request of a redirect chain, so a header added there
used to travel along every hop.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from aiohttp import web

from civitgrab_desktop.core.civitai.browser_tags import BrowserTagFetcher
from civitgrab_desktop.core.civitai.browsers import BrowserUnavailable
from civitgrab_desktop.core.civitai.client import CivitaiClient, CivitaiError, ClientOptions

KEY = "cgTESTbrowser0key0" + "5e1d" * 6
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs the system Chromium")


class Site:
    """A tiny aiohttp server that records every request's path and Authorization header."""

    def __init__(self, name: str):
        self.name = name
        self.seen: list[tuple[str, str | None]] = []
        self.app = web.Application()
        self.redirect_to: str | None = None
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.path_qs, request.headers.get("Authorization")))
        if self.redirect_to and request.path.startswith("/images/"):
            raise web.HTTPFound(self.redirect_to + request.path_qs)
        return web.Response(text="<html><body>nothing here</body></html>", content_type="text/html")

    async def start(self) -> Site:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def sites():
    api, other = await Site("api").start(), await Site("other").start()
    try:
        yield api, other
    finally:
        await api.stop()
        await other.stop()


async def _fetch_once(api_base: str, image_id: int = 1) -> None:
    client = CivitaiClient(api_base, api_key=KEY, options=ClientOptions(retries=0, listing_retries=0, timeout=5))
    fetcher = BrowserTagFetcher(client, pages=1, browser_path=CHROMIUM, timeout=5)
    try:
        with contextlib.suppress(CivitaiError, BrowserUnavailable):
            await fetcher.fetch(image_id)
    finally:
        await fetcher.close()
        await client.close()


async def test_the_key_does_not_follow_a_redirect_to_another_host(sites):
    api, other = sites
    api.redirect_to = f"http://localhost:{other.port}"
    await _fetch_once(f"http://127.0.0.1:{api.port}")
    assert api.seen and api.seen[0] == ("/images/1", f"Bearer {KEY}")  # the API base gets the key
    assert all(auth is None for _path, auth in other.seen), other.seen
    assert other.seen == []  # and the other host is not contacted at all: it is not allowed


async def test_a_redirect_inside_the_api_base_keeps_the_key_per_hop(sites):
    api, other = sites
    api.redirect_to = f"http://127.0.0.1:{api.port}/moved"
    await _fetch_once(f"http://127.0.0.1:{api.port}")
    assert ("/moved/images/1", f"Bearer {KEY}") in api.seen
    assert other.seen == []
