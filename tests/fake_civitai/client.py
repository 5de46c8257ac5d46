"""A tiny synchronous HTTP client for tests of (and against) the fake server.

``get(url, headers=None)`` returns a ``Fetched`` (status, headers with original case, body bytes)
without raising on 4xx/5xx and without following redirects. Transport errors (reset, truncated
body) raise the usual ``http.client`` / ``OSError`` exceptions.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers.items():
            if k.lower() == low:
                return v
        return None


def request(method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None,
            timeout: float = 10.0) -> Fetched:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Fetched(resp.status, dict(resp.getheaders()), data)
    finally:
        conn.close()


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Fetched:
    return request("GET", url, headers, timeout=timeout)


def post_json(url: str, payload: Any, timeout: float = 10.0) -> Fetched:
    return request("POST", url, {"Content-Type": "application/json"}, json.dumps(payload).encode(), timeout)
