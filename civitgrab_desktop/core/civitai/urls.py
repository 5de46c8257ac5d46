"""Every CivitAI URL we build or rewrite, and the CivitAI URLs users paste.

The CDN URL grammar is `<cdn>/<account>/<uuid>/<comma-separated params>/<name>`; `original=true`
returns the uploaded bytes, anything else a re-encoded JPEG (reference §6).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

from civitgrab_desktop.core.civitai.hosts import is_civitai_host
from civitgrab_desktop.core.model import DownloadMode

IMAGES_PATH = "/api/v1/images"
MODELS_PATH = "/api/v1/models"
VERSIONS_PATH = "/api/v1/model-versions"
TAGS_PATH = "/api/v1/tags"
ME_PATH = "/api/v1/me"
TRPC_PATH = "/api/trpc"
PAGE_LIMIT = 200
RESIZED_WIDTH_CAP = 1800

_PARAM_SEGMENT = re.compile(r"^[a-z_]+=[^/]*(,[a-z_]+=[^/]*)*$", re.IGNORECASE)


def api_url(base: str, path: str, params: dict | list | None = None) -> str:
    query = urlencode([(k, v) for k, v in (params.items() if isinstance(params, dict) else params or []) if v is not None])
    return f"{base.rstrip('/')}{path}" + (f"?{query}" if query else "")


def images_url(base: str, **params) -> str:
    """`/api/v1/images` with our fixed page size first, like the classic tool."""
    return api_url(base, IMAGES_PATH, {"limit": PAGE_LIMIT, **params})


def model_url(base: str, model_id: int) -> str:
    return api_url(base, f"{MODELS_PATH}/{int(model_id)}")


def version_url(base: str, version_id: int) -> str:
    return api_url(base, f"{VERSIONS_PATH}/{int(version_id)}")


def models_by_tag_url(base: str, tag: str) -> str:
    return api_url(base, MODELS_PATH, {"tag": tag, "nsfw": "true", "limit": 100})


def tags_url(base: str, page: int, limit: int = PAGE_LIMIT) -> str:
    return api_url(base, TAGS_PATH, {"limit": limit, "page": page})


def me_url(base: str) -> str:
    return api_url(base, ME_PATH)


def trpc_url(base: str, procedure: str, payload: dict) -> str:
    data = json.dumps({"json": payload}, separators=(",", ":"))
    return f"{base.rstrip('/')}{TRPC_PATH}/{procedure}?input={quote(data, safe='')}"


def image_page_url(base: str, image_id: int) -> str:
    return f"{base.rstrip('/')}/images/{int(image_id)}"


def site_origin(base: str) -> str:
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.netloc}"


def media_url(url: str, *, original: bool, is_video: bool, width: int | None = None) -> str:
    """The URL to fetch: the original bytes, or the CDN's resized JPEG for `--quality 1`.

    Videos are always fetched as uploaded. A URL without a params segment is returned unchanged:
    the CDN serves the original when no width, height or original param is given.
    """
    parts = urlsplit(url)
    segments = parts.path.split("/")
    index = _params_index(segments)
    if original or is_video:
        wanted = "original=true"
    else:
        w = min(width or 450, RESIZED_WIDTH_CAP)
        wanted = f"width={w}"
    if index is None:
        return url
    params = segments[index].split(",")
    if (original or is_video) and "original=true" in params:
        return url
    segments[index] = wanted
    return urlunsplit((parts.scheme, parts.netloc, "/".join(segments), "", ""))


def _params_index(segments: list[str]) -> int | None:
    # ['', account, uuid, params, name] or ['', account, uuid, params]
    for i in range(len(segments) - 1, 2, -1):
        if _PARAM_SEGMENT.match(segments[i]):
            return i
    return None


@dataclass(frozen=True)
class PastedTarget:
    """What a pasted CivitAI URL (or bare identifier) asks for."""

    mode: DownloadMode | None  # None: the link names nothing civitgrab downloads (a tag id)
    identifier: str
    kind: str  # username | model | tag | modelVersion | image | post | tagId


def parse_pasted(text: str) -> PastedTarget | None:
    """Understand civitai.com / civitai.red URLs: /user/<name>, /models/<id>[?modelVersionId=],
    /images/<id>, /posts/<id>, /tag/<name>, /images?tags=<id>, /search/models?tags=..."""
    text = text.strip()
    if not text:
        return None
    if "://" not in text and (text.startswith("civitai.") or text.startswith("www.civitai.")):
        text = "https://" + text
    parts = urlsplit(text)
    if not parts.scheme or not parts.hostname or not is_civitai_host(parts.hostname):
        return None
    path = [p for p in parts.path.split("/") if p]
    query = parse_qs(parts.query)
    if len(path) >= 2 and path[0] == "user":
        return PastedTarget(DownloadMode.USERNAME, path[1], "username")
    if len(path) >= 2 and path[0] == "models" and path[1].isdigit():
        version = query.get("modelVersionId", [""])[0]
        if version.isdigit():
            return PastedTarget(DownloadMode.MODEL_VERSION, version, "modelVersion")
        return PastedTarget(DownloadMode.MODEL, path[1], "model")
    if len(path) >= 2 and path[0] in ("images", "videos") and path[1].isdigit():
        return PastedTarget(DownloadMode.IMAGE, path[1], "image")
    if len(path) >= 2 and path[0] == "posts" and path[1].isdigit():
        return PastedTarget(DownloadMode.POST, path[1], "post")
    if len(path) >= 2 and path[0] == "tag":
        from urllib.parse import unquote

        return PastedTarget(DownloadMode.TAG, unquote(path[1]), "tag")
    if path[:1] in (["images"], ["videos"]) and query.get("tags"):
        return PastedTarget(None, query["tags"][0], "tagId")
    if path[:2] == ["search", "models"] and query.get("tags"):
        return PastedTarget(DownloadMode.TAG, query["tags"][0], "tag")
    if path[:1] == ["models"] and query.get("tag"):
        return PastedTarget(DownloadMode.TAG, query["tag"][0], "tag")
    return None
