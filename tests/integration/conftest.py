"""Helpers for end-to-end tests: run the real civitgrab-cli against the fake service."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from civitgrab_desktop.core.library.store import LibraryStore

REPO = Path(__file__).resolve().parents[2]


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Workspace:
    root: Path
    data_dir: Path
    api_base: str

    @property
    def downloads(self) -> Path:
        return self.root / "image_downloads"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CIVITGRAB_DATA_DIR=str(self.data_dir),
            CIVITGRAB_API_BASE=self.api_base,
            CIVITGRAB_BACKOFF_MAX="0.3",
            PYTHONPATH=str(REPO),
        )
        env.pop("CIVITAI_API_KEY", None)
        env.update(extra)
        return env

    def cli(self, *args: str, timeout: float = 120, stdin: str | None = None, **env: str) -> CliRun:
        proc = subprocess.run(
            [sys.executable, "-m", "civitgrab_desktop.cli", *args],
            cwd=self.root,
            env=self.env(**env),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return CliRun(proc.returncode, proc.stdout, proc.stderr)

    def store(self) -> LibraryStore:
        return LibraryStore(self.data_dir / "library.sqlite3")


@pytest.fixture
def workspace(tmp_path, fake_civitai) -> Workspace:
    data = tmp_path / "data"
    data.mkdir()
    return Workspace(tmp_path, data, fake_civitai.base_url)


def media_files(folder: Path) -> list[Path]:
    exts = {".png", ".jpeg", ".jpg", ".webp", ".mp4", ".webm", ".gif"}
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in exts)
