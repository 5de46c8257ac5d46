"""Reading a tRPC answer the site's own page received (the browser tag method).

The page asks `tag.getVotableTags` itself (src/components/VotableTags/VotableTags.tsx); its answer
carries every tag's id and own name, score, votes, type and `concrete`, which the rendered badges
only partly show. The site's client sends a single GET `/api/trpc/<proc>?input={"json":…}`, or a
batch `/api/trpc/a,b?batch=1&input={"0":{"json":…},…}` answered by a JSON array (src/utils/trpc.ts).
The answer's `result.data` is superjson (`{"json": …}`) or, where the server writes devalue, a
devalue string (src/shared/utils/trpc-union-transformer.ts).
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from civitgrab_desktop.core.civitai.records import RecordError, parse_tag_vote
from civitgrab_desktop.core.model import TagVote

PROCEDURE = "tag.getVotableTags"


class AnswerError(ValueError):
    """The answer is not one we can read."""


def _procedures(url: str) -> list[str]:
    path = urlsplit(url).path
    tail = path.rsplit("/api/trpc/", 1)[-1] if "/api/trpc/" in path else ""
    return [unquote(p) for p in tail.split(",") if p]


def _inputs(url: str, post_data: str | None) -> Any:
    raw = (parse_qs(urlsplit(url).query).get("input") or [post_data or ""])[0]
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def call_index(url: str, image_id: int, post_data: str | None = None) -> int | None:
    """Where in this request (single or batch) the tags of `image_id` are asked; None if not."""
    procs = _procedures(url)
    if PROCEDURE not in procs:
        return None
    batch = (parse_qs(urlsplit(url).query).get("batch") or [""])[0] in ("1", "true")
    inputs = _inputs(url, post_data)
    for index, proc in enumerate(procs):
        if proc != PROCEDURE:
            continue
        envelope = inputs.get(str(index)) if batch and isinstance(inputs, dict) else inputs
        payload = envelope.get("json") if isinstance(envelope, dict) else None
        if isinstance(payload, dict) and payload.get("id") == image_id and payload.get("type", "image") == "image":
            return index if batch else 0
    return None


def devalue_parse(text: str) -> Any:
    """devalue's `stringify` format: a flat array, entry 0 the root; other entries are referred to
    by index; negative indices are undefined (-1), holes (-2), NaN (-3), ±Infinity (-4/-5), -0
    (-6); `["Date", iso]` and friends are typed values."""
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise AnswerError(f"devalue text is not JSON: {exc}") from exc
    if not isinstance(values, list) or not values:
        raise AnswerError("devalue text is not a non-empty array")
    specials = {-1: None, -2: None, -3: math.nan, -4: math.inf, -5: -math.inf, -6: -0.0}
    cache: dict[int, Any] = {}

    def hydrate(index: int, depth: int = 0) -> Any:
        if index in specials:
            return specials[index]
        if not isinstance(index, int) or not 0 <= index < len(values) or depth > 200:
            raise AnswerError("devalue index out of range")
        if index in cache:
            return cache[index]
        value = values[index]
        if isinstance(value, list):
            if value and isinstance(value[0], str):
                kind = value[0]
                out: Any = value[1] if kind in ("Date", "BigInt", "RegExp") and len(value) > 1 else None
                if kind == "null":  # an object without prototype: ["null", key, index, …]
                    out = {value[k]: hydrate(value[k + 1], depth + 1) for k in range(1, len(value) - 1, 2)}
            else:
                out = [hydrate(i, depth + 1) for i in value]
        elif isinstance(value, dict):
            out = {k: hydrate(i, depth + 1) for k, i in value.items()}
        else:
            out = value
        cache[index] = out
        return out

    return hydrate(0)


def answer_data(body: Any, index: int = 0) -> Any:
    """The procedure's data from a parsed answer body (single or batch)."""
    if isinstance(body, list):
        if not 0 <= index < len(body):
            raise AnswerError("the batch answer has no entry for the tags")
        body = body[index]
    result = body.get("result") if isinstance(body, dict) else None
    data = result.get("data") if isinstance(result, dict) else None
    if isinstance(data, dict) and "json" in data:
        return data["json"]
    if isinstance(data, str):
        return devalue_parse(data)
    raise AnswerError("the answer has no result.data")


def error_status(body: Any, index: int = 0) -> int | None:
    """The httpStatus of a tRPC error entry, when the answer (or its batch entry) is one."""
    if isinstance(body, list):
        body = body[index] if 0 <= index < len(body) else None
    error = body.get("error") if isinstance(body, dict) else None
    error = error.get("json", error) if isinstance(error, dict) else None
    data = error.get("data") if isinstance(error, dict) else None
    status = data.get("httpStatus") if isinstance(data, dict) else None
    return status if isinstance(status, int) else None


def votable_tags(data: Any) -> list[TagVote]:
    if not isinstance(data, list):
        raise AnswerError("the tag list is not an array")
    tags: list[TagVote] = []
    for item in data:
        try:
            tags.append(parse_tag_vote(item))
        except RecordError:
            continue
    return tags
