"""The network policy, in one place: session, auth, host policy, politeness, retries.

- Only allowed hosts are contacted (see hosts.py); redirects are followed by hand and checked.
- The API key goes as a Bearer header to the API base / CivitAI site hosts only, and is never logged.
- Per-host politeness adapts like congestion control: the gap between requests to a host doubles on
  429/503 and shrinks back after successes, so a healthy service runs at full speed and a
  struggling one is backed off. A Retry-After pauses the whole host.
- tenacity retries timeouts, connection errors, 429 and 5xx, and bad payloads (an HTML page or a
  truncated body instead of media); listing pages are retried harder than files; other 4xx fail at
  once with the service's reason.
- Answers are hostile until parsed: a JSON body is read up to a cap its caller names (per
  endpoint), and JSON nested deeper than MAX_JSON_DEPTH is refused; both fail once with a clear
  reason (retrying would get the same answer), never with a RecursionError or a memory spike.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from civitgrab_desktop import __version__
from civitgrab_desktop.core.civitai.hosts import HostPolicy

LOG = logging.getLogger(__name__)
T = TypeVar("T")

USER_AGENT = f"civitgrab/{__version__} (+desktop downloader)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_MAX_JSON_BYTES = 16 * 1024 * 1024  # callers name their endpoint's own cap
# Real answers nest a dozen levels (a ComfyUI workflow in `meta`); far deeper is hostile and would
# break every recursive reader after us (json.dumps into the library, sidecars, EXIF).
MAX_JSON_DEPTH = 100
_READ_CHUNK = 256 * 1024


class CivitaiError(Exception):
    """Base of every failure the client reports; `reason` is shown to users."""

    def __init__(self, reason: str, *, url: str = "", status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.url = url
        self.status = status


class RetryableError(CivitaiError):
    retry_after: float | None = None


class RateLimitedError(RetryableError):
    def __init__(self, reason: str, *, url: str = "", status: int = 429, retry_after: float | None = None):
        super().__init__(reason, url=url, status=status)
        self.retry_after = retry_after


class ServerError(RetryableError):
    def __init__(self, reason: str, *, url: str = "", status: int | None = None, retry_after: float | None = None):
        super().__init__(reason, url=url, status=status)
        self.retry_after = retry_after


class TransportError(RetryableError):
    """Timeouts, resets, refused connections, short bodies."""


class BadPayloadError(RetryableError):
    """The bytes are not what was asked for (an HTML page, corrupt or truncated media)."""


class NotFoundError(CivitaiError):
    pass


class ClientRequestError(CivitaiError):
    """A 4xx other than 404/429: retrying would not help."""


class HostNotAllowedError(CivitaiError):
    pass


class UnreadableAnswerError(CivitaiError):
    """An answer we refuse to parse (too large, nested too deeply): the same request would get
    the same answer, so it is not retried."""


def json_depth_exceeds(data: Any, limit: int) -> bool:
    """Is `data` nested deeper than `limit` (lists and objects)? Iterative: never recurses."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json_answer(raw: bytes, url: str) -> Any:
    """The JSON of an answer, or a CivitaiError saying why not (every parse failure is one)."""
    try:
        data = json.loads(raw)
    except RecursionError as exc:
        raise UnreadableAnswerError("the service sent JSON nested too deeply to read", url=redact_url(url)) from exc
    except ValueError as exc:
        raise BadPayloadError("the service sent a page that is not JSON", url=redact_url(url)) from exc
    if json_depth_exceeds(data, MAX_JSON_DEPTH):
        raise UnreadableAnswerError(
            f"the service sent JSON nested deeper than {MAX_JSON_DEPTH} levels; refused", url=redact_url(url)
        )
    return data


def redact_url(url: str) -> str:
    """Drop `token=` (an API key in a query) before a URL reaches a log or a sidecar."""
    parts = urlsplit(url)
    if "token" not in parts.query.lower():
        return url
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "token"]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """Retry-After in seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, cap))


def _error_message(body: bytes) -> str:
    """The service's own reason from a JSON error body, else a short text excerpt."""
    text = body[:2000].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return " ".join(text.split())[:200]
    if isinstance(data, dict):
        for key in ("error", "message"):
            val = data.get(key)
            if isinstance(val, str):
                return val
            if isinstance(val, dict):
                inner = val.get("json", val)
                if isinstance(inner, dict) and isinstance(inner.get("message"), str):
                    return inner["message"]
                return json.dumps(val)[:200]
    return text[:200]


class HostThrottle:
    """Adaptive spacing of request starts to one host (AIMD-like).

    Like TCP congestion control, the gap grows at most once per window of in-flight requests:
    eight workers that all see the same burst of 429s double it once, not eight times."""

    def __init__(self, min_interval: float = 0.0, max_interval: float = 10.0, *, clock: Callable[[], float] | None = None):
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.interval = min_interval
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._last_increase = float("-inf")
        self._lock = asyncio.Lock()
        self._clock = clock  # the running loop's clock unless a test passes its own

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def wait_turn(self) -> float:
        """Sleep until this request may start; returns the seconds waited."""
        async with self._lock:
            now = self._now()
            start = max(now, self._next_slot, self._paused_until)
            self._next_slot = start + self.interval
        delay = start - now
        if delay > 0:
            await asyncio.sleep(delay)
        return delay

    def on_success(self) -> None:
        if self.interval > self.min_interval:
            shrunk = self.interval * 0.85
            self.interval = self.min_interval if shrunk < max(self.min_interval, 0.02) else shrunk

    def on_overload(self, retry_after: float | None) -> None:
        now = self._now()
        if now - self._last_increase >= max(self.interval, 1.0):
            self.interval = min(self.max_interval, max(self.interval * 2, 0.25, self.min_interval))
            self._last_increase = now
        if retry_after:
            self._paused_until = max(self._paused_until, now + retry_after)


@dataclass
class ClientOptions:
    concurrency: int = 5
    timeout: float = 60.0
    retries: int = 5  # extra attempts for a file
    listing_retries: int = 10  # extra attempts for a listing page (at least)
    politeness: float = 0.0  # minimum seconds between requests to one host
    backoff_max: float = 10.0  # longest exponential backoff between attempts
    retry_after_cap: float = 120.0


WaitListener = Callable[[str, float, str], None]


class CivitaiClient:
    """One per app (or CLI run). Use as an async context manager or call `close()`."""

    def __init__(
        self,
        api_base: str,
        *,
        api_key: str | None = None,
        options: ClientOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        on_wait: WaitListener | None = None,
    ):
        self.api_base = api_base.rstrip("/")
        self.policy = HostPolicy(self.api_base)
        self.options = options or ClientOptions()
        self._api_key = api_key or None
        self._session = session
        self._owns_session = session is None
        self._throttles: dict[str, HostThrottle] = {}
        self.transfers = asyncio.Semaphore(max(1, self.options.concurrency))
        self._wait_listeners: list[WaitListener] = [on_wait] if on_wait else []
        self.stats = {"requests": 0, "retries": 0, "rate_limited": 0}

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=max(10, self.options.concurrency * 2 + 4), ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> CivitaiClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def has_key(self) -> bool:
        return bool(self._api_key)

    def set_api_key(self, key: str | None) -> None:
        self._api_key = key or None

    def add_wait_listener(self, listener: WaitListener) -> None:
        self._wait_listeners.append(listener)

    def remove_wait_listener(self, listener: WaitListener) -> None:
        with contextlib.suppress(ValueError):
            self._wait_listeners.remove(listener)

    def _notify_wait(self, host: str, seconds: float, reason: str) -> None:
        for listener in list(self._wait_listeners):
            try:
                listener(host, seconds, reason)
            except Exception:  # a UI listener must never break a transfer
                LOG.exception("wait listener failed")

    def throttle_for(self, url: str) -> HostThrottle:
        key = self.policy.host_key(url)
        throttle = self._throttles.get(key)
        if throttle is None:
            throttle = self._throttles[key] = HostThrottle(self.options.politeness)
        return throttle

    # -- one attempt -----------------------------------------------------------------------------

    def auth_headers(self, url: str) -> dict[str, str]:
        """The Authorization header for `url`, when the key may go there (else empty)."""
        if self._api_key and self.policy.may_send_key(url):
            return {"Authorization": f"Bearer {self._api_key}"}
        return {}

    def _headers(self, url: str, extra: dict[str, str] | None) -> dict[str, str]:
        return {**(extra or {}), **self.auth_headers(url)}

    @contextlib.asynccontextmanager
    async def open(self, url: str, *, headers: dict[str, str] | None = None):
        """One GET, redirects checked against the host policy; yields a 2xx response.

        Raises the typed errors above for everything else (after reading the error body).
        """
        if not self.policy.is_allowed(url):
            raise HostNotAllowedError(f"refusing to contact a non-CivitAI host: {redact_url(url)}", url=url)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.options.timeout, sock_read=self.options.timeout)
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            throttle = self.throttle_for(current)
            waited = await throttle.wait_turn()
            if waited > 1:
                LOG.debug("waited %.1fs for %s", waited, self.policy.host_key(current))
            self.stats["requests"] += 1
            try:
                resp = await self.session.get(
                    current, headers=self._headers(current, headers), allow_redirects=False, timeout=timeout
                )
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise TransportError(_describe_transport(exc), url=current) from exc
            try:
                if resp.status in REDIRECT_STATUSES and resp.headers.get("Location"):
                    target = urljoin(current, resp.headers["Location"])
                    if not self.policy.is_allowed(target):
                        raise HostNotAllowedError(f"redirect to a non-CivitAI host refused: {redact_url(target)}", url=url)
                    current = target
                    continue
                if resp.status >= 400:
                    await self._raise_for_status(resp, current, throttle)
                throttle.on_success()
                yield resp
                return
            finally:
                resp.release()
        raise ClientRequestError("too many redirects", url=url)

    async def _raise_for_status(self, resp: aiohttp.ClientResponse, url: str, throttle: HostThrottle) -> None:
        try:
            body = await resp.content.read(64 * 1024)
        except (TimeoutError, aiohttp.ClientError, OSError):
            body = b""
        message = _error_message(body) or resp.reason or ""
        status = resp.status
        retry_after = parse_retry_after(resp.headers.get("Retry-After"), self.options.retry_after_cap)
        where = redact_url(url)
        if status == 429 or status == 503:
            throttle.on_overload(retry_after)
        if status == 429:
            self.stats["rate_limited"] += 1
            raise RateLimitedError(f"rate limited (429): {message}", url=where, retry_after=retry_after)
        if status in RETRY_STATUSES:
            raise ServerError(f"server error {status}: {message}", url=where, status=status, retry_after=retry_after)
        if status == 404:
            raise NotFoundError(message or "not found", url=where, status=status)
        raise ClientRequestError(f"HTTP {status}: {message}", url=where, status=status)

    # -- retries ---------------------------------------------------------------------------------

    async def retrying(self, attempt: Callable[[], Awaitable[T]], *, kind: str = "file", what: str = "") -> T:
        """Run `attempt` under the retry policy for `kind` ('listing' or 'file')."""
        extra = self.options.retries
        if kind == "listing":
            extra = max(self.options.retries, self.options.listing_retries)

        def wait(state) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is not None:
                return retry_after
            exp = min(self.options.backoff_max, 0.5 * 2 ** (state.attempt_number - 1))
            return random.uniform(0, exp)

        def before_sleep(state) -> None:
            # Called only when another attempt will follow (after tenacity's stop check).
            exc = state.outcome.exception() if state.outcome else None
            delay = state.upcoming_sleep
            if isinstance(exc, RateLimitedError):
                self._notify_wait(urlsplit(exc.url).netloc, delay, "rate limited")
            self.stats["retries"] += 1
            LOG.info("retrying %s in %.1fs (attempt %d): %s", what or kind, delay, state.attempt_number + 1, exc)

        retryer = AsyncRetrying(
            stop=stop_after_attempt(1 + max(0, extra)),
            wait=wait,
            before_sleep=before_sleep,
            retry=retry_if_exception(lambda e: isinstance(e, RetryableError)),
            reraise=True,
        )
        async for attempt_state in retryer:
            with attempt_state:
                return await attempt()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- helpers ---------------------------------------------------------------------------------

    async def get_json(
        self,
        url: str,
        *,
        kind: str = "listing",
        headers: dict[str, str] | None = None,
        validate: Callable[[Any], str | None] | None = None,
        max_bytes: int = DEFAULT_MAX_JSON_BYTES,
        what: str = "the answer",
    ) -> Any:
        """GET a JSON document with retries. A non-JSON 200 (an HTML error page) is retried, and so
        is JSON that `validate` rejects (it returns what is wrong, or None when the shape is right).
        A body over `max_bytes` (this endpoint's cap) or nested too deeply fails at once."""

        async def attempt() -> Any:
            async with self.open(url, headers=headers) as resp:
                raw = await read_capped(resp, max_bytes, url, what)
            data = parse_json_answer(raw, url)
            problem = validate(data) if validate is not None else None
            if problem:
                raise BadPayloadError(problem, url=redact_url(url))
            return data

        return await self.retrying(attempt, kind=kind, what=redact_url(url))


async def read_capped(resp: aiohttp.ClientResponse, max_bytes: int, url: str, what: str = "the answer") -> bytes:
    """The body, refused (UnreadableAnswerError) as soon as it is known to exceed `max_bytes`:
    from Content-Length before reading, else while it streams. Never holds more than the cap."""
    too_large = UnreadableAnswerError(
        f"{what} is larger than {max_bytes / (1024 * 1024):.0f} MB, more than any real answer; stopped reading",
        url=redact_url(url),
    )
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise too_large
    body = bytearray()
    try:
        async for chunk in resp.content.iter_chunked(_READ_CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise too_large
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise TransportError(_describe_transport(exc), url=redact_url(url)) from exc
    return bytes(body)


def _describe_transport(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return f"connection problem: {text}"
