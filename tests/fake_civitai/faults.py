"""Fault injection rules for the fake CivitAI.

A ``FaultRule`` matches requests by path kind (``where``) and/or path prefix, and fires by
probability (``rate``, seeded RNG: deterministic for a given request order), for the first N
matching requests (``count``), or on every Nth matching request (``every``). With none of the
three it fires on every match. ``count`` combined with ``rate`` or ``every`` caps the number of
firings. Rules are tried in the order they were added; the first that fires wins.

Kinds (what the client sees):

===============  ===========================================================================
``429``          429 JSON with ``Retry-After: <retry_after>`` (seconds)
``429-date``     429 with ``Retry-After`` as an HTTP date (now + retry_after)
``429-none``     429 without ``Retry-After``
``500``          500 ``{"error":"Internal Server Error","code":"INTERNAL_SERVER_ERROR"}``
``502``          502 HTML (Cloudflare "Bad gateway")
``503``          503 ``{"error":"Server busy, please retry shortly."}``, ``Retry-After: 2``,
                 ``Cache-Control: no-store`` (§3.6)
``504``          504 HTML (Cloudflare "Gateway time-out")
``reset``        the real response's headers and part of its body, then a TCP reset
``truncate``     the real response with its full Content-Length but only part of the body, then
                 the connection is closed
``html200``      200 ``text/html`` page ("Just a moment...") instead of media/JSON
``slow``         sleeps ``delay`` seconds, then the real response
``corrupt``      the real body with garbage in the middle (same length, same headers)
``json-garbage`` 200 JSON that breaks the schema (``{"items":{"oops":true},"metadata":[]}``,
                 or ``{"result":"oops"}`` on tRPC)
===============  ===========================================================================

``where``: ``any`` (every path except ``/__fake__/``), ``api`` (``/api/v1/...`` and other REST),
``trpc`` (``/api/trpc/...``), ``cdn`` (``/<ACCOUNT>/...``), ``page`` (``/images/<id>``).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = (
    "429",
    "429-date",
    "429-none",
    "500",
    "502",
    "503",
    "504",
    "reset",
    "truncate",
    "html200",
    "slow",
    "corrupt",
    "json-garbage",
)
WHERE = ("any", "api", "cdn", "trpc", "page")


@dataclass
class FaultRule:
    kind: str
    where: str = "any"
    path_prefix: str = ""
    rate: float | None = None
    count: int | None = None
    every: int | None = None
    retry_after: float = 1
    delay: float = 1.0
    seed: int = 1234
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.where not in WHERE:
            raise ValueError(f"unknown fault where {self.where!r}; one of {', '.join(WHERE)}")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        allowed = {"kind", "where", "path_prefix", "rate", "count", "every", "retry_after", "delay", "seed"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "where": self.where,
            "path_prefix": self.path_prefix,
            "rate": self.rate,
            "count": self.count,
            "every": self.every,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "seed": self.seed,
            "matched": self.matched,
            "fired": self.fired,
        }

    def matches(self, kind: str, path: str) -> bool:
        if self.where != "any" and self.where != kind:
            return False
        return path.startswith(self.path_prefix)

    def trigger(self) -> bool:
        """Count one matching request and decide whether the fault fires for it."""
        with self._lock:
            self.matched += 1
            if self.rate is None and self.every is None:
                fire = self.count is None or self.matched <= self.count
            else:
                if self.count is not None and self.fired >= self.count:
                    return False
                fire = True
                if self.every is not None:
                    fire = self.matched % self.every == 0
                if self.rate is not None:
                    fire = fire and self._rng.random() < self.rate
            if fire:
                self.fired += 1
            return fire


def path_kind(path: str, account: str) -> str:
    if path.startswith("/api/trpc/"):
        return "trpc"
    if path.startswith("/api/"):
        return "api"
    if path.startswith(f"/{account}/"):
        return "cdn"
    if path.startswith("/images/") or path.startswith("/videos/"):
        return "page"
    return "other"


def corrupt(body: bytes) -> bytes:
    """Same length, garbage in the middle third."""
    n = len(body)
    if n < 3:
        return b"\x00" * n
    start, end = n // 3, max(n // 3 + 1, 2 * n // 3)
    pattern = b"\x00\xffCORRUPT\xff\xd9\x00"
    garbage = (pattern * (((end - start) // len(pattern)) + 1))[: end - start]
    return body[:start] + garbage + body[end:]
