"""Checks of a built bundle before anything ships: its size by part, `--version` of both executables
with no display, `civitgrab --selftest` offscreen as a throw-away user, and the same self-test with
the bundle read-only (as an unprivileged user when we are root): nothing may be written next to
the executable."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import time
from pathlib import Path

from build_common import EXE, IS_MAC, IS_WIN, NOBODY, BuildError, log, mb, run, tree_size, version


def size_report(folder: Path) -> dict:
    internal = folder / "_internal"
    if not internal.is_dir():  # macOS .app: Contents/{Frameworks,Resources}
        internal = folder / "Contents" / "Frameworks"
    parts = {}
    if internal.is_dir():
        for child in internal.iterdir():
            if child.is_symlink():
                continue
            parts[child.name] = tree_size(child) if child.is_dir() else child.stat().st_size
    groups = {
        "Qt + PySide6": sum(v for k, v in parts.items() if k in ("PySide6", "shiboken6")),
        "playwright driver (node + JS)": parts.get("playwright", 0),
        "scipy + numpy (imagehash)": sum(v for k, v in parts.items() if k.startswith(("scipy", "numpy"))),
        "Pillow": sum(v for k, v in parts.items() if k.startswith(("PIL", "pillow"))),
        "cryptography (keyring SecretService)": parts.get("cryptography", 0),
    }
    node = next((p for p in folder.rglob("node*") if p.is_file() and p.name in ("node", "node.exe")), None)
    total = tree_size(folder)
    return {
        "folder": str(folder),
        "total_mb": mb(total),
        "files": sum(len(f) for _d, _s, f in os.walk(folder)),
        "node_mb": mb(node.stat().st_size) if node else None,
        "groups_mb": {k: mb(v) for k, v in groups.items()},
        "largest_mb": {k: mb(v) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])[:12]},
    }


class Bundle:
    def __init__(self, dist: Path):
        self.dist = dist
        self.folder = dist / "civitgrab"
        self.app = dist / "civitgrab.app" if IS_MAC else None
        self.exe_dir = self.app / "Contents" / "MacOS" if self.app else self.folder
        self.gui = self.exe_dir / f"civitgrab{EXE}"
        self.cli = self.exe_dir / f"civitgrab-cli{EXE}"

    @property
    def root(self) -> Path:
        return self.app or self.folder

    def check_exists(self) -> None:
        for exe in (self.gui, self.cli):
            if not exe.is_file():
                raise BuildError(f"missing executable {exe}")


def clean_env(home: Path, *, display: bool) -> dict[str, str]:
    """A throw-away user: HOME, XDG and Windows profile dirs under `home`; never the real ones."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CIVITGRAB_", "XDG_", "QT_", "PYTHON_KEYRING", "PYTHON"))}
    for name in ("config", "data", "cache", "state", "runtime"):
        (home / name).mkdir(parents=True, exist_ok=True)
    (home / "runtime").chmod(0o700)
    env.update(
        HOME=str(home),
        USERPROFILE=str(home),
        APPDATA=str(home / "data"),
        LOCALAPPDATA=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_RUNTIME_DIR=str(home / "runtime"),
        QT_LOGGING_RULES="qt.multimedia.*=false",
    )
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    if display:
        env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def check_version(bundle: Bundle, scratch: Path) -> dict:
    """--version of both executables with no display at all: must not create a QApplication."""
    expected = f"civitgrab {version()}"
    results = {}
    for exe in (bundle.gui, bundle.cli):
        env = clean_env(scratch / f"home-version-{exe.stem}", display=False)
        proc = run([exe, "--version"], timeout=120, check=False, env=env, capture_output=True, text=True)
        out = (proc.stdout + proc.stderr).strip()
        windowed_windows = IS_WIN and exe == bundle.gui  # no stdout at all in a windowed exe
        if proc.returncode != 0 or (expected not in out and not windowed_windows):
            raise BuildError(f"{exe.name} --version: rc {proc.returncode}, output {out[:300]!r}")
        results[exe.name] = out or f"rc {proc.returncode}"
    return results


def run_selftest(bundle: Bundle, scratch: Path, label: str, *, as_user: int | None = None,
                 exe: Path | None = None) -> dict:
    home = scratch / f"home-{label}"
    env = clean_env(home, display=True)
    report_file = home / "selftest.json"
    env["CIVITGRAB_SELFTEST_OUT"] = str(report_file)
    env["CIVITGRAB_SELFTEST_TIMEOUT"] = "240"
    cmd = [exe or bundle.gui, "--selftest"]
    if as_user is not None:
        for path in [home, *home.rglob("*")]:
            os.chown(path, as_user, as_user)
        cmd = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", "--", *cmd]
    t0 = time.monotonic()
    proc = run(cmd, timeout=300, check=False, env=env, capture_output=True, text=True, cwd=str(home))
    elapsed = time.monotonic() - t0
    text = report_file.read_text(encoding="utf-8") if report_file.is_file() else ""
    if not text:  # fall back to stdout (the last JSON line)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        text = lines[-1] if lines else ""
    try:
        report = json.loads(text)
    except ValueError:
        report = None
    if proc.returncode != 0 or not report or not report.get("ok"):
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        reasons = report.get("errors") if report else "no report"
        raise BuildError(f"self-test ({label}) failed: rc {proc.returncode}; {reasons}\n{tail}")
    log(f"self-test ({label}) passed in {elapsed:.1f} s; warnings: {report.get('warnings')}")
    return report


@contextlib.contextmanager
def read_only(path: Path):
    """chmod -R a-w, restored afterwards (so the next build can replace the folder)."""
    modes = {}
    for p in [path, *path.rglob("*")]:
        if p.is_symlink():
            continue
        mode = p.stat().st_mode
        modes[p] = mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        for p, mode in modes.items():
            with contextlib.suppress(OSError):
                p.chmod(mode)


def make_writable(path: Path) -> None:
    if not path.exists():
        return
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            with contextlib.suppress(OSError):
                p.chmod(p.stat().st_mode | stat.S_IWUSR)


def traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def readonly_selftest(bundle: Bundle, scratch: Path) -> dict:
    """The self-test with the installed app read-only, like an install in Program Files or /Applications."""
    as_user = None
    how = "read-only bundle"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if shutil.which("setpriv") and traversable_by_others(bundle.root) and traversable_by_others(scratch):
            as_user = NOBODY
            how += f", run as uid {NOBODY} (root ignores permissions)"
        else:
            how += " (as root: permissions not enforced; the self-test's own write check still applies)"
    with read_only(bundle.root):
        report = run_selftest(bundle, scratch, "readonly", as_user=as_user)
    return {"how": how, "ok": report["ok"], "warnings": report.get("warnings", [])}
