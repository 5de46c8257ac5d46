"""Shared pieces of the benchmarks: a fake CivitAI in its own process, timing, JSON output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def fake_server(*args: str, ready_timeout: float = 120.0):
    """Run `python -m tests.fake_civitai` in a subprocess (so it does not share our GIL) and
    yield its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_civitai", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + ready_timeout
        line = ""
        while time.time() < deadline and not line.startswith("http"):
            line = proc.stdout.readline().strip()
            if proc.poll() is not None:
                raise RuntimeError("the fake server exited")
        yield line
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def cli_env(data_dir: Path, api_base: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CIVITGRAB_DATA_DIR=str(data_dir), CIVITGRAB_API_BASE=api_base, PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def emit(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
