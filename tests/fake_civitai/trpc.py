"""tRPC wire format helpers (§7.1): superjson envelopes, a devalue encoder, error bodies."""

from __future__ import annotations

import json
from typing import Any

ERROR_CODES = {
    "PARSE_ERROR": (-32700, 400),
    "BAD_REQUEST": (-32600, 400),
    "UNAUTHORIZED": (-32001, 401),
    "FORBIDDEN": (-32003, 403),
    "NOT_FOUND": (-32004, 404),
    "TOO_MANY_REQUESTS": (-32029, 429),
    "INTERNAL_SERVER_ERROR": (-32603, 500),
}
ORIGIN_GATE_MESSAGE = "Please use the public API instead: https://developer.civitai.com/"


class JsDate:
    """A value that is a JavaScript Date on the wire (ISO string + superjson meta / devalue Date)."""

    __slots__ = ("iso",)

    def __init__(self, iso: str) -> None:
        self.iso = iso


class TrpcError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return ERROR_CODES[self.code][1]

    def body(self, path: str) -> dict[str, Any]:
        num, status = ERROR_CODES[self.code]
        return {
            "error": {
                "json": {
                    "message": self.message,
                    "code": num,
                    "data": {"code": self.code, "httpStatus": status, "path": path},
                }
            }
        }


def zod_issue_message(issues: list[dict[str, Any]]) -> str:
    """tRPC BAD_REQUEST messages are the JSON string of the zod issues."""
    return json.dumps(issues, indent=2)


def superjson(data: Any) -> dict[str, Any]:
    """``{"json": ..., "meta"?: {"values": {"path": ["Date"]}}}``."""
    values: dict[str, list[str]] = {}

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, JsDate):
            values[path] = ["Date"]
            return v.iso
        if isinstance(v, dict):
            return {k: walk(x, f"{path}.{k}" if path else str(k)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, f"{path}.{i}" if path else str(i)) for i, x in enumerate(v)]
        return v

    out: dict[str, Any] = {"json": walk(data, "")}
    if values:
        out["meta"] = {"values": values}
    return out


def devalue_stringify(data: Any) -> str:
    """A devalue ``stringify``: a flat JSON array, index 0 is the root; objects and arrays refer
    to other entries by index; primitives are de-duplicated; Dates are ``["Date", iso]``."""
    entries: list[str] = []
    prim_index: dict[tuple[str, Any], int] = {}

    def flatten(v: Any) -> int:
        if isinstance(v, bool | int | float | str) or v is None:
            key = (type(v).__name__, v)
            if key in prim_index:
                return prim_index[key]
            idx = len(entries)
            entries.append("")
            prim_index[key] = idx
            entries[idx] = json.dumps(v, ensure_ascii=False)
            return idx
        idx = len(entries)
        entries.append("")
        if isinstance(v, JsDate):
            entries[idx] = json.dumps(["Date", v.iso])
        elif isinstance(v, list):
            entries[idx] = "[" + ",".join(str(flatten(x)) for x in v) + "]"
        elif isinstance(v, dict):
            parts = [f"{json.dumps(str(k), ensure_ascii=False)}:{flatten(x)}" for k, x in v.items()]
            entries[idx] = "{" + ",".join(parts) + "}"
        else:
            raise TypeError(f"cannot devalue {type(v).__name__}")
        return idx

    flatten(data)
    return "[" + ",".join(entries) + "]"


def devalue_parse(text: str) -> Any:
    """Inverse of ``devalue_stringify`` (Dates come back as ISO strings). For tests."""
    values = json.loads(text)
    cache: dict[int, Any] = {}

    def hydrate(i: int) -> Any:
        if i in cache:
            return cache[i]
        v = values[i]
        if isinstance(v, list):
            if v and isinstance(v[0], str):
                out: Any = v[1] if v[0] == "Date" else v
            else:
                out = [hydrate(j) for j in v]
        elif isinstance(v, dict):
            out = {k: hydrate(j) for k, j in v.items()}
        else:
            out = v
        cache[i] = out
        return out

    return hydrate(0)
