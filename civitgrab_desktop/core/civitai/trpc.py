"""The site's tRPC API: community tags of an image (`tag.getVotableTags`, reference §7).

The endpoint answers only requests that look like the site (Origin/Referer of the site) or carry
a Bearer key. Its encoding is moving from superjson (`result.data.json`) to devalue (a string in
`result.data`); an unknown shape raises UnsupportedShape so callers can fall back to the browser.
"""

from __future__ import annotations

import time
from typing import Any

from civitgrab_desktop.core.civitai import urls
from civitgrab_desktop.core.civitai.client import CivitaiClient, CivitaiError, ClientRequestError
from civitgrab_desktop.core.civitai.records import RecordError, parse_tag_vote
from civitgrab_desktop.core.model import TagVote

CLIENT_VERSION = "5.0.2257"
TAGS_MAX_BYTES = 8 * 1024 * 1024  # an image's votable tags: a few hundred small objects at most
# src/server/schema/tag.schema.ts: `take` is optional and unbounded; tag.service.ts getVotableTags
# defaults it to 100, which would cut an image's tags after the hundredth.
TAG_TAKE = 1000


class UnsupportedShape(CivitaiError):
    """The answer is not the superjson shape we understand."""


class TrpcRefused(CivitaiError):
    """401/403: the endpoint refused us (origin gate, or the key)."""


def site_headers(api_base: str) -> dict[str, str]:
    origin = urls.site_origin(api_base)
    return {
        "Referer": origin + "/",
        "Origin": origin,
        "Content-Type": "application/json",
        "x-client": "web",
        "x-client-version": CLIENT_VERSION,
        "x-client-date": str(int(time.time() * 1000)),
    }


def unwrap_result(data: Any) -> Any:
    """`{"result":{"data":{"json": X}}}` -> X."""
    if isinstance(data, list) and data:  # batched form
        data = data[0]
    if not isinstance(data, dict):
        raise UnsupportedShape("tRPC answer is not an object")
    result = data.get("result")
    payload = result.get("data") if isinstance(result, dict) else None
    if isinstance(payload, dict) and "json" in payload:
        return payload["json"]
    if isinstance(payload, str):
        raise UnsupportedShape("tRPC answered in an encoding we do not read (devalue)")
    raise UnsupportedShape("tRPC answer has no result.data.json")


def parse_votable_tags(data: Any) -> list[TagVote]:
    items = unwrap_result(data)
    if not isinstance(items, list):
        raise UnsupportedShape("tag list is not an array")
    tags: list[TagVote] = []
    for item in items:
        try:
            tags.append(parse_tag_vote(item))
        except (RecordError, ValueError, TypeError, KeyError, AttributeError):
            continue
    return tags


async def get_votable_tags(client: CivitaiClient, image_id: int) -> list[TagVote]:
    url = urls.trpc_url(client.api_base, "tag.getVotableTags", {"id": int(image_id), "type": "image", "take": TAG_TAKE})
    try:
        data = await client.get_json(url, kind="file", headers=site_headers(client.api_base),
                                     max_bytes=TAGS_MAX_BYTES, what=f"the tags of image {image_id}")
    except ClientRequestError as exc:
        if exc.status in (401, 403):
            raise TrpcRefused(exc.reason, url=exc.url, status=exc.status) from exc
        raise
    return parse_votable_tags(data)
