"""The fake CivitAI HTTP server (aiohttp on 127.0.0.1, in a background thread).

Section numbers (§) refer to ``/work/shared/reference/civitai_api.md``.

Routes
------
``GET /api/v1/images``                 §3 (params, nsfw mask, cursors, nextPage, cap, errors)
``GET /api/v1/models``                 §4.1, §4.2 (unknown tag → all models)
``GET /api/v1/models/<id>``            §4.3
``GET /api/v1/model-versions/<id>``    §4.4
``GET /api/v1/tags``                   §4.5 (no nextPage)
``GET /api/trpc/<proc>[,<proc>]``      §7 (tag.getVotableTags, image.get, image.getGenerationData;
                                        origin gate, batching, superjson/devalue)
``GET /images/<id>``                   §8 (HTML page with __NEXT_DATA__ and the tag-loading script)
``GET /<ACCOUNT>/<uuid>/<params>[/<name>]``  §6 (CDN; query strings ignored; Range supported)
``/__fake__/...``                      control endpoints (never logged, never faulted, no latency):
    ``GET log[?path=prefix]``, ``POST clear-log``, ``GET|POST faults`` (POST a JSON list of rules,
    replacing the current ones; ``[]`` clears), ``GET|POST config`` (toggles, plus ``latency`` and
    ``item_cap``), ``POST publish`` ``{"username":..,"count":..,...}`` → ``{"ids":[..]}``,
    ``POST delete`` ``{"ids":[..]}``, ``POST reset`` (faults, log, toggles, latency, cap and data
    back to the constructor's state), ``GET dataset`` (user counts and named ids).

Toggles (``FakeCivitai.configure(**toggles)`` / ``POST /__fake__/config``)
------------------------------------------------------------------------
``not_found_style``             "404" (HEAD: 404 {"error":"User not found","code":"NOT_FOUND"}) or
                                "500" (before 2026-06: 500 {"error":"User not found"})
``url_era``                     "original" (``/original=true/<uuid>.jpeg``) or "width"
                                (``/width=<w>/<uuid>.jpeg``, before 2025-09)
``trpc_encoding``               "superjson" or "devalue" (``result.data`` is a devalue string)
``trpc_auth_required``          True → every tRPC call without a Bearer token gets 401
``meta_shape_default``          "flat" or "nested": the meta shape on the search path (the legacy
                                path, ``imageId`` / ``modelId`` alone, is always nested)
``allowed_media_host_override`` e.g. "http://evil.example:1": media URLs point there
``next_page_host_override``     same for ``metadata.nextPage`` (images and models)
``default_limit``               100 (HEAD) or 50 (2024 to mid-2026) for ``/images`` without limit
``meta_always``                 True → meta filled even without ``withMeta=true`` (before 2026-06)
``tags_metadata``               "current" (no nextPage, totalItems 0) or "legacy" (counts + nextPage)
``anonymous_public_only``       True → a caller without a valid key gets PG items only, whatever
                                ``nsfw``/``browsingLevel`` say (developer.civitai.com/site/reference/images:
                                "anonymous callers are capped at the public browsing level"). Off by
                                default: src/pages/api/v1/images/index.ts passes the asked level unchanged.
``site_color``                  "blue" (civitai.com / .red: canViewNsfw) or "green" (civitai.green, SFW
                                only): src/server/services/feature-flags.service.ts ``canViewNsfw``.

Keys (``FakeCivitai.add_api_key(token, username)`` / ``revoke_api_key``)
-----------------------------------------------------------------------
A Bearer header or ``token=`` authenticates the caller (src/server/auth/get-server-auth-session.ts).
A registered key is that user (sees their own private posts); any other non-empty key is some
valid user; a revoked key is anonymous on public endpoints and 401 on ``/api/v1/me``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from . import media as media_mod
from .dataset import (
    DATASET_NOW_MS,
    DEFAULT_TAKE,
    NSFW_STRINGS,
    SORTS,
    VOTE_DURATION_MS,
    Dataset,
    ImageItem,
    Model,
    ModelVersion,
    build_dataset,
    order_key,
    parse_iso_ms,
    sort_is_desc,
)
from .faults import FaultRule, corrupt, path_kind
from .page import NOT_FOUND_PAGE, render_missing_page, render_page
from .trpc import ORIGIN_GATE_MESSAGE, JsDate, TrpcError, devalue_stringify, superjson, zod_issue_message

ACCOUNT = "xG1nkqKTMzGDvpLrqFT7WA"

DEFAULT_TOGGLES: dict[str, Any] = {
    "not_found_style": "404",
    "url_era": "original",
    "trpc_encoding": "superjson",
    "trpc_auth_required": False,
    "meta_shape_default": "flat",
    "allowed_media_host_override": None,
    "next_page_host_override": None,
    "default_limit": 100,
    "meta_always": False,
    "tags_metadata": "current",
    "anonymous_public_only": False,
    "site_color": "blue",
}
_TOGGLE_CHOICES: dict[str, tuple] = {
    "not_found_style": ("404", "500"),
    "url_era": ("original", "width"),
    "trpc_encoding": ("superjson", "devalue"),
    "meta_shape_default": ("flat", "nested"),
    "tags_metadata": ("current", "legacy"),
    "site_color": ("blue", "green"),
}

USERNAME_RE = re.compile(r"^[A-Za-z0-9_]*$")
_TRUE = {"true", "1", "yes", "on", "y", "enabled"}
_FALSE = {"false", "0", "no", "off", "n", "disabled"}
NSFW_ENUM = {"None": 1, "Soft": 3, "Mature": 7, "X": 31, "Blocked": 32}  # §3.2
PERIODS = ("AllTime", "Year", "Month", "Week", "Day")
IMAGE_TYPES = ("image", "video", "audio")
MODEL_SORTS = (
    "Highest Rated",
    "Most Downloaded",
    "Most Liked",
    "Most Discussed",
    "Most Collected",
    "Most Images",
    "Newest",
    "Oldest",
)
MODEL_TYPES = (
    "Checkpoint", "TextualInversion", "Hypernetwork", "AestheticGradient", "LORA", "LoCon", "DoRA",
    "Controlnet", "Upscaler", "MotionModule", "VAE", "TextEncoder", "UNet", "CLIPVision", "Poses",
    "Wildcards", "Workflows", "ComfyWorkflows", "Detection", "VisionLanguage", "CLIP", "LLM", "Other",
)
TOO_MANY_PAGES = "You've requested too many pages, please use cursors instead"
PUBLIC_CACHE = "public, s-maxage=300, stale-while-revalidate=150"

_default_dataset: Dataset | None = None
_default_lock = threading.Lock()


def default_dataset() -> Dataset:
    """The default dataset, built once per process (servers serve forks of it)."""
    global _default_dataset
    with _default_lock:
        if _default_dataset is None:
            _default_dataset = build_dataset()
        return _default_dataset


@dataclass
class RequestRecord:
    time: float
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    status: int = 0
    fault: str | None = None
    bytes_sent: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["query"] = [list(kv) for kv in self.query]
        return d


@dataclass(frozen=True)
class Viewer:
    """Who is asking: anonymous, some valid key's user, or a registered key's user."""

    authed: bool = False
    username: str | None = None


class _BadParams(Exception):
    def __init__(self, issues: list[dict[str, Any]]) -> None:
        super().__init__("bad params")
        self.issues = issues


def _json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    resp = web.Response(body=body, status=status, content_type="application/json", charset="utf-8")
    if headers:
        resp.headers.update(headers)
    return resp


def _strict_query(pairs: list[tuple[str, str]]) -> str:
    """query-string ``stringify`` with strict encoding, keys in first-seen order (§3.5)."""
    order: list[str] = []
    groups: dict[str, list[str]] = {}
    for k, v in pairs:
        if k not in groups:
            order.append(k)
            groups[k] = []
        groups[k].append(v)
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k in order for v in groups[k])


def _set_param(pairs: list[tuple[str, str]], key: str, value: str) -> list[tuple[str, str]]:
    """Set or replace ``key`` (in place, like ``{...query, key}`` in JS; appended when new)."""
    out: list[tuple[str, str]] = []
    done = False
    for k, v in pairs:
        if k == key:
            if not done:
                out.append((k, value))
                done = True
            continue
        out.append((k, v))
    if not done:
        out.append((key, value))
    return out


class _Params:
    """zod-like parsing of query params: collects issues, raises _BadParams at the end."""

    def __init__(self, query: Any) -> None:
        self.q = query
        self.issues: list[dict[str, Any]] = []

    def raw(self, key: str) -> str | None:
        return self.q.get(key)

    def int(self, key: str, lo: int | None = None, hi: int | None = None) -> int | None:
        v = self.q.get(key)
        if v is None:
            return None
        s = v.strip()
        try:
            n = float(s) if s else float("nan")
        except ValueError:
            n = float("nan")
        if n != n:
            self.issues.append({"code": "invalid_type", "expected": "number", "received": "nan",
                                "path": [key], "message": "Expected number, received nan"})
            return None
        if not n.is_integer():
            self.issues.append({"code": "invalid_type", "expected": "integer", "received": "float",
                                "path": [key], "message": "Expected integer, received float"})
            return None
        i = int(n)
        if lo is not None and i < lo:
            self.issues.append({"code": "too_small", "minimum": lo, "type": "number", "inclusive": True,
                                "exact": False, "message": f"Number must be greater than or equal to {lo}",
                                "path": [key]})
            return None
        if hi is not None and i > hi:
            self.issues.append({"code": "too_big", "maximum": hi, "type": "number", "inclusive": True,
                                "exact": False, "message": f"Number must be less than or equal to {hi}",
                                "path": [key]})
            return None
        return i

    def enum(self, key: str, options: tuple[str, ...]) -> str | None:
        v = self.q.get(key)
        if v is None:
            return None
        if v not in options:
            opts = " | ".join(f"'{o}'" for o in options)
            self.issues.append({"received": v, "code": "invalid_enum_value", "options": list(options),
                                "path": [key], "message": f"Invalid enum value. Expected {opts}, received '{v}'"})
            return None
        return v

    def bool(self, key: str) -> bool | None:
        v = self.q.get(key)
        if v is None:
            return None
        low = v.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        self.issues.append({"code": "invalid_format", "format": "stringbool", "path": [key],
                            "message": 'Invalid input: expected boolean string ("true" or "false")'})
        return None

    def int_list(self, key: str) -> tuple[int, ...] | None:
        v = self.q.get(key)
        if v is None:
            return None
        out = []
        for part in v.split(","):
            part = part.strip()
            if not part:
                continue
            if not part.lstrip("-").isdigit():
                self.issues.append({"code": "invalid_type", "expected": "number", "received": "nan",
                                    "path": [key], "message": "Expected number, received nan"})
                return None
            out.append(int(part))
        return tuple(out)

    def check(self) -> None:
        if self.issues:
            raise _BadParams(self.issues)


def _zod_400(issues: list[dict[str, Any]]) -> web.Response:
    return _json_response({"error": {"issues": issues, "name": "ZodError"}}, 400)


def _encode_cursor(served: int, key: tuple[int, int], desc: bool) -> str:
    primary, item_id = key
    if desc:
        primary, item_id = -primary, -item_id
    return f"{served}|{primary}|{item_id}"


def _decode_cursor(text: str, desc: bool) -> tuple[int, tuple[int, int]] | None:
    parts = text.split("|")
    if len(parts) != 3:
        return None
    try:
        served, primary, item_id = (int(p) for p in parts)
    except ValueError:
        return None
    if served < 0:
        return None
    return served, order_key(primary, item_id, desc)


class FakeCivitai:
    """A running replica of CivitAI. Use as a context manager or call ``start()`` / ``stop()``.

    ``dataset`` is a fork (overlay) of the dataset given (or of the default one, built once per
    process), so ``publish_images`` / ``delete_images`` never touch the shared dataset.
    """

    def __init__(
        self,
        dataset: Dataset | None = None,
        *,
        port: int = 0,
        latency: float = 0.0,
        item_cap: int | None = None,
    ) -> None:
        self._base_dataset = dataset if dataset is not None else default_dataset()
        self.dataset: Dataset = self._base_dataset.fork()
        self.port = port
        self._init_latency = latency
        self._init_cap = item_cap
        self.latency = latency
        self.item_cap = item_cap
        self.toggles: dict[str, Any] = dict(DEFAULT_TOGGLES)
        self.api_keys: dict[str, str] = {}
        self.revoked_keys: set[str] = set()
        self.request_log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._faults: list[FaultRule] = []
        self._faults_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        if self._thread is not None:
            return self.base_url
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:  # surfaced in start()
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-civitai", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            self._thread = None
            raise errors[0]
        return self.base_url

    async def _astart(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeCivitai:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -----------------------------------------------------------------------

    def requests(self, path_prefix: str = "") -> list[RequestRecord]:
        with self._log_lock:
            return [r for r in self.request_log if r.path.startswith(path_prefix)]

    def clear_log(self) -> None:
        with self._log_lock:
            self.request_log.clear()

    def add_fault(self, rule: FaultRule) -> None:
        with self._faults_lock:
            self._faults = [*self._faults, rule]

    def clear_faults(self) -> None:
        with self._faults_lock:
            self._faults = []

    @property
    def faults(self) -> list[FaultRule]:
        return list(self._faults)

    def set_latency(self, seconds: float) -> None:
        self.latency = float(seconds)

    def set_item_cap(self, n: int | None) -> None:
        self.item_cap = None if n is None else int(n)

    def configure(self, **toggles: Any) -> None:
        for key, value in toggles.items():
            if key not in DEFAULT_TOGGLES:
                raise ValueError(f"unknown toggle {key!r}; known: {', '.join(DEFAULT_TOGGLES)}")
            if key in _TOGGLE_CHOICES:
                value = str(value)
                if value not in _TOGGLE_CHOICES[key]:
                    raise ValueError(f"{key} must be one of {_TOGGLE_CHOICES[key]}, not {value!r}")
            elif key in ("trpc_auth_required", "meta_always", "anonymous_public_only"):
                value = bool(value)
            elif key == "default_limit":
                value = int(value)
            elif value is not None:
                value = str(value).rstrip("/")
            self.toggles[key] = value

    def add_api_key(self, token: str, username: str) -> None:
        """``token`` authenticates as ``username`` (who then sees their own private posts)."""
        self.api_keys[str(token)] = str(username)
        self.revoked_keys.discard(str(token))

    def revoke_api_key(self, token: str) -> None:
        """An expired or deleted key: anonymous on public endpoints, 401 on /api/v1/me."""
        self.revoked_keys.add(str(token))

    def _viewer_id(self, viewer: Viewer) -> int | None:
        user = self.dataset.user(viewer.username) if viewer.username else None
        return user.id if user is not None else None

    def viewer(self, request: web.Request) -> Viewer:
        """src/server/auth/get-server-auth-session.ts: the Bearer header first, then ``token``."""
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else (request.query.get("token") or "").strip()
        if not token or token in self.revoked_keys:
            return Viewer()
        return Viewer(authed=True, username=self.api_keys.get(token))

    def publish_images(self, username: str, count: int, **kw: Any) -> list[int]:
        """New images (the newest of all) for ``username``; kw: type, media_format, nsfw_level,
        model_version_ids, width, height, meta, base_model, availability ("Private": a hidden
        post), tags (TagVote list)."""
        return self.dataset.publish(username, count, **kw)

    def delete_images(self, ids: Any) -> None:
        self.dataset.delete(ids)

    def reset(self) -> None:
        self.clear_faults()
        self.clear_log()
        self.toggles = dict(DEFAULT_TOGGLES)
        self.api_keys = {}
        self.revoked_keys = set()
        self.latency = self._init_latency
        self.item_cap = self._init_cap
        self.dataset = self._base_dataset.fork()

    # -- dispatch ------------------------------------------------------------------------------

    def _log(self, rec: RequestRecord) -> None:
        with self._log_lock:
            self.request_log.append(rec)

    def _pick_fault(self, kind: str, path: str) -> FaultRule | None:
        for rule in self._faults:
            if rule.matches(kind, path) and rule.trigger():
                return rule
        return None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/__fake__/"):
            return await self._control(request)
        rec = RequestRecord(
            time=time.time(),
            method=request.method,
            path=path,
            query=list(request.query.items()),
            headers=dict(request.headers),
        )
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            rule = self._pick_fault(path_kind(path, ACCOUNT), path)
            if rule is None:
                resp = await self._route(request)
            else:
                rec.fault = rule.kind
                resp = await self._faulted(rule, request, rec)
                if resp.prepared:
                    return resp
            rec.status = resp.status
            body = getattr(resp, "body", None)
            rec.bytes_sent = 0 if request.method == "HEAD" or not isinstance(body, bytes) else len(body)
            return resp
        finally:
            self._log(rec)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        parts = [p for p in path.split("/") if p != ""]
        if parts[:2] == ["api", "v1"]:
            return await self._rest(request, parts[2:])
        if parts[:2] == ["api", "trpc"] and len(parts) >= 3:
            return await self._trpc(request, parts[2])
        if parts and parts[0] == ACCOUNT:
            return await self._cdn(request, parts[1:])
        if len(parts) == 2 and parts[0] in ("images", "videos"):
            return self._page(request, parts[1])
        return _json_response({"error": "Not found"}, 404) if path.startswith("/api/") else web.Response(
            text=NOT_FOUND_PAGE, status=404, content_type="text/html"
        )

    # -- faults ----------------------------------------------------------------------------------

    async def _faulted(self, rule: FaultRule, request: web.Request, rec: RequestRecord) -> web.StreamResponse:
        kind = rule.kind
        if kind.startswith("429"):
            headers = {}
            if kind == "429":
                ra = rule.retry_after
                headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
            elif kind == "429-date":
                headers["Retry-After"] = formatdate(time.time() + float(rule.retry_after), usegmt=True)
            return _json_response({"error": "Too Many Requests"}, 429, headers)
        if kind == "500":
            return _json_response({"error": "Internal Server Error", "code": "INTERNAL_SERVER_ERROR"}, 500)
        if kind == "503":
            return _json_response({"error": "Server busy, please retry shortly."}, 503,
                                  {"Retry-After": "2", "Cache-Control": "no-store"})
        if kind in ("502", "504"):
            title = "Bad gateway" if kind == "502" else "Gateway time-out"
            html = (f"<!DOCTYPE html><html><head><title>civitai.com | {kind}: {title}</title></head>"
                    f"<body><h1>Error {kind}</h1><p>{title}</p><p>cloudflare</p></body></html>")
            return web.Response(text=html, status=int(kind), content_type="text/html")
        if kind == "html200":
            html = ("<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title></head>"
                    "<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>")
            return web.Response(text=html, status=200, content_type="text/html")
        if kind == "json-garbage":
            if request.path.startswith("/api/trpc/"):
                return _json_response({"result": "oops", "data": [1, 2, 3]})
            return _json_response({"items": {"oops": True}, "metadata": []})
        if kind == "slow":
            await asyncio.sleep(float(rule.delay))
            return await self._route(request)
        # the rest transform the real response
        real = await self._route(request)
        body = real.body if isinstance(getattr(real, "body", None), bytes) else b""
        if kind == "corrupt":
            real.body = corrupt(body)
            return real
        # reset / truncate: full Content-Length, part of the body, then the connection goes away
        resp = web.StreamResponse(status=real.status, reason=real.reason)
        for k, v in real.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding"):
                resp.headers[k] = v
        resp.content_length = len(body)
        await resp.prepare(request)
        part = body[: max(1, len(body) // 2)] if len(body) > 1 else b""
        if part and request.method != "HEAD":
            await resp.write(part)
        rec.status = real.status
        rec.bytes_sent = len(part)
        transport = request.transport
        if transport is not None:
            if kind == "reset":
                await asyncio.sleep(0.02)  # let the headers and the partial body reach the client
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()
        return resp

    # -- helpers -----------------------------------------------------------------------------------

    def _host_prefix(self, request: web.Request) -> str:
        return f"http://{request.host}"

    def _media_prefix(self, request: web.Request) -> str:
        return self.toggles["allowed_media_host_override"] or self._host_prefix(request)

    def _next_prefix(self, request: web.Request) -> str:
        return self.toggles["next_page_host_override"] or self._host_prefix(request)

    def _api_headers(self, request: web.Request) -> dict[str, str]:
        authed = request.headers.get("Authorization", "").startswith("Bearer ") or "token" in request.query
        return {
            "Cache-Control": "private, no-store" if authed else PUBLIC_CACHE,
            "Access-Control-Allow-Origin": "*",
        }

    def image_url(self, request: web.Request, img: ImageItem) -> str:
        """The ``url`` of an /images item (§3.3): extension from the type, never the real format."""
        prefix = self._media_prefix(request)
        if self.toggles["url_era"] == "width":
            w = img.width if img.width else 450
            return f"{prefix}/{ACCOUNT}/{img.uuid}/width={min(w, 1800)}/{img.uuid}.{img.url_ext}"
        return f"{prefix}/{ACCOUNT}/{img.uuid}/original=true/{img.uuid}.{img.url_ext}"

    def _meta_out(self, img: ImageItem, with_meta: bool, flat: bool) -> Any:
        """src/server/services/image-search.service.ts runImageSearch: ``null`` without withMeta;
        flat: the meta (or null); nested: ``{"id": <image id>, "meta": <meta or null>}``, so an
        image without metadata is ``{"id": .., "meta": null}`` on the legacy path."""
        if not (with_meta or self.toggles["meta_always"]):
            return None
        inner = dict(img.meta) if img.meta is not None else None
        if img.meta_nested_always or not flat:
            return {"id": img.id, "meta": inner}
        return inner

    def image_item(self, request: web.Request, img: ImageItem, *, with_meta: bool, flat: bool,
                   with_tags: bool) -> dict[str, Any]:
        """One /api/v1/images item, keys in the §3.3 order."""
        level = img.nsfw_level
        level_str = NSFW_STRINGS.get(level, "None")
        item: dict[str, Any] = {
            "id": img.id,
            "url": self.image_url(request, img),
            "hash": img.hash,
            "width": img.width,
            "height": img.height,
            "nsfwLevel": level_str,
            "type": img.type,
            "nsfw": level_str != "None",
            "browsingLevel": level,
            "createdAt": img.created_at,
            "postId": img.post_id,
            "stats": dict(img.stats),
            "meta": self._meta_out(img, with_meta, flat),
            "username": img.username,
            "baseModel": img.base_model,
            "modelVersionIds": list(img.model_version_ids),
        }
        if with_tags:
            item["tags"] = [{"id": v.id, "name": v.name} for v in sorted(img.tags, key=lambda v: (-v.score, v.id))]
        for k, v in img.overrides.items():
            item[k] = v
        return item

    # -- REST ----------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request, rest: list[str]) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "GET, OPTIONS",
                "Access-Control-Allow-Headers": "*",
            })
        if request.method not in ("GET", "HEAD"):
            return _json_response({"error": "Method not allowed"}, 405, {"Allow": "GET"})
        try:
            if rest == ["images"]:
                resp = self._api_images(request)
            elif rest == ["models"]:
                resp = self._api_models(request)
            elif len(rest) == 2 and rest[0] == "models":
                resp = self._api_model(request, rest[1])
            elif len(rest) == 2 and rest[0] == "model-versions":
                resp = self._api_model_version(request, rest[1])
            elif rest == ["tags"]:
                resp = self._api_tags(request)
            elif rest == ["me"]:
                resp = self._api_me(request)
            else:
                return _json_response({"error": "Not found"}, 404)
        except _BadParams as exc:
            resp = _zod_400(exc.issues)
        if resp.status < 400:
            resp.headers.update(self._api_headers(request))
        else:
            resp.headers["Access-Control-Allow-Origin"] = "*"
        return resp

    def _api_me(self, request: web.Request) -> web.Response:
        """src/pages/api/v1/me.ts (AuthedEndpoint in src/server/utils/endpoint-helpers.ts): 401
        ``{"error":"Unauthorized"}`` without a valid session, else the user."""
        viewer = self.viewer(request)
        if not viewer.authed:
            return _json_response({"error": "Unauthorized"}, 401)
        user = self.dataset.user(viewer.username) if viewer.username else None
        return _json_response({"id": user.id if user else 4999, "username": user.username if user else "fake_user",
                               "tier": "free", "status": "active", "isMember": False, "subscriptions": []})

    def _api_images(self, request: web.Request) -> web.Response:
        """§3: GET /api/v1/images."""
        q = request.query
        p = _Params(q)
        limit = p.int("limit", 0, 200)
        page = p.int("page", 1)
        cursor = q.get("cursor")
        post_id = p.int("postId")
        model_id = p.int("modelId")
        version_id = p.int("modelVersionId")
        image_id = p.int("imageId")
        user_id = p.int("userId")
        username = q.get("username")
        if username is not None:
            username = username.strip()
            if not USERNAME_RE.match(username):
                p.issues.append({"validation": "regex", "code": "invalid_string", "message": "Invalid",
                                 "path": ["username"]})
                username = None
        p.enum("period", PERIODS)
        sort = p.enum("sort", SORTS) or "Most Reactions"
        nsfw_raw = q.get("nsfw")
        nsfw_mask = None
        if nsfw_raw is not None:
            low = nsfw_raw.strip().lower()
            if nsfw_raw in NSFW_ENUM:
                nsfw_mask = NSFW_ENUM[nsfw_raw]
            elif low in _TRUE:
                nsfw_mask = 60  # §3.2: nsfw=true means R|X|XXX|Blocked, PG and PG-13 excluded
            elif low in _FALSE:
                nsfw_mask = 1
            else:
                opts = " | ".join(f"'{o}'" for o in NSFW_ENUM)
                p.issues.append({"code": "invalid_union", "path": ["nsfw"],
                                 "message": f"Invalid enum value. Expected {opts} or a boolean string, "
                                            f"received '{nsfw_raw}'"})
        browsing = p.int("browsingLevel")
        media_type = p.enum("type", IMAGE_TYPES)
        with_meta = p.bool("withMeta")
        flat_meta = p.bool("flatMeta")
        with_tags = p.bool("withTags")
        p.bool("requiringMeta")
        tag_ids = p.int_list("tags")
        base_models_raw = q.get("baseModels")
        p.check()
        if limit is None:
            limit = int(self.toggles["default_limit"])
        paging = page is not None and cursor is None
        if paging and page * limit > 1000:  # type: ignore[operator]
            return _json_response({"error": TOO_MANY_PAGES}, 429)
        mask = browsing if browsing is not None else (nsfw_mask if nsfw_mask is not None else 1)
        viewer = self.viewer(request)
        if self.toggles["anonymous_public_only"] and not viewer.authed:
            mask &= 1  # the documented anonymous cap (see the toggle)
        legacy = image_id is not None or (model_id is not None and version_id is None)
        flat = flat_meta if flat_meta is not None else (
            not legacy and self.toggles["meta_shape_default"] == "flat")
        base_models = tuple(b.strip() for b in base_models_raw.split(",") if b.strip()) if base_models_raw else None
        try:
            items, keys = self.dataset.select(
                username=username or None,
                user_id=user_id,
                model_id=model_id,
                version_id=version_id,
                post_id=post_id,
                image_id=image_id,
                mask=mask,
                media_type=media_type,
                tag_ids=tag_ids or None,
                base_models=base_models,
                sort=sort,
                viewer_id=self._viewer_id(viewer),
            )
        except KeyError:
            if self.toggles["not_found_style"] == "500":
                return _json_response({"error": "User not found"}, 500)
            return _json_response({"error": "User not found", "code": "NOT_FOUND"}, 404)
        desc = sort_is_desc(sort, legacy)
        pairs = list(q.items())
        base = f"{self._next_prefix(request)}/api/v1/images?"
        metadata: dict[str, Any] = {}
        if paging:
            offset = (page - 1) * limit  # type: ignore[operator]
            chunk = items[offset : offset + limit]
            more = offset + len(chunk) < len(items) and len(chunk) > 0
            if more:
                metadata["nextCursor"] = _encode_cursor(offset + len(chunk), keys[offset + len(chunk) - 1], desc)
            metadata["currentPage"] = page
            metadata["pageSize"] = limit
            if more:
                metadata["nextPage"] = base + _strict_query(_set_param(pairs, "page", str(page + 1)))  # type: ignore[operator]
        else:
            served, start = 0, 0
            if cursor is not None:
                parsed = _decode_cursor(cursor, desc)
                if parsed is None:
                    return _zod_400([{"code": "custom", "message": "Invalid cursor", "path": ["cursor"]}])
                served, after = parsed
                start = Dataset.start_index(keys, after)
            cap = self.item_cap
            room = limit if cap is None else max(0, min(limit, cap - served))
            chunk = items[start : start + room]
            end = start + len(chunk)
            more = bool(chunk) and end < len(items) and (cap is None or served + len(chunk) < cap)
            if more:
                nxt = _encode_cursor(served + len(chunk), keys[end - 1], desc)
                metadata["nextCursor"] = nxt
                metadata["nextPage"] = base + _strict_query(_set_param(pairs, "cursor", nxt))
        out = [self.image_item(request, img, with_meta=bool(with_meta), flat=flat, with_tags=bool(with_tags))
               for img in chunk]
        return _json_response({"items": out, "metadata": metadata})

    # models

    def _version_images(self, request: web.Request, v: ModelVersion, mask: int, with_meta: bool) -> list[dict]:
        out = []
        for img in self.dataset.version_showcase(v.id, mask):
            prefix = self._media_prefix(request)
            d: dict[str, Any] = {
                "id": img.id,
                "url": f"{prefix}/{ACCOUNT}/{img.uuid}/original=true/{img.id}.{img.url_ext}",
                "nsfwLevel": img.nsfw_level,
                "width": img.width,
                "height": img.height,
                "hash": img.hash,
                "type": img.type,
                "minor": False,
                "poi": False,
                "hasMeta": img.meta is not None,
                "hasPositivePrompt": bool(img.meta and img.meta.get("prompt")),
                "onSite": False,
                "remixOfId": None,
            }
            if with_meta:
                d["meta"] = dict(img.meta) if img.meta is not None else None
            out.append(d)
        return out

    def _files(self, request: web.Request, m: Model, v: ModelVersion) -> list[dict[str, Any]]:
        if m.mode in ("Archived", "TakenDown"):
            return []
        digest = f"{(v.id * 2654435761) & 0xFFFFFFFFFFFF:012X}"
        return [{
            "id": v.id * 10 + 7,
            "sizeKB": v.file_kb,
            "name": f"{m.name.replace('/', '_')}_{v.name}.safetensors",
            "type": "Model",
            "pickleScanResult": "Success",
            "virusScanResult": "Success",
            "metadata": {"format": "SafeTensor", "size": "pruned", "fp": "fp16"},
            "hashes": {"AutoV1": digest[:8], "AutoV2": digest[:10], "SHA256": (digest * 6)[:64],
                       "CRC32": digest[:8], "BLAKE3": (digest * 6)[:64], "AutoV3": digest},
            "primary": True,
            "downloadUrl": f"{self._host_prefix(request)}/api/download/models/{v.id}",
        }]

    def model_item(self, request: web.Request, m: Model, mask: int) -> dict[str, Any]:
        """One /api/v1/models item (§4.1)."""
        level = self.dataset.model_nsfw_level(m)
        d: dict[str, Any] = {
            "id": m.id,
            "name": m.name,
            "description": m.description,
            "type": m.type,
            "nsfw": bool(level & 60),
            "nsfwLevel": level,
            "availability": "Public",
            "minor": False,
            "poi": False,
            "sfwOnly": False,
            "allowNoCredit": True,
            "allowCommercialUse": ["Image", "RentCivit"],
            "allowDerivatives": True,
            "allowDifferentLicense": True,
            "supportsGeneration": False,
        }
        if m.mode:
            d["mode"] = m.mode
        d["stats"] = {
            "downloadCount": m.download_count,
            "thumbsUpCount": m.thumbs_up,
            "thumbsDownCount": m.thumbs_down,
            "commentCount": m.comment_count,
            "tippedAmountCount": 0,
        }
        d["creator"] = {"username": m.creator, "image": None}
        d["tags"] = list(m.tags)
        versions = []
        for vid in m.version_ids:
            v = self.dataset.versions[vid]
            vd: dict[str, Any] = {
                "id": v.id,
                "index": len(versions),
                "name": v.name,
                "baseModel": v.base_model,
                "baseModelType": "Standard",
                "publishedAt": v.published_at,
                "availability": "Public",
                "nsfwLevel": level,
                "description": None,
                "trainedWords": list(v.trained_words),
                "supportsGeneration": False,
                "stats": {"downloadCount": v.download_count, "thumbsUpCount": v.thumbs_up, "thumbsDownCount": 0},
                "files": self._files(request, m, v),
                "images": self._version_images(request, v, mask, with_meta=False),
            }
            if not m.mode:
                vd["downloadUrl"] = f"{self._host_prefix(request)}/api/download/models/{v.id}"
            versions.append(vd)
        d["modelVersions"] = versions
        return d

    def _model_sort(self, m: Model, sort: str) -> tuple[int, bool]:
        if sort == "Newest":
            return parse_iso_ms(m.created_at), True
        if sort == "Oldest":
            return parse_iso_ms(m.created_at), False
        if sort == "Most Downloaded":
            return m.download_count, True
        if sort == "Most Discussed":
            return m.comment_count, True
        if sort == "Most Collected":
            return m.collected_count, True
        if sort == "Most Images":
            return len(self.dataset.images_for_model(m.id)), True
        return m.thumbs_up, True  # Highest Rated / Most Liked

    def _api_models(self, request: web.Request) -> web.Response:
        """§4.1 / §4.2: GET /api/v1/models."""
        q = request.query
        p = _Params(q)
        limit = p.int("limit", 0, 100)
        page = p.int("page", 1)
        cursor = q.get("cursor")
        query = q.get("query")
        tag = q.get("tag") or q.get("tagname")
        username = q.get("username")
        types = q.getall("types", [])
        bad_types = [t for t in types if t not in MODEL_TYPES]
        if bad_types:
            p.issues.append({"received": bad_types[0], "code": "invalid_enum_value", "options": list(MODEL_TYPES),
                             "path": ["types"], "message": f"Invalid enum value, received '{bad_types[0]}'"})
        sort = p.enum("sort", MODEL_SORTS) or "Highest Rated"
        p.enum("period", PERIODS)
        nsfw = p.bool("nsfw")
        ids = p.int_list("ids")
        base_models_raw = q.get("baseModels")
        p.bool("supportsGeneration")
        p.bool("primaryFileOnly")
        favorites = p.bool("favorites")
        hidden = p.bool("hidden")
        p.check()
        if (favorites or hidden) and not request.headers.get("Authorization", "").startswith("Bearer "):
            return _json_response({"error": "Unauthorized"}, 401)
        if query and page is not None:
            return _json_response(
                {"error": "Cannot use page param with query search. Use cursor-based pagination."}, 400)
        if limit is None:
            limit = 100
        paging = page is not None and cursor is None
        if paging and page * limit > 1000:  # type: ignore[operator]
            return _json_response({"error": TOO_MANY_PAGES}, 429)
        mask = 31 if nsfw else 1
        models = list(self.dataset.models.values())
        if tag and self.dataset.tag_exists(tag):  # §4.2: an unknown tag is ignored → all models
            low = tag.strip().lower()
            models = [m for m in models if low in (t.lower() for t in m.tags)]
        if username:
            low = username.strip().lower()
            models = [m for m in models if m.creator.lower() == low]
        if query:
            low = query.lower()
            models = [m for m in models if low in m.name.lower()]
        if types:
            models = [m for m in models if m.type in types]
        if ids:
            models = [m for m in models if m.id in ids]
        if base_models_raw:
            wanted = {b.strip() for b in base_models_raw.split(",")}
            models = [m for m in models if any(self.dataset.versions[v].base_model in wanted for v in m.version_ids)]
        models = [m for m in models if self.dataset.model_nsfw_level(m) & mask]
        keyed = []
        for m in models:
            pv, desc = self._model_sort(m, sort)
            keyed.append((order_key(pv, m.id, desc), m))
        keyed.sort(key=lambda kv: kv[0])
        desc = self._model_sort(keyed[0][1], sort)[1] if keyed else True
        keys = [k for k, _ in keyed]
        ordered = [m for _, m in keyed]
        pairs = list(q.items())
        base = f"{self._next_prefix(request)}/api/v1/models?"
        metadata: dict[str, Any] = {}
        if paging:
            offset = (page - 1) * limit  # type: ignore[operator]
            chunk = ordered[offset : offset + limit]
            end = offset + len(chunk)
            more = bool(chunk) and end < len(ordered)
            if more:
                metadata["nextCursor"] = _encode_cursor(end, keys[end - 1], desc)
            metadata["currentPage"] = page
            metadata["pageSize"] = limit
        else:
            served, start = 0, 0
            if cursor is not None:
                parsed = _decode_cursor(cursor, desc)
                if parsed is None:
                    return _zod_400([{"code": "custom", "message": "Invalid cursor", "path": ["cursor"]}])
                served, after = parsed
                start = Dataset.start_index(keys, after)
            chunk = ordered[start : start + limit]
            end = start + len(chunk)
            more = bool(chunk) and end < len(ordered)
            if more:
                metadata["nextCursor"] = _encode_cursor(served + len(chunk), keys[end - 1], desc)
        if "nextCursor" in metadata:  # §4.1: nextPage always uses cursor=, even in paging mode
            metadata["nextPage"] = base + _strict_query(_set_param(pairs, "cursor", metadata["nextCursor"]))
        out = [self.model_item(request, m, mask) for m in chunk]
        return _json_response({"items": out, "metadata": metadata})

    def _api_model(self, request: web.Request, raw_id: str) -> web.Response:
        """§4.3: GET /api/v1/models/<id>."""
        if not raw_id.isdigit():
            return _json_response({"error": "Expected number, received nan"}, 400)
        m = self.dataset.models.get(int(raw_id))
        if m is None:
            return _json_response({"error": f"No model with id {int(raw_id)}"}, 404)
        return _json_response(self.model_item(request, m, 31))

    def _api_model_version(self, request: web.Request, raw_id: str) -> web.Response:
        """§4.4: GET /api/v1/model-versions/<id>."""
        if not raw_id.isdigit():
            return _json_response({"error": "Expected number, received nan"}, 400)
        vid = int(raw_id)
        if vid == 0:
            return _json_response({"error": "Missing modelVersionId"}, 400)
        v = self.dataset.versions.get(vid)
        if v is None:
            return _json_response({"error": "Model not found"}, 404)
        m = self.dataset.models[v.model_id]
        files = self._files(request, m, v)
        if not files:
            return _json_response({"error": "Missing model file"}, 404)
        eco = {"SD 1.5": "sd1", "Flux.1 D": "flux1", "Pony": "pony", "Illustrious": "illustrious"}.get(
            v.base_model, "sdxl")
        mtype = m.type.lower()
        d = {
            "id": v.id,
            "modelId": m.id,
            "name": v.name,
            "nsfwLevel": self.dataset.model_nsfw_level(m),
            "createdAt": v.created_at,
            "updatedAt": v.published_at,
            "status": "Published",
            "publishedAt": v.published_at,
            "trainedWords": list(v.trained_words),
            "trainingStatus": None,
            "trainingDetails": None,
            "baseModel": v.base_model,
            "baseModelType": "Standard",
            "earlyAccessEndsAt": None,
            "earlyAccessConfig": None,
            "description": None,
            "uploadType": "Created",
            "usageControl": "Download",
            "air": f"urn:air:{eco}:{mtype}:civitai:{m.id}@{v.id}",
            "stats": {"downloadCount": v.download_count, "ratingCount": 0, "rating": 0, "thumbsUpCount": v.thumbs_up},
            "model": {"name": m.name, "type": m.type, "nsfw": bool(self.dataset.model_nsfw_level(m) & 60),
                      "poi": False},
            "files": files,
            "images": self._version_images(request, v, 31, with_meta=True),
            "downloadUrl": f"{self._host_prefix(request)}/api/download/models/{v.id}",
        }
        if m.mode:
            d["model"]["mode"] = m.mode
        return _json_response(d)

    def _api_tags(self, request: web.Request) -> web.Response:
        """§4.5: GET /api/v1/tags (model tags; no nextPage since 2025-10)."""
        q = request.query
        p = _Params(q)
        limit = p.int("limit", 1, 200)
        page = p.int("page", 0)
        query = q.get("query")
        p.check()
        limit = 20 if limit is None else limit
        page = 1 if page is None or page == 0 else page
        if query:
            low = query.lower()
            tags = [t for t in self.dataset.model_tags if t.name.lower().startswith(low)]
            tags.sort(key=lambda t: (len(t.name), t.name))
        else:
            tags = [t for t in self.dataset.model_tags if t.nsfw_level == 1 and not t.unfeatured]
            tags.sort(key=lambda t: (-t.model_count, t.name))
        chunk = tags[(page - 1) * limit : page * limit]
        prefix = self._host_prefix(request)
        items = [{"name": t.name, "link": f"{prefix}/api/v1/models?tag={t.name}"} for t in chunk]
        if self.toggles["tags_metadata"] == "legacy":
            total_pages = max(1, -(-len(tags) // limit))
            meta: dict[str, Any] = {"totalItems": len(tags), "currentPage": page, "pageSize": limit,
                                    "totalPages": total_pages}
            if page < total_pages:
                meta["nextPage"] = f"{self._next_prefix(request)}/api/v1/tags?" + _strict_query(
                    _set_param(list(q.items()), "page", str(page + 1)))
        else:
            meta = {"totalItems": 0, "currentPage": page, "pageSize": limit, "totalPages": 1}
        return _json_response({"items": items, "metadata": meta})

    # -- tRPC --------------------------------------------------------------------------------------

    def _origin_ok(self, request: web.Request) -> bool:
        host = request.host.lower()
        origin = request.headers.get("Origin")
        if origin:
            return urlsplit(origin).netloc.lower() == host
        referer = request.headers.get("Referer")
        if referer:
            return urlsplit(referer).netloc.lower() == host
        return False

    async def _trpc(self, request: web.Request, procs_part: str) -> web.Response:
        """§7.1: GET (or POST) /api/trpc/<proc>[,<proc>...][?batch=1]&input=..."""
        batch = request.query.get("batch") in ("1", "true")
        procs = procs_part.split(",") if batch else [procs_part]
        bearer = request.headers.get("Authorization", "")
        has_bearer = bearer.startswith("Bearer ") and bool(bearer[7:].strip())
        gate: TrpcError | None = None
        if self.toggles["trpc_auth_required"] and not has_bearer:
            gate = TrpcError("UNAUTHORIZED", "UNAUTHORIZED")
        elif not has_bearer and not self._origin_ok(request):
            gate = TrpcError("UNAUTHORIZED", ORIGIN_GATE_MESSAGE)
        if request.method == "POST":
            raw = await request.text()
        elif request.method in ("GET", "HEAD"):
            raw = request.query.get("input")
        else:
            err = TrpcError("BAD_REQUEST", f"Unsupported method {request.method}")
            return _json_response(err.body(procs[0]), 405)
        inputs: list[Any] = []
        parse_error: TrpcError | None = None
        try:
            decoded = json.loads(raw) if raw not in (None, "") else None
        except ValueError as exc:
            decoded = None
            parse_error = TrpcError("BAD_REQUEST", f"Unable to parse input: {exc}")
        for i in range(len(procs)):
            env = decoded.get(str(i)) if batch and isinstance(decoded, dict) else (None if batch else decoded)
            inputs.append(env.get("json") if isinstance(env, dict) else None)
        results: list[tuple[int, dict[str, Any]]] = []
        for proc, inp in zip(procs, inputs, strict=True):
            try:
                if gate is not None:
                    raise gate
                if parse_error is not None:
                    raise parse_error
                data = self._call_proc(request, proc, inp)
                if self.toggles["trpc_encoding"] == "devalue":
                    results.append((200, {"result": {"data": devalue_stringify(data)}}))
                else:
                    results.append((200, {"result": {"data": superjson(data)}}))
            except TrpcError as exc:
                results.append((exc.http_status, exc.body(proc)))
        if batch:
            statuses = {s for s, _ in results}
            status = statuses.pop() if len(statuses) == 1 else 207
            return _json_response([b for _, b in results], status)
        status, body = results[0]
        return _json_response(body, status)

    def _call_proc(self, request: web.Request, proc: str, inp: Any) -> Any:
        if proc == "tag.getVotableTags":
            return self._proc_votable_tags(inp)
        if proc == "image.get":
            img = self._image_input(inp)
            return self.image_get_data(request, img)
        if proc == "image.getGenerationData":
            img = self._image_input(inp)
            return self.generation_data(img)
        raise TrpcError("NOT_FOUND", f'No "query"-procedure on path "{proc}"')

    @staticmethod
    def _issue(path: str, expected: str, received: Any) -> dict[str, Any]:
        rtype = "undefined" if received is None else type(received).__name__
        rtype = {"str": "string", "int": "number", "float": "number", "bool": "boolean", "dict": "object",
                 "list": "array"}.get(rtype, rtype)
        return {"code": "invalid_type", "expected": expected, "received": rtype, "path": [path],
                "message": "Required" if received is None else f"Expected {expected}, received {rtype}"}

    def _image_input(self, inp: Any) -> ImageItem:
        if not isinstance(inp, dict):
            raise TrpcError("BAD_REQUEST", zod_issue_message([self._issue("id", "number", None)]))
        iid = inp.get("id")
        if not isinstance(iid, int) or isinstance(iid, bool):
            raise TrpcError("BAD_REQUEST", zod_issue_message([self._issue("id", "number", iid)]))
        img = self.dataset.image(iid)
        if img is None:
            raise TrpcError("NOT_FOUND", f"No image with id {iid}")
        return img

    def _proc_votable_tags(self, inp: Any) -> list[dict[str, Any]]:
        """§7.3: tag.getVotableTags {id, type}."""
        issues = []
        if not isinstance(inp, dict):
            issues = [self._issue("id", "number", None)]
            inp = {}
        iid = inp.get("id")
        if not isinstance(iid, int) or isinstance(iid, bool):
            issues.append(self._issue("id", "number", iid))
        ttype = inp.get("type")
        if ttype not in ("image", "model"):
            issues.append({"received": ttype, "code": "invalid_enum_value", "options": ["image", "model"],
                           "path": ["type"], "message": f"Invalid enum value. Expected 'image' | 'model', received '{ttype}'"})
        # src/server/schema/tag.schema.ts getVotableTagsSchema: `take: z.number().optional()`;
        # tag.service.ts getVotableTags defaults it to 100.
        take = inp.get("take", DEFAULT_TAKE)
        if not isinstance(take, int) or isinstance(take, bool):
            issues.append(self._issue("take", "number", take))
        if issues:
            raise TrpcError("BAD_REQUEST", zod_issue_message(issues))
        if ttype == "model":
            m = self.dataset.models.get(iid)  # type: ignore[arg-type]
            if m is None:
                return []
            ids = {t.name.lower(): t.id for t in self.dataset.model_tags}
            return [{"score": 10 - k, "upVotes": 0, "downVotes": 0, "id": ids.get(name.lower(), 0),
                     "type": "UserGenerated", "nsfwLevel": 0, "name": name} for k, name in enumerate(m.tags)]
        out: list[dict[str, Any]] = []
        for v in self.dataset.votable_tags(iid, take):  # type: ignore[arg-type]
            d = v.api_dict()
            if d["lastUpvote"] is not None:
                d["lastUpvote"] = JsDate(d["lastUpvote"])
            out.append(d)
        return out

    def image_get_data(self, request: web.Request, img: ImageItem) -> dict[str, Any]:
        """The ``image.get`` json (§7.2); ``url`` is the bare uuid."""
        user = self.dataset.user(img.username)
        s = img.stats
        return {
            "id": img.id,
            "name": img.name,
            "url": img.uuid,
            "height": img.height,
            "width": img.width,
            "hash": img.hash,
            "createdAt": JsDate(img.created_at),
            "mimeType": img.content_type,
            "nsfwLevel": img.nsfw_level,
            "postId": img.post_id,
            "type": img.type,
            "metadata": {"hash": img.hash, "width": img.width, "height": img.height},
            "hasMeta": img.meta is not None,
            "onSite": False,
            "meta": dict(img.meta) if img.meta is not None else None,
            "user": {"id": img.user_id, "username": img.username, "image": None,
                     "deletedAt": None if user is None or not user.deleted else user.created_at},
            "stats": {
                "likeCountAllTime": s["likeCount"],
                "heartCountAllTime": s["heartCount"],
                "laughCountAllTime": s["laughCount"],
                "cryCountAllTime": s["cryCount"],
                "dislikeCountAllTime": 0,
                "commentCountAllTime": s["commentCount"],
                "collectedCountAllTime": img.collected_count,
                "tippedAmountCountAllTime": 0,
            },
        }

    def generation_data(self, img: ImageItem) -> dict[str, Any]:
        """``image.getGenerationData`` (§7.2)."""
        resources = []
        for vid in img.model_version_ids:
            v = self.dataset.versions.get(vid)
            if v is None:
                continue
            m = self.dataset.models[v.model_id]
            resources.append({"imageId": img.id, "modelId": m.id, "modelName": m.name, "modelType": m.type,
                              "modelVersionId": v.id, "versionName": v.name, "baseModel": v.base_model,
                              "strength": None if m.type == "Checkpoint" else 0.8})
        return {"type": img.type, "onSite": False, "process": None,
                "meta": dict(img.meta) if img.meta is not None else None,
                "resources": resources, "tools": [], "techniques": [], "external": None,
                "canRemix": False, "remixOfId": None}

    # -- page ------------------------------------------------------------------------------------

    def _page(self, request: web.Request, raw_id: str) -> web.Response:
        """The image page (see page.py for the real files it copies): 404 only for a non-numeric
        id; a missing image is a 200 page whose client then shows NotFound."""
        if not raw_id.isdigit():
            return web.Response(text=NOT_FOUND_PAGE, status=404, content_type="text/html")
        img = self.dataset.image(int(raw_id))
        headers = {"Cache-Control": "private, no-cache"}
        if img is None:
            html = render_missing_page(int(raw_id), now_ms=DATASET_NOW_MS)
            return web.Response(text=html, content_type="text/html", headers=headers)
        data = superjson(self.image_get_data(request, img))["json"]
        prefix = self._media_prefix(request)
        if img.is_video:
            media_url = f"{prefix}/{ACCOUNT}/{img.uuid}/transcode=true,width=450/{img.id}.mp4"
        else:
            media_url = f"{prefix}/{ACCOUNT}/{img.uuid}/width={min(img.width, 1800)}/{img.id}.jpeg"
        meta = {"values": {"queries.0.state.data.createdAt": ["Date"]}}
        html = render_page(data, self.generation_data(img), media_url, meta,
                           logged_in=self.viewer(request).authed,
                           can_view_nsfw=self.toggles["site_color"] != "green",
                           now_ms=DATASET_NOW_MS, vote_duration_ms=VOTE_DURATION_MS)
        return web.Response(text=html, content_type="text/html", headers=headers)

    # -- CDN ---------------------------------------------------------------------------------------

    async def _cdn(self, request: web.Request, parts: list[str]) -> web.Response:
        """§6: /<ACCOUNT>/<uuid>/<params>[/<name>] (query string ignored)."""
        img = self.dataset.image_by_uuid(parts[0]) if parts else None
        if img is None:
            return web.Response(text="Not Found", status=404, content_type="text/plain")
        tokens = parts[1].split(",") if len(parts) >= 2 else ["original=true"]
        opts: dict[str, str] = {}
        for tok in tokens:
            k, _, v = tok.partition("=")
            opts[k.strip()] = v.strip()
        original = opts.get("original") == "true"
        still = img.is_video and opts.get("anim") == "false"

        def num(key: str) -> int | None:
            v = opts.get(key, "")
            return int(v) if v.isdigit() and int(v) > 0 else None

        loop = asyncio.get_running_loop()
        if still or (not img.is_video and not original):
            width, height = num("width"), num("height")
            body = await loop.run_in_executor(None, media_mod.variant_bytes, img, width, height, still)
            ctype = "image/jpeg"
        else:
            body = media_mod.cached_original(img)
            if body is None and img.width * img.height <= 320 * 320:
                body = media_mod.original_bytes(img)  # < 1 ms: cheaper than a thread hop
            elif body is None:
                body = await loop.run_in_executor(None, media_mod.original_bytes, img)
            ctype = img.content_type
        headers = {
            "Cache-Control": "public, max-age=31536000, immutable",
            "Accept-Ranges": "bytes",
            "Access-Control-Allow-Origin": "*",
        }
        rng = request.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if m and (m.group(1) or m.group(2)):
                total = len(body)
                if m.group(1):
                    start = int(m.group(1))
                    end = int(m.group(2)) if m.group(2) else total - 1
                else:
                    start, end = max(0, total - int(m.group(2))), total - 1
                end = min(end, total - 1)
                if start >= total or start > end:
                    headers["Content-Range"] = f"bytes */{total}"
                    return web.Response(status=416, headers=headers)
                headers["Content-Range"] = f"bytes {start}-{end}/{total}"
                return web.Response(body=body[start : end + 1], status=206, content_type=ctype, headers=headers)
        return web.Response(body=body, content_type=ctype, headers=headers)

    # -- control endpoints ---------------------------------------------------------------------

    async def _control(self, request: web.Request) -> web.Response:
        name = request.path[len("/__fake__/"):].strip("/")
        try:
            payload: Any = None
            if request.method == "POST" and request.can_read_body:
                payload = await request.json()
            if name == "log" and request.method == "GET":
                prefix = request.query.get("path", "")
                return _json_response([r.to_dict() for r in self.requests(prefix)])
            if name in ("clear-log", "log/clear") and request.method == "POST":
                self.clear_log()
                return _json_response({"ok": True})
            if name == "faults":
                if request.method == "POST":
                    rules = [FaultRule.from_dict(d) for d in (payload or [])]
                    with self._faults_lock:
                        self._faults = rules
                return _json_response([r.to_dict() for r in self._faults])
            if name == "config":
                if request.method == "POST":
                    payload = dict(payload or {})
                    if "latency" in payload:
                        self.set_latency(payload.pop("latency"))
                    if "item_cap" in payload:
                        self.set_item_cap(payload.pop("item_cap"))
                    self.configure(**payload)
                return _json_response({**self.toggles, "latency": self.latency, "item_cap": self.item_cap})
            if name == "publish" and request.method == "POST":
                payload = dict(payload or {})
                ids = self.publish_images(payload.pop("username"), int(payload.pop("count", 1)), **payload)
                return _json_response({"ids": ids})
            if name == "delete" and request.method == "POST":
                self.delete_images((payload or {}).get("ids", []))
                return _json_response({"ok": True})
            if name == "reset" and request.method == "POST":
                self.reset()
                return _json_response({"ok": True})
            if name == "dataset" and request.method == "GET":
                return _json_response({"users": self.dataset.summary(), "named": self.dataset.named,
                                       "account": ACCOUNT})
        except (ValueError, TypeError, KeyError) as exc:
            return _json_response({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return _json_response({"error": f"unknown control endpoint {request.method} {name}"}, 404)
