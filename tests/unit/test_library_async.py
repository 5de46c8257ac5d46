"""The asyncio facade: writes on one writer thread, reads on their own connections, and the
event loop never waits for the database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.csv_export import export_csv
from civitgrab_desktop.core.library.db import LibraryError, LibraryTooNewError
from civitgrab_desktop.core.library.store import ImageRow, LibraryStore, Source, new_owner
from tests.unit.test_library_support import library_path, record, tag


@pytest.fixture
async def lib(tmp_path):
    library = await Library.open(library_path(tmp_path))
    yield library
    await library.close()


def _hold_write_lock(path) -> threading.Event:
    """Another connection (as another process would) holds the write lock until the returned
    event is set (or 10 s pass, so a broken test cannot hang)."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(10)
        conn.execute("COMMIT")
        conn.close()

    threading.Thread(target=hold, daemon=True).start()
    assert locked.wait(5)
    return release


async def loop_turns(n: int = 50) -> None:
    """Let the event loop go round `n` times (other tasks and callbacks run in between)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_operations_through_the_facade(lib, tmp_path):
    states = await lib.upsert_listed([record(1), record(2)], Source("username", "alice", {1: "/a/1.png"}))
    assert set(states) == {1, 2}
    owner = new_owner()
    assert await lib.claim_download(1, owner)
    await lib.mark_downloaded(1, owner, "/a/1.png", "image/png", 5, "ff", "original")
    (claimed,) = await lib.claim_for_tags(owner, 10)
    await lib.store_tags(claimed.id, owner, [tag(1, "cat")], "api")
    row = await lib.image(1)
    assert isinstance(row, ImageRow) and row.dl_state == "done" and row.tag_state == "done"
    assert [t["name"] for t in await lib.tags_of(1)] == ["cat"]
    # a generator is drained in the store's thread and arrives as a list
    assert await lib.run(lambda store: (r.id for r in store.list_images())) == [1, 2]
    job = await lib.create_job("download", {"mode": 1})
    assert (await lib.get_job(job)).state == "queued"
    assert await lib.run(lambda store: threading.current_thread().name.startswith("library-writer"))
    out = tmp_path / "x.csv"
    assert await lib.call(export_csv, out) == 2
    with pytest.raises(AttributeError):
        lib.no_such_operation  # noqa: B018
    with pytest.raises(AttributeError):
        lib._conn  # noqa: B018


async def test_a_blocked_write_does_not_block_the_loop(lib):
    await lib.upsert_listed([record(1)], Source("username", "alice"))
    release = _hold_write_lock(lib.path)
    write = asyncio.ensure_future(lib.mark_gone([1]))  # waits for the other connection's lock
    # The loop keeps turning while the write waits. (Were the write run on the loop thread, its
    # first step would hold the thread until the lock went, and it would be done by now.)
    await loop_turns()
    assert not write.done(), "the write did not wait for the lock off the loop"
    release.set()  # ...and the write goes through once the lock is free
    assert await write == 1


async def test_writes_from_many_tasks_are_serialized(lib):
    await lib.upsert_listed([record(i) for i in range(1, 21)], Source("username", "alice"))
    owners = [new_owner() for _ in range(30)]
    results = await asyncio.gather(*(lib.claim_download(7, o) for o in owners))
    assert sum(results) == 1
    batches = await asyncio.gather(*(lib.claim_downloads(range(1, 21), new_owner()) for _ in range(5)))
    claimed = [i for batch in batches for i in batch]
    assert sorted(claimed) == [i for i in range(1, 21) if i != 7]


async def test_reader_reads_beside_a_busy_writer(lib):
    await lib.upsert_listed([record(1), record(2)], Source("username", "alice"))
    reader = lib.reader()
    assert reader is lib.reader()
    release = _hold_write_lock(lib.path)
    write = asyncio.ensure_future(lib.mark_gone([1]))  # the writer thread is now stuck waiting
    await loop_turns()
    # Reads answer while the lock is still held: they never queue behind the writer.
    assert await reader.count_images() == 2
    assert [r.id for r in await reader.list_images(username="alice")] == [1, 2]
    assert await reader.run(lambda store: store.read_only)
    assert not write.done()
    release.set()
    assert await write == 1
    assert (await reader.image(1)).gone_at is not None  # sees committed writes
    with pytest.raises(AttributeError, match="not a read operation"):
        reader.mark_gone  # noqa: B018


async def test_closed_library_refuses_calls(tmp_path):
    library = await Library.open(library_path(tmp_path))
    reader = library.reader()
    assert await reader.stats()
    await library.close()
    await library.close()  # idempotent
    with pytest.raises(LibraryError):
        await library.stats()
    with pytest.raises(LibraryError):
        await reader.stats()
    with pytest.raises(LibraryError):
        library.reader()


async def test_open_refuses_a_newer_library(tmp_path):
    path = library_path(tmp_path)
    LibraryStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 42")
    conn.close()
    with pytest.raises(LibraryTooNewError):
        await Library.open(path)


async def test_async_context_manager(tmp_path):
    async with await Library.open(library_path(tmp_path), download_lease=60) as library:
        await library.save_query(1, "alice", {})
        assert [q.identifier for q in await library.reader().list_queries()] == ["alice"]
