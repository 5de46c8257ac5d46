"""The public REST API (`/api/v1`): image listings, models, versions, tag names.

Listings follow `metadata.nextPage` only while it stays on an allowed host inside `/api/`, and
never revisit a URL (the service has looped before). A page's bad items are reported, not fatal.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

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
    ImageRecord,
    ModelRecord,
    RecordError,
    VersionRecord,
    parse_image,
    parse_model,
    parse_version,
)

LOG = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
MAX_MODEL_PAGES = 500


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
    first = True
    while url:
        visited.add(url)
        try:
            data = await client.get_json(url, kind="listing", validate=listing_shape_problem)
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
        page.next_url = next_url
        yield page
        url = next_url


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
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    next_page = metadata.get("nextPage")
    return ImagePage(records, len(items), problems, next_page if isinstance(next_page, str) and next_page else None)


async def _get_entity(client: CivitaiClient, url: str, what: str, parse):
    """GET one model or version; 404 (or the old 500 "… not found") is IdentifierNotFound."""
    try:
        data = await client.get_json(url, kind="listing")
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


async def get_model(client: CivitaiClient, model_id: int) -> ModelRecord:
    return await _get_entity(client, urls.model_url(client.api_base, model_id), f"model {model_id}", parse_model)


async def get_version(client: CivitaiClient, version_id: int) -> VersionRecord:
    url = urls.version_url(client.api_base, version_id)
    return await _get_entity(client, url, f"model version {version_id}", parse_version)


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
        data = await client.get_json(url, kind="listing", validate=listing_shape_problem)
        pages += 1
        items = data.get("items") if isinstance(data, dict) else None
        page_models = []
        for item in items if isinstance(items, list) else []:
            try:
                page_models.append(parse_model(item))
            except RecordError as exc:
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
    for page in range(1, max_pages + 1):
        data = await client.get_json(urls.tags_url(client.api_base, page, limit), kind="listing", validate=listing_shape_problem)
        items = data.get("items") if isinstance(data, dict) else None
        names = [i["name"] for i in items or [] if isinstance(i, dict) and isinstance(i.get("name"), str)]
        if not names:
            return
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
