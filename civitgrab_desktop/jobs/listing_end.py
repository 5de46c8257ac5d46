"""Did a listing that ended on a full page reach its end, or stop at the service's cap?

The service stops a stream after about 50,000 items with a full page and no next page; a query
with exactly a multiple of the page size also ends on a full page with no next page. The far
end tells them apart: the same query in the opposite order, one item. If that item was listed,
the listing reached the end.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from civitgrab_desktop.core.civitai import rest
from civitgrab_desktop.core.civitai.client import CivitaiClient

OPPOSITE_SORT = {"Newest": "Oldest", "Oldest": "Newest"}


async def reached_the_far_end(client: CivitaiClient, params: dict[str, Any], listed_ids: Collection[int]) -> bool | None:
    """True when the first item of the reversed query was listed, False when it was not, None
    when the query has no order we can reverse or lists nothing (then nothing is known)."""
    reverse = OPPOSITE_SORT.get(str(params.get("sort") or ""))
    if reverse is None:
        return None
    far = await rest.first_item_id(client, {**params, "sort": reverse})
    return None if far is None else far in listed_ids
