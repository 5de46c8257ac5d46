"""`Library`: the asyncio face of the library.

All writes of a process go through one dedicated thread that owns the LibraryStore, so they never
block the event loop and are serialized within the process (other processes are handled by
SQLite's locking and the claim rules). The GUI reads through `lib.reader()`: separate read-only
connections in a small thread pool, so a long query never waits behind the writer.

    lib = await Library.open(path)
    states = await lib.upsert_listed(records, source)   # any LibraryStore method
    rows = await lib.reader().list_images(username="alice")
    await lib.close()
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from civitgrab_desktop.core.library.db import LibraryError
from civitgrab_desktop.core.library.store import READ_METHODS, LibraryStore

T = TypeVar("T")


def _materialized(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn`; a generator result is drained here, in the store's thread (its connection
    must not be used from the loop)."""
    result = fn(*args, **kwargs)
    if inspect.isgenerator(result):
        return list(result)
    return result


class Library:
    def __init__(
        self, path: Path, executor: ThreadPoolExecutor, store: LibraryStore, store_kwargs: dict[str, Any]
    ):
        self.path = path
        self._executor = executor
        self._store = store
        self._store_kwargs = store_kwargs
        self._reader: LibraryReader | None = None
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, **store_kwargs: Any) -> Library:
        """Open (create, migrate) the library on its writer thread. `store_kwargs` go to
        LibraryStore (leases, timeouts)."""
        path = Path(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="library-writer")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(
                executor, functools.partial(LibraryStore, path, **store_kwargs)
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(path, executor, store, store_kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(store, *args, **kwargs)` on the writer thread (for work spanning several
        operations, e.g. `import_classic`)."""
        if self._closed:
            raise LibraryError("the library is closed")
        loop = asyncio.get_running_loop()
        call = functools.partial(_materialized, fn, self._store, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    call = run  # alias: `await lib.call(export_csv, path)`

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only reached for names not defined on Library: proxy public LibraryStore methods.
        if name.startswith("_") or not callable(getattr(LibraryStore, name, None)):
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        method = getattr(LibraryStore, name)

        @functools.wraps(method)
        async def proxy(*args: Any, **kwargs: Any) -> Any:
            return await self.run(method, *args, **kwargs)

        return proxy

    def reader(self) -> LibraryReader:
        """The read side for the GUI (created on first use, closed with the library)."""
        if self._closed:
            raise LibraryError("the library is closed")
        if self._reader is None:
            kwargs = {k: v for k, v in self._store_kwargs.items() if k in ("busy_timeout", "max_lock_wait")}
            self._reader = LibraryReader(self.path, **kwargs)
        return self._reader

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            await self._reader.close()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._store.close)
        finally:
            # Waiting for the thread would block the loop; its queue is empty after close.
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> Library:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class LibraryReader:
    """Read-only queries in a thread pool, each thread with its own query-only connection.
    `await reader.<read method>(...)` for the methods in READ_METHODS; `await reader.run(fn)`
    for custom reads (fn gets a read-only LibraryStore)."""

    def __init__(self, path: Path, *, max_workers: int = 2, **store_kwargs: Any):
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="library-reader")
        self._store_kwargs = store_kwargs
        self._local = threading.local()
        self._stores: list[LibraryStore] = []
        self._lock = threading.Lock()
        self._closed = False

    def _thread_store(self) -> LibraryStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = LibraryStore(self.path, read_only=True, **self._store_kwargs)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def _call(self, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
        return _materialized(fn, self._thread_store(), *args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._closed:
            raise LibraryError("the library reader is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn, args, kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in READ_METHODS:
            raise AttributeError(f"{name!r} is not a read operation; use the Library (writer) for it")
        method = getattr(LibraryStore, name)

        @functools.wraps(method)
        async def proxy(*args: Any, **kwargs: Any) -> Any:
            return await self.run(method, *args, **kwargs)

        return proxy

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        # Let running queries finish off the loop, then close every thread's connection.
        await loop.run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))
        with self._lock:
            stores, self._stores = self._stores, []
        for store in stores:
            store.close()
