"""Claim owners: "<hostname>:<pid>:<token>", and whether an owner can still be working.

A claim is stale (free to take) when its process is known to be dead on this host, or when it is
older than its lease. Owners on other hosts (a library on a network share) are judged by the lease
alone, because their process table is out of reach.
"""

from __future__ import annotations

import os
import secrets
import socket
import time

DOWNLOAD_LEASE_S = 15 * 60
WORK_LEASE_S = 10 * 60  # tags and convert

_ALIVE_CACHE_TTL_S = 2.0


def this_host() -> str:
    # ':' separates the owner's fields, so it must not appear in the host part.
    return (socket.gethostname() or "localhost").replace(":", "_")


def new_owner() -> str:
    """A fresh owner id for one job run in this process."""
    return f"{this_host()}:{os.getpid()}:{secrets.token_hex(4)}"


def parse_owner(owner: str) -> tuple[str, int, str] | None:
    """(host, pid, token), or None when `owner` is not in the owner format."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1]), parts[2]


def pid_alive(pid: int) -> bool:
    """True unless the process is known to be gone. Errs on the side of "alive"."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return True
    return True


def _windows_pid_alive(pid: int) -> bool:
    # os.kill(pid, 0) would terminate the process on Windows; ask the kernel instead. Any failure
    # here means "unknown", which counts as alive: the lease still frees the claim eventually.
    try:
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        process_query_limited_information = 0x1000
        still_active = 259
        error_invalid_parameter = 87
        handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
        if not handle:
            return ctypes.get_last_error() != error_invalid_parameter
        try:
            code = wintypes.DWORD()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == still_active
        finally:
            kernel32.CloseHandle(handle)
    except Exception:
        return True


class OwnerLiveness:
    """Answers "is this owner's process provably dead?", with a short cache.

    Registered as the SQL function `owner_is_dead(owner)` so claim queries can test it inside
    their own transaction. A dead owner stays dead (its token is never reused), so that answer is
    cached for good; "alive" is re-checked after a couple of seconds.
    """

    def __init__(self) -> None:
        self._host = this_host()
        self._dead: set[str] = set()
        self._alive_until: dict[str, float] = {}

    def is_dead(self, owner: str | None) -> bool:
        if not owner:
            return False
        if owner in self._dead:
            return True
        now = time.monotonic()
        if self._alive_until.get(owner, 0.0) > now:
            return False
        parsed = parse_owner(owner)
        if parsed is None or parsed[0] != self._host:
            dead = False
        else:
            dead = not pid_alive(parsed[1])
        if dead:
            self._dead.add(owner)
            self._alive_until.pop(owner, None)
        else:
            self._alive_until[owner] = now + _ALIVE_CACHE_TTL_S
        return dead

    def sql_is_dead(self, owner: str | None) -> int:
        return 1 if self.is_dead(owner) else 0
