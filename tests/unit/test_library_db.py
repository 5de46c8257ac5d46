"""Opening the library: pragmas, migrations with backups, version refusal, busy handling."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pytest

from civitgrab_desktop.core.library import schema
from civitgrab_desktop.core.library.db import (
    LibraryBusyError,
    LibraryError,
    LibraryTooNewError,
    open_connection,
    run_write,
    user_version,
)
from civitgrab_desktop.core.library.schema import split_sql
from civitgrab_desktop.core.library.store import LibraryStore, Source
from tests.unit.test_library_support import library_path, record


def test_fresh_library_is_created_at_current_version_with_pragmas(tmp_path):
    path = library_path(tmp_path)
    conn = open_connection(path)
    try:
        assert user_version(conn) == schema.SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"images", "sources", "tags", "image_tags", "conversions", "jobs", "queries"} <= tables
    finally:
        conn.close()
    # A fresh, empty library needs no backup.
    assert not list(path.parent.glob("*.bak-*"))


def test_reopening_does_not_migrate_or_back_up_again(tmp_path):
    path = library_path(tmp_path)
    open_connection(path).close()
    open_connection(path).close()
    assert not list(path.parent.glob("*.bak-*"))


def test_migration_from_older_version_backs_up_first(tmp_path):
    path = library_path(tmp_path)
    v1 = schema.MIGRATIONS[:1]
    with LibraryStore(path, migrations=v1) as store:
        store.upsert_listed([record(1), record(2)], Source("username", "alice"))

    # A test-only second migration: a new column, filled from existing data.
    v2 = [*v1, "ALTER TABLE images ADD COLUMN note TEXT; UPDATE images SET note = 'migrated';"]
    conn = open_connection(path, migrations=v2)
    try:
        assert user_version(conn) == 2
        assert {r[0] for r in conn.execute("SELECT note FROM images")} == {"migrated"}
    finally:
        conn.close()

    backups = list(path.parent.glob("library.sqlite3.bak-v1-*"))
    assert len(backups) == 1
    backup = sqlite3.connect(backups[0])
    try:
        assert user_version(backup) == 1
        assert backup.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 2
    finally:
        backup.close()


def test_failed_migration_rolls_back_and_keeps_version(tmp_path):
    path = library_path(tmp_path)
    open_connection(path, migrations=schema.MIGRATIONS[:1]).close()
    broken = [*schema.MIGRATIONS[:1], "ALTER TABLE images ADD COLUMN half TEXT; THIS IS NOT SQL;"]
    with pytest.raises(LibraryError, match="from version 1 failed.*left at version 1; a backup is at"):
        open_connection(path, migrations=broken)
    conn = open_connection(path, migrations=schema.MIGRATIONS[:1])
    try:
        assert user_version(conn) == 1
        columns = {r[1] for r in conn.execute("PRAGMA table_info(images)")}
        assert "half" not in columns  # the whole step was rolled back
    finally:
        conn.close()


def test_callable_migration_runs_inside_the_transaction(tmp_path):
    path = library_path(tmp_path)
    seen = []

    def step(conn):
        seen.append(conn.in_transaction)
        conn.execute("CREATE TABLE extra (x)")

    conn = open_connection(path, migrations=[*schema.MIGRATIONS, step])
    conn.close()
    assert seen == [True]


def test_newer_library_is_refused_with_a_clear_message(tmp_path):
    path = library_path(tmp_path)
    open_connection(path).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(LibraryTooNewError, match="newer civitgrab"):
        open_connection(path)
    with pytest.raises(LibraryTooNewError):
        LibraryStore(path, read_only=True)


def test_another_programs_database_is_refused_untouched(tmp_path):
    path = tmp_path / "tracking_database.sqlite"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE tracked_images (image_key TEXT PRIMARY KEY)")
    raw.commit()
    raw.close()
    before = path.read_bytes()
    with pytest.raises(LibraryError, match="not a civitgrab library"):
        open_connection(path)
    assert path.read_bytes() == before


def test_not_a_database_gives_a_library_error(tmp_path):
    path = tmp_path / "library.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="not a usable civitgrab library"):
        open_connection(path)


def test_read_only_store_refuses_writes(tmp_path):
    path = library_path(tmp_path)
    LibraryStore(path).close()
    with LibraryStore(path, read_only=True) as reader:
        assert reader.stats()["images"] == 0
        with pytest.raises(LibraryError):
            reader.mark_gone([1])
        with pytest.raises(sqlite3.OperationalError):  # query_only backs it up
            reader.connection.execute("DELETE FROM images")


def test_split_sql_keeps_semicolons_in_comments_and_strings():
    script = "CREATE TABLE a (x -- a comment; with a semicolon\n);\nINSERT INTO a VALUES ('1;2');\n"
    assert split_sql(script) == [
        "CREATE TABLE a (x -- a comment; with a semicolon\n);",
        "INSERT INTO a VALUES ('1;2');",
    ]
    assert len(split_sql(schema.MIGRATIONS[0])) > 10


class _RetrySeen(logging.Handler):
    """Sets `seen` when run_write reports it hit the lock and is retrying."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("library busy, retrying"):
            self.seen.set()


def test_write_waits_out_a_lock_longer_than_busy_timeout(tmp_path, caplog):
    """Another process holds the write lock past our busy timeout: the write still succeeds.
    The holder lets go only once the write has given up waiting inside SQLite and is retrying."""
    path = library_path(tmp_path)
    LibraryStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    caplog.set_level(logging.DEBUG, logger="civitgrab_desktop.core.library.db")
    retrying = _RetrySeen()
    logging.getLogger("civitgrab_desktop.core.library.db").addHandler(retrying)
    released = threading.Event()

    def release_once_the_write_retries():
        retrying.seen.wait(10)
        holder.execute("COMMIT")
        released.set()

    threading.Thread(target=release_once_the_write_retries, daemon=True).start()
    try:
        with LibraryStore(path, busy_timeout=0.05) as store:
            store.upsert_listed([record(7)], Source("username", "alice"))
            assert retrying.seen.is_set() and released.is_set()
            assert store.image(7) is not None
    finally:
        logging.getLogger("civitgrab_desktop.core.library.db").removeHandler(retrying)
        released.wait(10)
        holder.close()


def test_write_gives_up_with_a_clear_error_after_max_wait(tmp_path):
    path = library_path(tmp_path)
    conn = open_connection(path, busy_timeout=0.01)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LibraryBusyError, match="locked by another process"):
            run_write(conn, lambda c: c.execute("DELETE FROM jobs"), max_wait=0.3)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        conn.close()
