"""Test environment shared by every suite: no real profile, no keychain, no display."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Set before anything imports Qt or keyring.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia.*=false")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
_runtime = Path(tempfile.gettempdir()) / f"runtime-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
_runtime.mkdir(mode=0o700, exist_ok=True)
os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime))
os.environ.pop("CIVITAI_API_KEY", None)
os.environ.pop("CIVITGRAB_API_BASE", None)

import pytest  # noqa: E402

pytest_plugins = ["tests.fake_civitai.pytest_plugin"]


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A private data dir (library, logs, settings) for one test."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("CIVITGRAB_DATA_DIR", str(d))
    return d
