"""Which images a query lost on the service: marked gone only with evidence.

A listing can miss images that still exist: anonymous callers are capped at the public level
(CivitAI's developer reference for the images endpoint, cited in docs/CIVITAI.md: "anonymous
callers are capped at the public browsing level"), an invalid or expired key is silently anonymous on public endpoints, and
private posts are listed to their owner only (src/server/services/image.service.ts
getImagesFromFeedSearch). So images are marked gone only after an authenticated listing (the key
checked with `/api/v1/me`), and when the listing lost many of the images the last one had, each
is checked by id (`/api/v1/images?imageId=`) before anything is marked.
"""

from __future__ import annotations

from dataclasses import dataclass

from civitgrab_desktop.core.civitai import rest
from civitgrab_desktop.core.civitai.client import CivitaiClient

LARGE_DROP_MIN = 5  # this many missing images or more ...
LARGE_DROP_SHARE = 0.10  # ... and more than this share of the images known: check each by id
MAX_CHECKS = 500  # more missing than this: something is off with the listing; mark none


@dataclass(frozen=True)
class GoneVerdict:
    """The images to mark gone, and why (or why none), for the job summary."""

    ids: list[int]
    reason: str


def _images(n: int) -> str:
    return f"{n} image" + ("" if n == 1 else "s")


async def decide_gone(client: CivitaiClient, missing: list[int], *, known: int, listed: int) -> GoneVerdict:
    """`missing`: images this query had that its complete listing did not show; `known`: how
    many the query had before (the last listing); `listed`: how many this listing showed."""
    if not missing:
        return GoneVerdict([], "")
    lost = _images(len(missing))
    if not client.has_key:
        return GoneVerdict([], f"{lost} not listed, none marked gone: without an API key the service lists "
                               "public (SFW) images only")
    if not await rest.key_is_accepted(client):
        return GoneVerdict([], f"{lost} not listed, none marked gone: the service did not accept the API key "
                               "(expired?), so the listing was anonymous")
    large = len(missing) >= LARGE_DROP_MIN and len(missing) > known * LARGE_DROP_SHARE
    if not large:
        return GoneVerdict(list(missing), f"{lost} no longer listed ({listed} listed, {known} before); "
                                          "kept and marked as gone")
    if len(missing) > MAX_CHECKS:
        return GoneVerdict([], f"{lost} of {known} not listed, none marked gone: too large a drop to check "
                               "one by one")
    gone = [image_id for image_id in missing if not await rest.image_is_listed(client, image_id)]
    still = len(missing) - len(gone)
    reason = (f"{lost} of {known} not listed ({listed} listed): a large drop, so each was checked by id: "
              f"{len(gone)} gone (kept and marked), {still} still on the service")
    return GoneVerdict(gone, reason)
