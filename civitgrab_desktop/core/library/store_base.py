"""The connection-owning core of LibraryStore: opening, transactions, and the claim rules every
kind of work (download, tags, convert) shares."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from civitgrab_desktop.core.library.db import (
    DEFAULT_BUSY_TIMEOUT_S,
    DEFAULT_MAX_LOCK_WAIT_S,
    LibraryError,
    Migration,
    open_connection,
    run_read,
    run_write,
)
from civitgrab_desktop.core.library.owners import DOWNLOAD_LEASE_S, WORK_LEASE_S, OwnerLiveness
from civitgrab_desktop.core.library.rows import ImageRow

T = TypeVar("T")

CLAIM_KINDS = ("dl", "tag", "cv")  # column prefixes: <kind>_owner, <kind>_claimed_at


class UnknownImageError(LibraryError, KeyError):
    def __init__(self, image_id: int):
        super().__init__(f"image {image_id} is not in the library")
        self.image_id = image_id

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class StoreBase:
    """Owns one connection. Not thread-safe: use it from one thread at a time (the async
    `Library` gives it a dedicated writer thread)."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        download_lease: float = DOWNLOAD_LEASE_S,
        work_lease: float = WORK_LEASE_S,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
        max_lock_wait: float = DEFAULT_MAX_LOCK_WAIT_S,
        migrations: Sequence[Migration] | None = None,
    ):
        self.path = Path(path)
        self.read_only = read_only
        self.leases = {"dl": float(download_lease), "tag": float(work_lease), "cv": float(work_lease)}
        self._max_lock_wait = max_lock_wait
        self._liveness = OwnerLiveness()
        # When each owner first claimed tag/convert work here: failures (and re-tags) newer than
        # that are not handed back to the same owner, so a job's claim loop always ends.
        self._session_started: dict[str, float] = {}
        self._conn: sqlite3.Connection | None = open_connection(
            self.path,
            read_only=read_only,
            migrations=migrations,
            busy_timeout=busy_timeout,
            liveness=self._liveness,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The raw connection, for library modules (CSV export, import). Same thread rules."""
        if self._conn is None:
            raise LibraryError("the library store is closed")
        return self._conn

    # -- transactions ----------------------------------------------------------------------

    def run_write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(conn)` in one write transaction, retried as a whole while the file is busy."""
        if self.read_only:
            raise LibraryError("this library connection is read-only")
        return run_write(self.connection, work, max_wait=self._max_lock_wait)

    def run_read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return run_read(self.connection, work, max_wait=self._max_lock_wait)

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self.run_read(lambda c: c.execute(sql, params).fetchall())

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return self.run_read(lambda c: c.execute(sql, params).fetchone())

    # -- claims ----------------------------------------------------------------------------

    def _claim_free_sql(
        self, kind: str, owner: str, *, own_counts_as_free: bool = True
    ) -> tuple[str, list[Any]]:
        """SQL condition: nobody who may still be working holds this row's `kind` claim (or,
        with `own_counts_as_free`, `owner` itself does). Evaluated inside the claiming
        transaction, so testing and taking the claim is one atomic step."""
        assert kind in CLAIM_KINDS
        cutoff = time.time() - self.leases[kind]
        stale = f"({kind}_claimed_at IS NULL OR {kind}_claimed_at < ? OR owner_is_dead({kind}_owner))"
        if own_counts_as_free:
            return f"({kind}_owner IS NULL OR {kind}_owner = ? OR {stale})", [owner, cutoff]
        return f"({kind}_owner IS NULL OR ({kind}_owner != ? AND {stale}))", [owner, cutoff]

    def owner_may_be_working(self, owner: str | None, claimed_at: float | None, kind: str = "dl") -> bool:
        """True when a claim by `owner` taken at `claimed_at` still blocks others."""
        if not owner or claimed_at is None:
            return False
        if claimed_at < time.time() - self.leases[kind]:
            return False
        return not self._liveness.is_dead(owner)

    def _session_start(self, owner: str) -> float:
        return self._session_started.setdefault(owner, time.time())

    def release_claims(self, owner: str, image_id: int | None = None) -> int:
        """Drop the claims `owner` holds (end of a job, pause, stop), or only those on
        `image_id`. Returns the number of claims released."""
        if image_id is None:
            self._session_started.pop(owner, None)
        only_one = "" if image_id is None else " AND id = ?"
        extra = [] if image_id is None else [int(image_id)]

        def work(c: sqlite3.Connection) -> int:
            released = 0
            for kind in CLAIM_KINDS:
                released += c.execute(
                    f"UPDATE images SET {kind}_owner = NULL WHERE {kind}_owner = ?{only_one}", [owner, *extra]
                ).rowcount
            return released

        return self.run_write(work)

    def renew_claims(self, owner: str) -> int:
        """Restart the lease of every claim `owner` holds; long downloads call this so their
        claims do not expire while they are still working."""
        now = time.time()

        def work(c: sqlite3.Connection) -> int:
            renewed = 0
            for kind in CLAIM_KINDS:
                renewed += c.execute(
                    f"UPDATE images SET {kind}_claimed_at = ? WHERE {kind}_owner = ?", (now, owner)
                ).rowcount
            return renewed

        return self.run_write(work)

    def _claim_images(
        self, kind: str, owner: str, limit: int, due_sql: str, due_params: list[Any]
    ) -> list[ImageRow]:
        """Claim up to `limit` downloaded images matching `due_sql` whose `kind` claim is free, in
        one UPDATE ... RETURNING: the selection and the claim are a single atomic step."""

        def work(c: sqlite3.Connection) -> list[ImageRow]:
            # Rows this owner already holds were handed out by an earlier call: not again.
            free, free_params = self._claim_free_sql(kind, owner, own_counts_as_free=False)
            rows = c.execute(
                f"""UPDATE images SET {kind}_owner = ?, {kind}_claimed_at = ?
                    WHERE id IN (SELECT id FROM images
                                 WHERE dl_state = 'done' AND {due_sql} AND {free}
                                 ORDER BY id LIMIT ?)
                    RETURNING *""",
                [owner, time.time(), *due_params, *free_params, int(limit)],
            ).fetchall()
            return sorted((ImageRow.from_row(row) for row in rows), key=lambda r: r.id)

        if limit <= 0:
            return []
        return self.run_write(work)
