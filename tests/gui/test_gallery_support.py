"""Fixtures for the gallery and database tests (no tests here): a library filled by the real
`civitgrab-cli` from the local CivitAI replica, and the real main window opened on it.

`replica_library` (module scope) downloads alice and bob_art (24 + 12 items: PNG/JPEG/WebP of
every NSFW level, 2 MP4 and 1 WebM) and fetches their community tags, once per test module; the
tests that only read share it. `fresh_library` (per test) downloads without tags, for tests that
change things (fetch tags now, convert now, delete).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from civitgrab_desktop.core.library.store import LibraryStore
from tests.fake_civitai.server import FakeCivitai
from tests.gui.conftest import close_window, make_window, wait_until

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ReplicaLibrary:
    root: Path
    data_dir: Path
    downloads: Path
    base_url: str
    fake: FakeCivitai

    def store(self) -> LibraryStore:
        return LibraryStore(self.data_dir / "library.sqlite3", read_only=True)

    def rows(self) -> list[dict]:
        with self.store() as s:
            return [dict(r) for r in s.connection.execute("SELECT * FROM images WHERE dl_state = 'done'")]


def run_cli(data_dir: Path, base_url: str, *args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(
        CIVITGRAB_DATA_DIR=str(data_dir),
        CIVITGRAB_API_BASE=base_url,
        CIVITGRAB_BACKOFF_MAX="0.3",
        PYTHONPATH=str(REPO),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    env.pop("CIVITAI_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "civitgrab_desktop.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"civitgrab-cli {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def build_replica_library(root: Path, fake: FakeCivitai, *, tags: bool) -> ReplicaLibrary:
    data = root / "data"
    downloads = root / "downloads"
    data.mkdir(parents=True)
    run_cli(data, fake.base_url, "--mode", "1", "--username", "alice,bob_art", "--output_dir", str(downloads),
            cwd=root)
    if tags:
        run_cli(data, fake.base_url, "tags", "--workers", "4", cwd=root)
    return ReplicaLibrary(root, data, downloads, fake.base_url, fake)


@pytest.fixture(scope="module")
def replica_library(tmp_path_factory, fake_dataset):
    fake = FakeCivitai(fake_dataset)
    fake.start()
    try:
        yield build_replica_library(tmp_path_factory.mktemp("replica"), fake, tags=True)
    finally:
        fake.stop()


@pytest.fixture
def fresh_library(tmp_path, fake_civitai):
    return build_replica_library(tmp_path / "fresh", fake_civitai, tags=False)


async def open_window(library: ReplicaLibrary, theme: str = "light", page: str = "gallery", *,
                      keep_state: bool = False):
    """The real main window on `library`, the page shown and (for the gallery) its first rows
    loaded. Unless `keep_state`, the window and page state an earlier test saved is dropped."""
    if not keep_state:
        (library.data_dir / "settings.json").unlink(missing_ok=True)
    window = make_window(library.data_dir, library.base_url, theme)
    window.show()
    await window.started()
    window.show_page(page)
    if page == "gallery":
        gallery = window.page("gallery")
        await wait_until(lambda: gallery.model.rowCount() > 0 and gallery.model.is_page_loaded(0), 20,
                         what="the first gallery page")
    return window


async def settle_thumbnails(page, timeout: float = 20.0) -> None:
    """Wait until the visible cards' thumbnails are made (nothing queued or in flight)."""
    await asyncio.sleep(0.1)
    await wait_until(lambda: page.loader.pending() == 0 and page.loader.frames.pending() == 0, timeout,
                     what="thumbnails")


async def shut(window) -> None:
    await close_window(window)
    window.deleteLater()
    await asyncio.sleep(0)
