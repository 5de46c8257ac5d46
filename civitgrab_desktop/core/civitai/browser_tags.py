"""Community tags read from the image page `/images/<id>` in a headless system browser (§8).

The fallback when the tRPC API refuses us or answers in a shape we do not read. One browser is
started per fetcher and reused; several pages work in parallel. For each image the page is
opened, the tag group's loader is awaited, the chevron that reveals the tags hidden after the
sixth is clicked, and every tag link is read:

- id: from the link's `href` (`?tags=<id>`), the only reliable identity;
- name: the link text, a *display* name (`woman` for `1girl`): callers keep the canonical name
  when they already know the id;
- score: from `title="Score: N"`. A tag up for consideration has no title; its score is then read
  from the badge's vote bar (`--progress-width` = 0.2 + min(score, 10) / 10 * 0.8), which is exact
  below 10; a full bar gives 10 (a lower bound) and a missing bar 0 (unknown);
- needsReview from the flag icon, concrete from the hourglass icon. Votes, type, automated and
  nsfwLevel are not on the page (0 / None).

Network rules are the client's: only allowed hosts are contacted (everything else is aborted, as
are images, media and fonts, which we never need), the API key goes only where the client would
send it, requests to a host wait for its politeness slot, and failures retry under the client's
retry policy.

The key and redirects: Playwright routes only the first request of a redirect chain, and a header
added there travels along every hop Chromium follows. So a request that may carry the key (a page
or an XHR to the API base or the site) is not continued: it is fetched here, one hop at a time,
each hop judged again (allowed host? may it carry the key?), and the browser gets the final answer.
Requests that carry no key (scripts, styles) are continued as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from civitgrab_desktop.core.civitai import urls
from civitgrab_desktop.core.civitai.browsers import (
    BrowserChoice,
    BrowserUnavailable,
    find_browser,
    launch_args,
)
from civitgrab_desktop.core.civitai.client import (
    BadPayloadError,
    CivitaiClient,
    ClientRequestError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    parse_retry_after,
    redact_url,
)
from civitgrab_desktop.core.civitai.records import TagVote
from civitgrab_desktop.core.civitai.trpc import TrpcRefused

LOG = logging.getLogger(__name__)

DEFAULT_PAGES = 4
BLOCKED_RESOURCES = frozenset({"image", "media", "font", "manifest", "texttrack"})
# What needs the key: the page itself and the data it loads. Static files never carry it.
KEYED_RESOURCES = frozenset({"document", "xhr", "fetch"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
_SCORE_RE = re.compile(r"Score:\s*(-?\d+)")
_HTTP_RE = re.compile(r"HTTP (\d{3})")


@dataclass(frozen=True)
class PageSelectors:
    """The page structure we rely on (reference §8)."""

    group: str = '[data-testid="votable-tags"]'
    link: str = 'a[data-activity^="tag-click"][href*="tags="]'
    badge: str = ".mantine-Badge-root"
    loader: str = ".mantine-Loader-root"
    error: str = ".tags-error"
    more: str = "svg.tabler-icon-chevron-down"
    flag: str = ".tabler-icon-flag"
    pending: str = ".tabler-icon-hourglass"


# Resolves once the tag group has settled: tags shown, no tags, or the group's error.
_PROBE_JS = """(s) => {
  const err = document.querySelector(s.error);
  if (err) return {state: 'error', text: (err.textContent || '').trim()};
  if (document.querySelector(s.loader)) return null;
  if (document.querySelector(s.link)) return {state: 'tags'};
  const group = document.querySelector(s.group);
  if (group && group.getAttribute('data-state') === 'loaded') return {state: 'empty'};
  return null;
}"""

# Clicks every "show more" chevron in the tag area; returns how many it clicked.
_EXPAND_JS = """(s) => {
  const first = document.querySelector(s.link);
  const area = document.querySelector(s.group) || (first && first.closest(s.badge)
    ? first.closest(s.badge).parentElement : document);
  let clicked = 0;
  area.querySelectorAll(s.more).forEach((icon) => {
    const button = icon.closest('button, [role="button"]');
    if (button) { button.click(); clicked += 1; }
  });
  return clicked;
}"""

_EXPANDED_JS = "(s) => !document.querySelector(s.group + ' ' + s.more)"

_READ_JS = """(s) => Array.from(document.querySelectorAll(s.link)).map((a) => {
  const badge = a.closest(s.badge) || a.parentElement;
  return {
    href: a.getAttribute('href'),
    text: a.textContent,
    title: a.getAttribute('title'),
    needsReview: !!badge.querySelector(s.flag),
    pending: !!badge.querySelector(s.pending),
    bar: badge.style ? badge.style.getPropertyValue('--progress-width') : '',
  };
})"""


def tag_id_from_href(href: str | None) -> int | None:
    if not href:
        return None
    values = parse_qs(urlsplit(href).query).get("tags") or []
    text = values[0].strip() if values else ""
    return int(text) if text.isdigit() and int(text) > 0 else None


def score_from_bar(bar: str | None) -> int:
    """The vote bar's width -> score: exact below 10, 10 when full, 0 when absent."""
    text = (bar or "").strip().rstrip("%").strip()
    try:
        width = float(text) / 100
    except ValueError:
        return 0
    if width >= 0.999:
        return 10
    return round((width - 0.2) / 0.8 * 10)


def parse_page_tag(item: dict[str, Any]) -> TagVote | None:
    """One tag link as read by _READ_JS; None for links without a real tag id (a new tag)."""
    tag_id = tag_id_from_href(item.get("href"))
    name = " ".join(str(item.get("text") or "").split())
    if tag_id is None or not name:
        return None
    match = _SCORE_RE.search(item.get("title") or "")
    score = int(match.group(1)) if match else score_from_bar(item.get("bar"))
    return TagVote(
        id=tag_id,
        name=name,
        score=score,
        needs_review=bool(item.get("needsReview")),
        concrete=not item.get("pending"),
    )


def parse_page_tags(items: list[dict[str, Any]]) -> list[TagVote]:
    tags: dict[int, TagVote] = {}
    for item in items:
        tag = parse_page_tag(item)
        if tag is not None and tag.id not in tags:
            tags[tag.id] = tag
    return list(tags.values())


def error_from_page_text(text: str, url: str) -> Exception:
    """The tag group's own error message -> the client's error types (so retries apply)."""
    match = _HTTP_RE.search(text)
    status = int(match.group(1)) if match else None
    reason = f"the image page did not load its tags ({text[:200] or 'no reason shown'})"
    if status in (401, 403):
        return TrpcRefused(reason, url=url, status=status)
    if status == 429:
        return RateLimitedError(reason, url=url)
    if status is not None and status >= 500:
        return ServerError(reason, url=url, status=status)
    return BadPayloadError(reason, url=url)


class BrowserTagFetcher:
    """`await fetcher.fetch(image_id)` -> the image's tags as the page shows them.

    The browser starts on the first fetch; `close()` ends it. Safe to call from many tasks:
    at most `pages` pages work at once.
    """

    def __init__(
        self,
        client: CivitaiClient,
        *,
        pages: int = DEFAULT_PAGES,
        browser_path: str | None = None,
        timeout: float | None = None,
        selectors: PageSelectors | None = None,
    ):
        self.client = client
        self.pages = max(1, int(pages))
        self.browser_path = browser_path
        self.timeout_ms = float(timeout or client.options.timeout) * 1000
        self.selectors = selectors or PageSelectors()
        self.choice: BrowserChoice | None = None
        self._sel = {k: getattr(self.selectors, k) for k in self.selectors.__dataclass_fields__}
        self._pw = None
        self._browser = None
        self._context = None
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(self.pages)
        self._start_lock = asyncio.Lock()
        self._unavailable: BrowserUnavailable | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self._unavailable is not None:
                raise self._unavailable
            if self._context is not None and self._browser is not None and self._browser.is_connected():
                return
            try:
                await self._launch()
            except BrowserUnavailable as exc:
                self._unavailable = exc
                raise

    async def _launch(self) -> None:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright

        await self._shutdown()
        self._pw = await async_playwright().start()
        bundled = []
        with contextlib.suppress(Exception):  # a Playwright-managed browser, if one happens to be installed
            bundled.append(self._pw.chromium.executable_path)
        self.choice = find_browser(self.browser_path, bundled=bundled)
        try:
            self._browser = await self._pw.chromium.launch(
                headless=True, args=launch_args(), timeout=self.timeout_ms, **self.choice.launch_kwargs()
            )
            self._context = await self._browser.new_context()
            await self._context.route("**/*", self._route)
        except PlaywrightError as exc:
            await self._shutdown()
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BrowserUnavailable(f"could not start the browser {self.choice.label}: {first_line}") from exc
        LOG.info("browser for tags: %s (%s)", self.choice.label, self._browser.version)

    async def _shutdown(self) -> None:
        self._idle.clear()
        for closer in (self._context, self._browser):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer.close()
        if self._pw is not None:
            with contextlib.suppress(Exception):
                await self._pw.stop()
        self._context = self._browser = self._pw = None

    async def close(self) -> None:
        self._closed = True
        async with self._start_lock:
            await self._shutdown()

    async def __aenter__(self) -> BrowserTagFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests the pages make -------------------------------------------------------------------

    async def _route(self, route, request) -> None:
        url = request.url
        if request.resource_type in BLOCKED_RESOURCES or not self.client.policy.is_allowed(url):
            await route.abort()
            return
        # The client's own rule for which URLs may carry the key (the API base and the site).
        if request.resource_type in KEYED_RESOURCES and self.client.auth_headers(url):
            await self._fetch_hop_by_hop(route, request)
        else:
            await route.continue_()

    async def _fetch_hop_by_hop(self, route, request) -> None:
        """Fetch a key-carrying request here, following redirects by hand: each hop gets the key
        only if its own URL may carry it, and a hop to a host that is not allowed ends the
        request (the browser never sees the redirect, so it never follows one unrouted)."""
        current, method = request.url, request.method
        body = request.post_data_buffer
        for _ in range(MAX_REDIRECTS + 1):
            headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
            headers.update(self.client.auth_headers(current))
            response = await self._context.request.fetch(
                current, method=method, headers=headers, data=body, max_redirects=0,
                timeout=self.timeout_ms, fail_on_status_code=False,
            )
            location = response.headers.get("location")
            if response.status not in REDIRECT_STATUSES or not location:
                await route.fulfill(response=response)
                return
            target = urljoin(current, location)
            await response.dispose()
            if not self.client.policy.is_allowed(target):
                LOG.warning("browser: refused a redirect to a host that is not allowed: %s", redact_url(target))
                await route.abort("blockedbyclient")
                return
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            current = target
        await route.abort("failed")

    # -- fetching ----------------------------------------------------------------------------------

    async def fetch(self, image_id: int) -> list[TagVote]:
        url = urls.image_page_url(self.client.api_base, image_id)
        return await self.client.retrying(lambda: self._attempt(url), kind="file", what=f"image page {image_id}")

    async def _attempt(self, url: str) -> list[TagVote]:
        from playwright.async_api import Error as PlaywrightError

        if self._closed:
            raise BrowserUnavailable("the browser was closed")
        await self.start()
        async with self._slots:
            page = await self._take_page()
            ok = False
            try:
                tags = await self._read_page(page, url)
                ok = True
                return tags
            except PlaywrightError as exc:
                text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                if "Timeout" in type(exc).__name__ or "Timeout" in text:
                    raise TransportError(f"timed out waiting for the image page's tags: {text}", url=url) from exc
                raise TransportError(f"browser error: {text}", url=url) from exc
            finally:
                await self._give_back(page, healthy=ok)

    async def _take_page(self):
        while self._idle:
            page = self._idle.pop()
            if not page.is_closed():
                return page
        try:
            return await self._context.new_page()
        except Exception as exc:
            # The browser went away (crash, killed): start a fresh one next time.
            async with self._start_lock:
                await self._shutdown()
            raise TransportError(f"browser error: {exc}") from exc

    async def _give_back(self, page, *, healthy: bool) -> None:
        if healthy and not page.is_closed() and not self._closed:
            self._idle.append(page)
            return
        with contextlib.suppress(Exception):
            await page.close()

    async def _read_page(self, page, url: str) -> list[TagVote]:
        throttle = self.client.throttle_for(url)
        await throttle.wait_turn()
        self.client.stats["requests"] += 1
        response = await page.goto(url, wait_until="domcontentloaded", timeout=self.timeout_ms)
        if response is None:
            raise TransportError("the image page did not load", url=url)
        status = response.status
        if status >= 400:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self.client.options.retry_after_cap)
            if status in (429, 503):
                throttle.on_overload(retry_after)
            if status == 429:
                raise RateLimitedError("rate limited (429) on the image page", url=url, retry_after=retry_after)
            if status >= 500:
                raise ServerError(f"server error {status} on the image page", url=url, status=status, retry_after=retry_after)
            if status == 404:
                raise NotFoundError("the image page was not found (404): deleted or hidden image", url=url, status=404)
            raise ClientRequestError(f"HTTP {status} on the image page", url=url, status=status)
        probe = await page.wait_for_function(_PROBE_JS, arg=self._sel, timeout=self.timeout_ms, polling=50)
        state = await probe.json_value()
        if state["state"] == "error":
            error = error_from_page_text(state.get("text") or "", url)
            if isinstance(error, RateLimitedError):
                throttle.on_overload(None)
            raise error
        if state["state"] == "tags" and await page.evaluate(_EXPAND_JS, self._sel):
            await page.wait_for_function(_EXPANDED_JS, arg=self._sel, timeout=self.timeout_ms, polling=50)
        items = await page.evaluate(_READ_JS, self._sel) if state["state"] == "tags" else []
        throttle.on_success()
        return parse_page_tags(items)
