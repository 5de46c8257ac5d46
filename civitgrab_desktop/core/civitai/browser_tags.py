"""Community tags read from the image page `/images/<id>` in a headless browser (§8).

The fallback when the tRPC API refuses us or answers in a shape we do not read. One browser is
started per fetcher and reused; several pages work in parallel. For each image the page is
opened and we wait, polling, for the first of these (the real page's own states):

- the page's own `tag.getVotableTags` answer (src/components/VotableTags/VotableTags.tsx asks it
  once, and React Query retries a failure once after 1 s, src/utils/trpc.ts): it holds every
  tag's id, own name, score, votes, type and `concrete`, so it is what we store. When it holds
  exactly the server's default `take` (100) the page's list may be cut: we ask again from inside
  the page with a larger `take` (src/server/schema/tag.schema.ts);
- the NotFound view of a missing or deleted image (HTTP 200; src/components/AppLayout/NotFound.tsx
  `<h1>404</h1>`): a failure within seconds, no retries;
- a gate instead of the image (src/components/Gated/Gated.tsx: "This content requires an account"
  for a logged-out visitor of a non-PG image, "Mature content now lives on civitai.red" on the
  SFW site): a clear per-image failure;
- the rendered tags (src/components/VotableTags/VotableTag.tsx) when the answer could not be
  read: the chevron that reveals the tags after the sixth is clicked until it turns into a
  chevron-up, then every tag-feed link (`a[data-activity="tag-click:image"]`,
  src/components/VotableTags/tagFeedHref.ts) is read: the id from `?tags=<id>`, the score from
  `title="Score: N"` (absent while the tag is voted on: then the vote bar, exact below 10),
  needsReview from the flag icon, pending from `IconHourglassEmpty`. The link text is a display
  name (`woman` for `1girl`, src/libs/tags.ts getTagDisplayName), so the tag's own name is then
  looked up by id in `/api/v1/images?imageId=<id>&withTags=true`.

Network rules are the client's: only allowed hosts are contacted (everything else is aborted, as
are images, media and fonts, which we never need), the API key goes only where the client would
send it, requests to a host wait for its politeness slot, and failures retry under the client's
retry policy. The browser introduces itself like an ordinary one (no "HeadlessChrome" in the
User-Agent, an Accept-Language); `--browser chrome|msedge|firefox` drives an installed browser
instead of the bundled headless shell when a site challenge refuses the latter.

The key and redirects: Playwright routes only the first request of a redirect chain, and a header
added there travels along every hop Chromium follows. So a request that may carry the key (a page
or an XHR to the API base or the site) is not continued: it is fetched here, one hop at a time,
each hop judged again (allowed host? may it carry the key?), and the browser gets the final answer.
Requests that carry no key (scripts, styles) are continued as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from civitgrab_desktop.core.civitai import trpc_answer, urls
from civitgrab_desktop.core.civitai.browsers import (
    BrowserChoice,
    BrowserUnavailable,
    find_browser,
    launch_args,
)
from civitgrab_desktop.core.civitai.client import (
    BadPayloadError,
    CivitaiClient,
    CivitaiError,
    ClientRequestError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    parse_retry_after,
    redact_url,
)
from civitgrab_desktop.core.civitai.trpc import TAG_TAKE, TrpcRefused
from civitgrab_desktop.core.model import TagVote

LOG = logging.getLogger(__name__)

DEFAULT_PAGES = 4
BLOCKED_RESOURCES = frozenset({"image", "media", "font", "manifest", "texttrack"})
# What needs the key: the page itself and the data it loads. Static files never carry it.
KEYED_RESOURCES = frozenset({"document", "xhr", "fetch"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_TAKE = 100  # src/server/services/tag.service.ts getVotableTags: `take = 100`
POLL_S = 0.1
ANSWER_RETRY_GRACE_S = 3.0  # the page retries a failed tag query once after 1 s
DOM_GRACE_S = 2.0  # tags rendered but no readable answer seen: read the page after this
BODY_TIMEOUT_S = 5.0
_SCORE_RE = re.compile(r"Score:\s*(-?\d+)")


@dataclass(frozen=True)
class PageSelectors:
    """What the real page renders (file names in the module docstring)."""

    link: str = 'a[data-activity="tag-click:image"][href*="tags="]'
    badge: str = ".mantine-Badge-root"
    loader: str = ".mantine-Loader-root"
    add_icon: str = "svg.tabler-icon-plus"
    more: str = "svg.tabler-icon-chevron-down"
    less: str = "svg.tabler-icon-chevron-up"
    flag: str = ".tabler-icon-flag"
    pending: str = ".tabler-icon-hourglass-empty"
    not_found_text: str = "The page you are looking for doesn't exist"
    login_text: str = "This content requires an account"
    redirect_text: str = "Mature content now lives on"


# The page's state: null while loading, else what it shows.
_PROBE_JS = """(s) => {
  const text = document.body ? document.body.innerText || '' : '';
  const h1 = Array.from(document.querySelectorAll('h1')).some((h) => h.textContent.trim() === '404');
  if (h1 && text.includes(s.not_found_text)) return {state: 'missing'};
  if (text.includes(s.login_text)) return {state: 'login'};
  if (text.includes(s.redirect_text)) return {state: 'redirect'};
  if (document.querySelector(s.loader)) return null;
  const link = document.querySelector(s.link);
  if (link) return {state: 'tags'};
  const add = document.querySelector(s.badge + ' ' + s.add_icon);
  if (add) return {state: 'empty'};
  return null;
}"""

# The tag group is the parent of the tag badges; clicks its "show more" chevron. Returns whether
# the group now shows everything (no chevron, or a chevron-up).
_EXPAND_JS = """(s) => {
  const link = document.querySelector(s.link);
  const badge = link && link.closest(s.badge);
  const group = badge && badge.parentElement;
  if (!group) return true;
  const more = Array.from(group.children).map((c) => c.querySelector(s.more)).find(Boolean);
  if (more) {
    const button = more.closest('button, [role="button"]');
    if (button) button.click();
    return false;
  }
  return true;
}"""

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

# The tags asked from inside the page (same origin, the page's cookies and our route's key).
_FETCH_TAGS_JS = """async ([id, take]) => {
  const input = encodeURIComponent(JSON.stringify({json: {id: id, type: 'image', take: take}}));
  const res = await fetch('/api/trpc/tag.getVotableTags?input=' + input,
                          {headers: {'content-type': 'application/json', 'x-client': 'web'}});
  return {status: res.status, text: await res.text()};
}"""


def tag_id_from_href(href: str | None) -> int | None:
    if not href:
        return None
    values = parse_qs(urlsplit(href).query).get("tags") or []
    text = values[0].strip() if values else ""
    return int(text) if text.isdigit() and int(text) > 0 else None


def score_from_bar(bar: str | None) -> int:
    """The vote bar's width -> score: 0.2 + clamp(score, 0, 10) / 10 * 0.8 (VotableTag.tsx), so
    exact from 0 to 9, 10 when full (a lower bound), 0 when absent or at its floor."""
    text = (bar or "").strip().rstrip("%").strip()
    try:
        width = float(text) / 100
    except ValueError:
        return 0
    if width >= 0.999:
        return 10
    return max(0, round((width - 0.2) / 0.8 * 10))


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
        from_page=True,
    )


def parse_page_tags(items: list[dict[str, Any]]) -> list[TagVote]:
    tags: dict[int, TagVote] = {}
    for item in items:
        tag = parse_page_tag(item)
        if tag is not None and tag.id not in tags:
            tags[tag.id] = tag
    return list(tags.values())


def error_for_status(status: int, url: str, retry_after: float | None = None) -> CivitaiError:
    """The page's failed tag query -> the client's error types (so retries apply)."""
    reason = f"the image page's tag request failed (HTTP {status})"
    if status in (401, 403):
        return TrpcRefused(reason, url=url, status=status)
    if status == 429:
        return RateLimitedError(reason, url=url, retry_after=retry_after)
    if status >= 500:
        return ServerError(reason, url=url, status=status, retry_after=retry_after)
    return BadPayloadError(reason, url=url)


def with_own_names(tags: list[TagVote], names: dict[int, str]) -> list[TagVote]:
    """Page tags with the tag's own name for every id the service named."""
    return [replace(t, name=names[t.id]) if t.id in names else t for t in tags]


def browser_user_agent(version: str, platform: str | None = None, engine: str = "chromium") -> str:
    """The User-Agent an ordinary desktop browser of this version sends (Chrome's reduced form:
    only the major version), never the headless shell's "HeadlessChrome"."""
    major = (version or "").split(".")[0] or "130"
    platform = platform or sys.platform
    if engine == "firefox":
        system = ("Windows NT 10.0; Win64; x64" if platform.startswith("win")
                  else "Macintosh; Intel Mac OS X 10.15" if platform == "darwin" else "X11; Linux x86_64")
        return f"Mozilla/5.0 ({system}; rv:{major}.0) Gecko/20100101 Firefox/{major}.0"
    system = ("Windows NT 10.0; Win64; x64" if platform.startswith("win")
              else "Macintosh; Intel Mac OS X 10_15_7" if platform == "darwin" else "X11; Linux x86_64")
    return f"Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"


@dataclass
class _Answer:
    """One tag answer the page received: its status and (for 2xx) its decoded tags."""

    status: int
    tags: list[TagVote] | None = None
    cut: bool = False  # exactly DEFAULT_TAKE tags: there may be more
    error: str = ""
    retry_after: float | None = None
    withheld: bool = False  # the browser did not hand the body over: read the rendered page instead


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
        engine = self.choice.engine
        try:
            browser_type = getattr(self._pw, engine)
            extra = {"args": launch_args()} if engine == "chromium" else {}
            self._browser = await browser_type.launch(
                headless=True, timeout=self.timeout_ms, **extra, **self.choice.launch_kwargs()
            )
            self._context = await self._browser.new_context(
                user_agent=browser_user_agent(self._browser.version, engine=engine),
                locale="en-US",
                extra_http_headers={"Accept-Language": "en-US,en;q=0.9"},
            )
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
        tags = await self.client.retrying(
            lambda: self._attempt(url, image_id), kind="file", what=f"image page {image_id}"
        )
        if any(t.from_page for t in tags):
            tags = with_own_names(tags, await self._own_names(image_id))
        return tags

    async def _own_names(self, image_id: int) -> dict[int, str]:
        """Tag names by id from the REST API (`withTags`: `tags: [{id, name}]`, the tags' own names);
        {} when that fails (the page's display names then stay)."""
        url = urls.images_url(self.client.api_base, imageId=int(image_id), nsfw="X", withTags="true")
        try:
            data = await self.client.get_json(url, kind="listing")
        except CivitaiError as exc:
            LOG.info("image %s: tag names by id not available (%s); keeping the page's names", image_id, exc.reason)
            return {}
        items = data.get("items") if isinstance(data, dict) else None
        names: dict[int, str] = {}
        for item in items if isinstance(items, list) else []:
            for tag in item.get("tags") or [] if isinstance(item, dict) else []:
                if isinstance(tag, dict) and isinstance(tag.get("id"), int) and isinstance(tag.get("name"), str):
                    names[tag["id"]] = tag["name"]
        return names

    async def _attempt(self, url: str, image_id: int) -> list[TagVote]:
        from playwright.async_api import Error as PlaywrightError

        if self._closed:
            raise BrowserUnavailable("the browser was closed")
        await self.start()
        async with self._slots:
            page = await self._take_page()
            ok = False
            try:
                tags = await self._read_page(page, url, image_id)
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

    async def _read_page(self, page, url: str, image_id: int) -> list[TagVote]:
        throttle = self.client.throttle_for(url)
        await throttle.wait_turn()
        self.client.stats["requests"] += 1
        seen: list[Any] = []

        def on_response(response) -> None:
            request = response.request
            index = trpc_answer.call_index(response.url, image_id, request.post_data)
            if index is not None:
                seen.append((response, index))

        page.on("response", on_response)
        try:
            response = await page.goto(url, wait_until="domcontentloaded", timeout=self.timeout_ms)
            if response is None:
                raise TransportError("the image page did not load", url=url)
            self._check_page_status(response, url, throttle)
            tags = await self._settle(page, url, image_id, seen, throttle)
        finally:
            page.remove_listener("response", on_response)
        throttle.on_success()
        return tags

    def _check_page_status(self, response, url: str, throttle) -> None:
        status = response.status
        if status < 400:
            return
        retry_after = parse_retry_after(response.headers.get("retry-after"), self.client.options.retry_after_cap)
        if status in (429, 503):
            throttle.on_overload(retry_after)
        if status == 429:
            raise RateLimitedError("rate limited (429) on the image page", url=url, retry_after=retry_after)
        if status >= 500:
            raise ServerError(f"server error {status} on the image page", url=url, status=status, retry_after=retry_after)
        if status == 404:
            raise NotFoundError("the image page was not found (404)", url=url, status=404)
        raise ClientRequestError(f"HTTP {status} on the image page", url=url, status=status)

    async def _settle(self, page, url: str, image_id: int, seen: list[Any], throttle) -> list[TagVote]:
        """Poll until the page's tag answer arrives or the page shows why there is none."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_ms / 1000
        answers: list[_Answer] = []
        read = 0
        error_since: float | None = None
        tags_since: float | None = None
        while True:
            while read < len(seen):
                response, index = seen[read]
                read += 1
                answer = await self._decode(response, index)
                if not answer.withheld:
                    answers.append(answer)
            last = answers[-1] if answers else None
            now = loop.time()
            if last is not None and last.tags is not None:
                if last.cut:
                    return await self._all_tags(page, url, image_id, last.tags)
                return last.tags
            if last is not None:
                # The page retries a failed query once; the second failure is final.
                error_since = error_since if error_since is not None else now
                if len(answers) >= 2 or now - error_since > ANSWER_RETRY_GRACE_S:
                    if last.status in (429, 503):
                        throttle.on_overload(last.retry_after)
                    if last.status:
                        raise error_for_status(last.status, url, last.retry_after)
                    raise BadPayloadError(f"the image page's tag answer could not be read: {last.error}", url=url)
            state = await page.evaluate(_PROBE_JS, self._sel)
            kind = state.get("state") if isinstance(state, dict) else None
            if kind == "missing":
                raise NotFoundError(
                    "the image page says the image does not exist (deleted, hidden or never posted)", url=url, status=404
                )
            if kind == "login":
                raise ClientRequestError(
                    "the image page asks to log in (a mature image); an API key lets the page show it",
                    url=url, status=401,
                )
            if kind == "redirect":
                raise ClientRequestError("the site shows this image only on civitai.red", url=url, status=403)
            if kind == "empty" and not answers:
                return []
            if kind == "tags" and not answers:
                tags_since = tags_since if tags_since is not None else now
                if now - tags_since > DOM_GRACE_S:  # rendered, but we never saw a readable answer
                    return await self._read_rendered(page, url)
            if now > deadline:
                raise TransportError("timed out waiting for the image page's tags", url=url)
            await asyncio.sleep(POLL_S)

    async def _decode(self, response, index: int) -> _Answer:
        status = response.status
        retry_after = parse_retry_after(response.headers.get("retry-after"), self.client.options.retry_after_cap)
        if status >= 400:  # the status says it; the body of an uncacheable error may never be handed over
            return _Answer(status, retry_after=retry_after)
        try:
            text = await asyncio.wait_for(response.text(), BODY_TIMEOUT_S)
        except Exception as exc:  # gone with a navigation, or withheld
            return _Answer(0, error=str(exc)[:200] or type(exc).__name__, withheld=True)
        try:
            body = json.loads(text)
        except ValueError:  # e.g. a challenge page instead of the answer: worth another try
            return _Answer(0, error="the answer is not JSON")
        if trpc_answer.error_status(body, index):  # an error entry of a batch answered as a whole
            return _Answer(trpc_answer.error_status(body, index) or status, retry_after=retry_after)
        try:
            data = trpc_answer.answer_data(body, index)
            tags = trpc_answer.votable_tags(data)
        except trpc_answer.AnswerError as exc:
            return _Answer(0, error=str(exc))
        return _Answer(status, tags=tags, cut=len(data) >= DEFAULT_TAKE)

    async def _all_tags(self, page, url: str, image_id: int, first: list[TagVote]) -> list[TagVote]:
        """The page's answer stopped at the default `take`: ask from the page with a larger one."""
        got = await page.evaluate(_FETCH_TAGS_JS, [int(image_id), TAG_TAKE])
        status = int(got.get("status") or 0)
        if status >= 400:
            raise error_for_status(status, url)
        try:
            body = json.loads(got.get("text") or "")
            tags = trpc_answer.votable_tags(trpc_answer.answer_data(body))
        except (ValueError, trpc_answer.AnswerError) as exc:
            raise BadPayloadError(f"the image page's full tag list could not be read: {exc}", url=url) from exc
        return tags if len(tags) >= len(first) else first

    async def _read_rendered(self, page, url: str) -> list[TagVote]:
        """The rendered tags, after showing all of them (the chevron after the sixth)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(10.0, self.timeout_ms / 1000)
        while not await page.evaluate(_EXPAND_JS, self._sel):
            if loop.time() > deadline:
                raise TransportError("the image page did not show all its tags", url=url)
            await asyncio.sleep(POLL_S * 2)
        return parse_page_tags(await page.evaluate(_READ_JS, self._sel))
