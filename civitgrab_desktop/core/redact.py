"""Secret query parameters (`token=`, `api_key=`) removed from every URL in data we write.

A record from the service can carry the key in a URL (a media link the API signed, a pasted link);
nothing civitgrab writes beside or into a file keeps it. It lives outside core's subpackages
because both the sidecars (core/organize/sidecars.py) and the metadata embedded in a WebP
(core/media/embed.py) scrub their data with it. It imports nothing of ours.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

SECRET_QUERY_PARAMS = frozenset({"token", "api_key", "apikey"})

_URL_RE = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


def _strip_secret_params(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if unquote(p.split("=", 1)[0]).lower() not in SECRET_QUERY_PARAMS]
    if len(kept) == len(parts.query.split("&")):
        return url
    return urlunsplit(parts._replace(query="&".join(kept)))


def scrub_secrets(value: Any) -> Any:
    """A copy of `value` (JSON-like data) with secret query parameters removed from every URL."""
    if isinstance(value, str):
        return _URL_RE.sub(lambda m: _strip_secret_params(m.group(0)), value) if "://" in value else value
    if isinstance(value, dict):
        return {k: scrub_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_secrets(v) for v in value]
    return value
