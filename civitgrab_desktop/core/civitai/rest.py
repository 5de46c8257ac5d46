"""The public REST API (`/api/v1`): image listings, models, versions, tag names.

Listings follow `metadata.nextPage` only while it stays on an allowed host inside `/api/`, and
never revisit a URL (the service has looped before). A page's bad items are reported, not fatal.
A cursor that never ends is stopped with a reason: a cursor value sent twice, pages that bring
nothing new (or nothing at all) several times in a row, or more pages than any real listing has.
Every answer has a size cap for its endpoint (client.get_json).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from civitgrab_desktop.core.civitai import urls
from civitgrab_desktop.core.civitai.client import (
    CivitaiClient,
    CivitaiError,
    ClientRequestError,
    NotFoundError,
    ServerError,
    redact_url,
)
from civitgrab_desktop.core.civitai.records import (
    NSFW_CHOICES,
    ModelRecord,
    RecordError,
    VersionRecord,
    parse_image,
    parse_model,
    parse_version,
)
from civitgrab_desktop.core.model import ImageRecord

LOG = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
MAX_MODEL_PAGES = 500
# The service caps a stream near 50,000 items (250 pages of 200); a listing this long is a loop.
MAX_LISTING_PAGES = 2_000
STALE_PAGES = 3  # pages in a row that list nothing new (or nothing at all) end a listing
# Size caps per endpoint (bytes). A real image page of 200 items with full meta (ComfyUI workflows
# included) stays under a few MB; a model lists its versions with files and sample images.
LISTING_PAGE_MAX_BYTES = 48 * 1024 * 1024
MODEL_MAX_BYTES = 32 * 1024 * 1024
VERSION_MAX_BYTES = 16 * 1024 * 1024
TAG_NAMES_PAGE_MAX_BYTES = 8 * 1024 * 1024


class IdentifierNotFound(CivitaiError):
    """The user, model or version does not exist (404, or the old 500 "… not found")."""


@dataclass
class ImagePage:
    records: list[ImageRecord]
    raw_count: int
    problems: list[str] = field(default_factory=list)
    next_url: str | None = None
    stopped_reason: str | None = None  # why pagination ended early (bad nextPage, loop)


def valid_username(name: str) -> bool:
    return bool(USERNAME_RE.match(name))


def listing_params(
    *, nsfw: str = "x", sort: str | None = "Newest", with_meta: bool = True, **filters: Any
) -> dict[str, Any]:
    """The query we send for an image listing. `nsfw` is one of records.NSFW_CHOICES."""
    params: dict[str, Any] = {k: v for k, v in filters.items() if v is not None}
    if nsfw is not None:
        params["nsfw"] = NSFW_CHOICES[nsfw][0]
    if sort:
        params["sort"] = sort
    if with_meta:
        params["withMeta"] = "true"
    return params


def listing_shape_problem(data: Any) -> str | None:
    """A listing page is an object with an `items` list. Anything else (`{"items": {...}}`, a bare
    list, `{"result": ...}`) is a bad answer to retry, never an empty page: an empty page ends
    the listing, and a query whose listing ended early would mark its images as gone."""
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        return "the service sent a listing page without a list of items"
    return None


def _is_not_found_500(exc: CivitaiError) -> bool:
    return isinstance(exc, ServerError) and exc.status == 500 and "not found" in exc.reason.lower()


async def iter_image_pages(
    client: CivitaiClient, *, start_url: str | None = None, **params: Any
) -> AsyncIterator[ImagePage]:
    """Pages of `/api/v1/images` for `params`, or continuing from `start_url` (a saved nextPage)."""
    url = start_url or urls.images_url(client.api_base, **params)
    visited: set[str] = set()
    runaway = RunawayCursor()
    first = True
    while url:
        visited.add(url)
        try:
            data = await client.get_json(url, kind="listing", validate=listing_shape_problem,
                                         max_bytes=LISTING_PAGE_MAX_BYTES, what="a listing page")
        except NotFoundError as exc:
            if first:
                raise IdentifierNotFound(exc.reason or "not found", url=exc.url, status=404) from exc
            raise
        except ServerError as exc:
            # The service used to answer 500 {"error": "User not found"} (reference §3.6).
            if first and _is_not_found_500(exc):
                raise IdentifierNotFound(exc.reason, url=exc.url, status=500) from exc
            raise
        first = False
        page = parse_image_page(data)
        next_url = page.next_url
        if next_url:
            if not client.policy.is_allowed_listing(next_url):
                page.stopped_reason = f"ignored a next page on a host that is not CivitAI: {redact_url(next_url)}"
                LOG.warning(page.stopped_reason)
                next_url = None
            elif next_url in visited:
                page.stopped_reason = "the service sent a next page we already fetched; stopping"
                LOG.warning(page.stopped_reason)
                next_url = None
            else:
                page.stopped_reason = runaway.check(page, next_url)
                if page.stopped_reason:
                    LOG.warning(page.stopped_reason)
                    next_url = None
        page.next_url = next_url
        yield page
        url = next_url


class RunawayCursor:
    """Notices a listing that would never end although every URL is new: the same cursor value
    again, pages that bring no new item (or no item at all) STALE_PAGES times in a row, or more
    pages than MAX_LISTING_PAGES. `check` returns the reason to stop, or None."""

    def __init__(self) -> None:
        self.pages = 0
        self.stale = 0
        self.cursors: set[str] = set()
        self.ids: set[int] = set()

    def check(self, page: ImagePage, next_url: str) -> str | None:
        self.pages += 1
        new_ids = {r.id for r in page.records} - self.ids
        self.ids |= new_ids
        self.stale = 0 if new_ids else self.stale + 1
        cursor = (parse_qs(urlsplit(next_url).query).get("cursor") or [None])[0]
        if cursor is not None and cursor in self.cursors:
            return f"the service sent the cursor {cursor[:40]!r} a second time; stopped (the listing would loop)"
        if cursor is not None:
            self.cursors.add(cursor)
        if self.stale >= STALE_PAGES:
            what = "no items" if not page.raw_count else "only items it had listed already"
            return (f"the service sent {STALE_PAGES} pages in a row with {what} but always another next page; "
                    "stopped (the cursor would run forever)")
        if self.pages >= MAX_LISTING_PAGES:
            return f"stopped after {MAX_LISTING_PAGES} pages: no real listing is this long (a runaway cursor?)"
        return None


def parse_image_page(data: Any) -> ImagePage:
    if not isinstance(data, dict):
        return ImagePage([], 0, ["the listing is not a JSON object"])
    items = data.get("items")
    if not isinstance(items, list):
        return ImagePage([], 0, ["the listing has no items list"])
    records, problems = [], []
    for item in items:
        try:
            records.append(parse_image(item))
        except RecordError as exc:
            problems.append(str(exc))
        except Exception as exc:  # a shape the parser did not foresee: this item only
            problems.append(f"unreadable item ({type(exc).__name__})")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    next_page = metadata.get("nextPage")
    return ImagePage(records, len(items), problems, next_page if isinstance(next_page, str) and next_page else None)


async def _get_entity(client: CivitaiClient, url: str, what: str, parse, max_bytes: int):
    """GET one model or version; 404 (or the old 500 "… not found") is IdentifierNotFound."""
    try:
        data = await client.get_json(url, kind="listing", max_bytes=max_bytes, what=what)
    except NotFoundError as exc:
        raise IdentifierNotFound(f"{what} not found", url=exc.url, status=404) from exc
    except ServerError as exc:
        if _is_not_found_500(exc):
            raise IdentifierNotFound(f"{what} not found", url=exc.url, status=500) from exc
        raise
    try:
        return parse(data)
    except RecordError as exc:
        raise ClientRequestError(f"{what}: unexpected answer ({exc})") from exc
    except Exception as exc:  # any other parse failure is reported the same way
        raise ClientRequestError(f"{what}: unreadable answer ({type(exc).__name__})") from exc


async def get_model(client: CivitaiClient, model_id: int) -> ModelRecord:
    return await _get_entity(client, urls.model_url(client.api_base, model_id), f"model {model_id}", parse_model,
                             MODEL_MAX_BYTES)


async def get_version(client: CivitaiClient, version_id: int) -> VersionRecord:
    url = urls.version_url(client.api_base, version_id)
    return await _get_entity(client, url, f"model version {version_id}", parse_version, VERSION_MAX_BYTES)


@dataclass
class TagSearch:
    models: list[ModelRecord]
    tag_found: bool
    pages: int
    truncated: bool = False


async def search_models_by_tag(client: CivitaiClient, tag: str) -> TagSearch:
    """Models carrying `tag`. The service returns ALL models for an unknown tag (reference §4.2),
    so the first page must contain a model whose tags include it, or the tag is reported unknown."""
    url: str | None = urls.models_by_tag_url(client.api_base, tag)
    wanted = tag.strip().lower()
    models: list[ModelRecord] = []
    seen: set[str] = set()
    pages = 0
    while url and pages < MAX_MODEL_PAGES:
        seen.add(url)
        data = await client.get_json(url, kind="listing", validate=listing_shape_problem,
                                     max_bytes=LISTING_PAGE_MAX_BYTES, what="a model search page")
        pages += 1
        items = data.get("items") if isinstance(data, dict) else None
        page_models = []
        for item in items if isinstance(items, list) else []:
            try:
                page_models.append(parse_model(item))
            except Exception as exc:  # RecordError, or a shape the parser did not foresee
                LOG.warning("skipping a model in tag search %r: %s", tag, exc)
        if pages == 1 and not any(wanted in (t.lower() for t in m.tags) for m in page_models):
            return TagSearch([], False, pages)
        models.extend(m for m in page_models if wanted in (t.lower() for t in m.tags))
        meta = data.get("metadata") if isinstance(data, dict) and isinstance(data.get("metadata"), dict) else {}
        nxt = meta.get("nextPage") if isinstance(meta.get("nextPage"), str) else None
        if nxt and (not client.policy.is_allowed_listing(nxt) or nxt in seen):
            LOG.warning("stopping tag search %r at an unusable next page", tag)
            nxt = None
        url = nxt
    # Keep what was found even when the page limit is hit (the classic tool threw it away).
    return TagSearch(models, True, pages, truncated=bool(url))


async def iter_tag_names(client: CivitaiClient, *, limit: int = 200, max_pages: int = 10_000) -> AsyncIterator[list[str]]:
    """Model tag names, page by page until an empty page (the service stopped sending nextPage)."""
    seen: set[str] = set()
    stale = 0
    for page in range(1, max_pages + 1):
        data = await client.get_json(urls.tags_url(client.api_base, page, limit), kind="listing",
                                     validate=listing_shape_problem, max_bytes=TAG_NAMES_PAGE_MAX_BYTES,
                                     what="a tag names page")
        items = data.get("items") if isinstance(data, dict) else None
        names = [i["name"] for i in items or [] if isinstance(i, dict) and isinstance(i.get("name"), str)]
        if not names:
            return
        stale = 0 if set(names) - seen else stale + 1
        if stale >= STALE_PAGES:
            LOG.warning("tag names: %d pages in a row repeated known names; stopped", STALE_PAGES)
            return
        seen.update(names)
        yield names


# -- evidence before marking images gone (issue 18) ----------------------------------------------


async def key_is_accepted(client: CivitaiClient) -> bool:
    """Whether the service takes our key: `/api/v1/me` answers 401 without a valid session
    (src/pages/api/v1/me.ts, AuthedEndpoint). An invalid key on a public endpoint is silently
    anonymous, so a listing alone cannot tell."""
    if not client.has_key:
        return False
    try:
        data = await client.get_json(urls.me_url(client.api_base), kind="listing")
    except ClientRequestError as exc:
        if exc.status in (401, 403):
            return False
        raise
    return isinstance(data, dict) and data.get("id") is not None


async def first_item_id(client: CivitaiClient, params: dict[str, Any]) -> int | None:
    """The id of the first item `params` lists (one item asked), or None when it lists nothing."""
    query = {k: v for k, v in params.items() if k not in ("withMeta", "cursor", "page")}
    query["limit"] = 1
    data = await client.get_json(urls.images_url(client.api_base, **query), kind="listing", validate=listing_shape_problem)
    items = data["items"]
    first = items[0] if items and isinstance(items[0], dict) else None
    return first.get("id") if first is not None and isinstance(first.get("id"), int) else None


async def image_is_listed(client: CivitaiClient, image_id: int) -> bool:
    """Whether the service still lists the image (`/api/v1/images?imageId=`, every level)."""
    found = await first_item_id(client, {"imageId": int(image_id), "nsfw": NSFW_CHOICES["x"][0]})
    return found == int(image_id)
