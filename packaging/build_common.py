"""What every packaging step shares: where things are, the version and platform names, logging,
running a command (BuildError when it fails) and sizes in MB."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "civitgrab.spec"
ISS = ROOT / "packaging" / "windows" / "civitgrab.iss"
ENTITLEMENTS = ROOT / "packaging" / "macos" / "entitlements.plist"
IS_WIN = sys.platform == "win32"
IS_MAC = sys.platform == "darwin"
EXE = ".exe" if IS_WIN else ""
NOBODY = 65534


class BuildError(RuntimeError):
    pass


def version() -> str:
    text = (ROOT / "civitgrab_desktop" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)


def arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x64", "x86_64": "x86_64" if not IS_WIN else "x64", "aarch64": "arm64"}.get(machine, machine)


def os_name() -> str:
    return "windows" if IS_WIN else "macos" if IS_MAC else "linux"


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(cmd: list[str], *, timeout: float = 900, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    log("$ " + " ".join(str(c) for c in cmd))
    proc = subprocess.run([str(c) for c in cmd], timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise BuildError(f"{Path(str(cmd[0])).name} failed with exit code {proc.returncode}")
    return proc


def tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if not stat.S_ISLNK(st.st_mode):
                    total += st.st_size
    return total


def mb(n: int) -> float:
    return round(n / 2**20, 1)
