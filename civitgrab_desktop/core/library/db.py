"""Opening the library file: connection settings, schema migrations, and write transactions that
survive other processes holding the lock.

Several processes (app windows, the CLI) share one library. WAL lets readers run beside the one
writer; `busy_timeout` makes SQLite wait for the write lock; and `run_write` retries the rare
SQLITE_BUSY that still escapes (WAL recovery, checkpoints, waits longer than the timeout), so a
"database is locked" never reaches the user.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from civitgrab_desktop.core.library import schema
from civitgrab_desktop.core.library.owners import OwnerLiveness

LOG = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_S = 30.0
DEFAULT_MAX_LOCK_WAIT_S = 600.0  # give up (with a clear error) only after this long

# A migration is SQL text or a callable taking the connection (already inside the transaction).
Migration = str | Callable[[sqlite3.Connection], None]
T = TypeVar("T")

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


class LibraryError(Exception):
    """A library problem worth showing to the user as is."""


class LibraryTooNewError(LibraryError):
    pass


class LibraryBusyError(LibraryError):
    pass


def is_busy_error(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    msg = str(exc).lower()
    return "database is locked" in msg or "database is busy" in msg or "database table is locked" in msg


def _backoff_delays(max_wait: float):
    """Exponential backoff with jitter, until `max_wait` seconds have passed."""
    deadline = time.monotonic() + max_wait
    delay = 0.02
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        yield min(remaining, delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 2.0)


def run_write(
    conn: sqlite3.Connection,
    work: Callable[[sqlite3.Connection], T],
    *,
    max_wait: float = DEFAULT_MAX_LOCK_WAIT_S,
) -> T:
    """Run `work(conn)` in one BEGIN IMMEDIATE transaction, retrying the whole of it while the
    database is busy. `work` must only touch the database (it may run more than once)."""
    delays = _backoff_delays(max_wait)
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result
        except sqlite3.OperationalError as exc:
            if not is_busy_error(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise LibraryBusyError(
                    f"The library stayed locked by another process for over {max_wait:.0f} s; "
                    "close other civitgrab windows or commands and try again."
                ) from exc
            LOG.debug("library busy, retrying in %.2f s: %s", delay, exc)
            time.sleep(delay)


def run_read(
    conn: sqlite3.Connection,
    work: Callable[[sqlite3.Connection], T],
    *,
    max_wait: float = DEFAULT_MAX_LOCK_WAIT_S,
) -> T:
    """Run a read, retrying the rare busy error a WAL reader can see (recovery after a crash)."""
    delays = _backoff_delays(max_wait)
    while True:
        try:
            return work(conn)
        except sqlite3.OperationalError as exc:
            if not is_busy_error(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise LibraryBusyError(f"The library stayed locked for over {max_wait:.0f} s.") from exc
            time.sleep(delay)


def open_connection(
    path: str | Path,
    *,
    read_only: bool = False,
    migrations: Sequence[Migration] | None = None,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
    liveness: OwnerLiveness | None = None,
) -> sqlite3.Connection:
    """Open (creating it if needed) and migrate the library at `path`.

    `read_only` connections never write or migrate; they refuse a library that is not at the
    version this code knows. `migrations` defaults to `schema.MIGRATIONS` (tests pass their own).
    Transactions are explicit (`isolation_level=None`); use `run_write` for writes.
    """
    path = Path(path)
    migrations = schema.MIGRATIONS if migrations is None else migrations
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise LibraryError(f"No library at {path}")
    try:
        # One thread uses a connection at a time, but it may not be the thread that opened it
        # (executors), hence check_same_thread=False.
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise LibraryError(f"Cannot open the library {path}: {exc}") from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        liveness = liveness or OwnerLiveness()
        conn.create_function("owner_is_dead", 1, liveness.sql_is_dead)
        if read_only:
            _check_version_for_reading(conn, path, len(migrations))
            conn.execute("PRAGMA query_only = ON")
        else:
            # Statement journals (a page's upsert with its FTS trigger needs one per row) stay in
            # memory instead of spilling into a temp file: 40 temp-file writes per listed image.
            conn.execute("PRAGMA temp_store = MEMORY")
            _refuse_foreign_database(conn, path)
            run_read(conn, lambda c: _enable_wal(c, path))
            migrate(conn, path, migrations)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LibraryError(f"{path} is not a usable civitgrab library: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, path: Path) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        # e.g. some network file systems; still works, with less concurrency.
        LOG.warning("Library %s runs in %s journal mode (WAL unavailable)", path, mode)


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _too_new(path: Path, version: int, known: int) -> LibraryTooNewError:
    return LibraryTooNewError(
        f"The library {path} is at schema version {version}, but this civitgrab only knows up to "
        f"version {known}. It was written by a newer civitgrab; update civitgrab to open it."
    )


def _check_version_for_reading(conn: sqlite3.Connection, path: Path, known: int) -> None:
    version = run_read(conn, user_version)
    if version > known:
        raise _too_new(path, version, known)
    if version < known:
        raise LibraryError(
            f"The library {path} needs an upgrade (version {version} < {known}); open it for writing first."
        )


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").fetchone() is not None


def _refuse_foreign_database(conn: sqlite3.Connection, path: Path) -> None:
    # Our migrations are atomic, so version 0 with tables is someone else's database (e.g. the
    # classic tool's tracking_database.sqlite picked by mistake). Leave it exactly as it is.
    if run_read(conn, user_version) == 0 and run_read(conn, _has_tables):
        raise LibraryError(
            f"{path} is an SQLite file of another program, not a civitgrab library. "
            "Choose another library location (classic data is imported with `migrate`)."
        )


def migrate(conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> int:
    """Bring the library to `len(migrations)`: each step in its own transaction, each step from
    an existing version preceded by a backup copy. Safe when several processes open the same
    library at once: the version is re-read under the write lock. Returns the final version."""
    target = len(migrations)
    created_here = False  # a library this call created holds nothing worth a backup
    while True:
        version = run_read(conn, user_version)
        if version > target:
            raise _too_new(path, version, target)
        if version == target:
            return version
        if version == 0:
            _refuse_foreign_database(conn, path)
            created_here = True
        backup = backup_library(conn, path, version) if version > 0 and not created_here else None

        def step(c: sqlite3.Connection, expected: int = version) -> None:
            current = user_version(c)
            if current != expected:
                return  # another process migrated meanwhile; the loop re-reads the version
            _apply(c, migrations[current])
            c.execute(f"PRAGMA user_version = {current + 1}")

        LOG.info("Migrating library %s from version %d to %d", path, version, version + 1)
        try:
            run_write(conn, step)
        except sqlite3.Error as exc:
            kept = f"; a backup is at {backup}" if backup else ""
            raise LibraryError(
                f"Upgrading the library {path} from version {version} failed: {exc}. "
                f"The library was left at version {version}{kept}."
            ) from exc


def _apply(conn: sqlite3.Connection, migration: Migration) -> None:
    if callable(migration):
        migration(conn)
        return
    for statement in schema.split_sql(migration):
        conn.execute(statement)


def backup_library(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    """Copy the library to `<name>.bak-v<version>-<UTC time>` with SQLite's online backup (a
    consistent copy even while other processes write)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.bak-v{version}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.bak-v{version}-{stamp}-{n}")
    dest = sqlite3.connect(target)
    try:
        run_read(conn, lambda c: c.backup(dest))
    finally:
        dest.close()
    LOG.info("Backed up library %s to %s before migrating", path, target)
    return target


def chunked(items: Sequence[Any], size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def placeholders(n: int) -> str:
    return ",".join("?" * n)
