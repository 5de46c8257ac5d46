"""The packaged app: build the PyInstaller bundle (packaging/build.py) and run its self-tests.

Slow (about a minute: ~45 s of PyInstaller on two cores, then the frozen self-test twice: offscreen
with a throw-away profile, and with the bundle read-only). Everything is built into a temp dir that
is removed afterwards; the repo's dist/ and build/ are not touched.

Set CIVITGRAB_SKIP_PACKAGING=1 to skip it (e.g. a quick local run of the whole suite).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "packaging" / "build.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(importlib.util.find_spec("PyInstaller") is None, reason="PyInstaller is not installed"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the release workflow builds Windows/macOS"),
    pytest.mark.skipif(os.environ.get("CIVITGRAB_SKIP_PACKAGING") == "1", reason="CIVITGRAB_SKIP_PACKAGING=1"),
]

# The Linux bundle is ~415 MB (playwright's node alone is 112 MB); anything much bigger means something
# unwanted came back (QtWebEngine, scipy's unused parts, GTK, playwright's web apps...).
SIZE_BUDGET_MB = 460


@pytest.fixture(scope="module")
def built():
    scratch = Path(tempfile.mkdtemp(prefix="civitgrab-pkgtest-"))
    scratch.chmod(0o755)  # the read-only self-test runs as an unprivileged user when we are root
    dist, work, report = scratch / "dist", scratch / "work", scratch / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVITGRAB_")}
    try:
        proc = subprocess.run(
            [sys.executable, str(BUILD), "--no-installer", "--no-archive", "--dist", str(dist), "--work", str(work),
             "--report", str(report)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1100,
        )
        yield proc, dist, (json.loads(report.read_text()) if report.exists() else None)
    finally:
        for p in [scratch, *scratch.rglob("*")]:  # a failed read-only run may have left it read-only
            if not p.is_symlink():
                with contextlib.suppress(OSError):
                    p.chmod(p.stat().st_mode | 0o200)
        shutil.rmtree(scratch, ignore_errors=True)


def test_bundle_builds_and_its_selftests_pass(built):
    proc, dist, report = built
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert report is not None
    selftest = report["selftest"]
    assert selftest["ok"] and selftest["frozen"] is True and selftest["platform"] == "offscreen"
    for name in ("imports", "keyring", "playwright_driver", "window", "library", "convert_in_worker",
                 "qt_images", "video_first_frame", "nothing_written_next_to_executable"):
        assert selftest["checks"][name]["ok"], (name, selftest["checks"][name])
    # keyring found its backends through the bundled entry-point metadata
    assert "SecretService" in selftest["checks"]["keyring"]["entry_points"]
    # the converter's worker processes start from the frozen executable
    assert selftest["checks"]["convert_in_worker"]["start_method"] in ("forkserver", "spawn")
    assert report["readonly_selftest"]["ok"]
    assert set(report["version_check"]) == {"civitgrab", "civitgrab-cli"}
    assert all(v.startswith("civitgrab ") for v in report["version_check"].values())


def test_bundle_contents_and_size(built):
    proc, dist, report = built
    assert proc.returncode == 0
    folder = dist / "civitgrab"
    internal = folder / "_internal"
    names = {p.relative_to(internal).as_posix() for p in internal.rglob("*")}
    # two executables, one shared folder
    assert (folder / "civitgrab").is_file() and (folder / "civitgrab-cli").is_file()
    # no test code, no Qt translations, no unused Qt modules, no Tk
    for unwanted in ("tests", "fake_civitai", "tkinter", "_tkinter", "PySide6/Qt/translations"):
        assert not any(n == unwanted or n.startswith(unwanted + "/") for n in names), unwanted
    joined = "\n".join(names)
    for unwanted in ("QtWebEngine", "Qt6Pdf", "Qt6Quick3D", "Qt6Charts", "Qt6DataVisualization", "Qt63D",
                     "libgtk-3", "qtvirtualkeyboard", "scipy/optimize", "scipy/sparse", "scipy/linalg"):
        assert unwanted not in joined, unwanted
    # what must be there: the FFmpeg multimedia plugin, Pillow's WebP, playwright's driver, resources
    assert "PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so" in names
    assert any(n.startswith("PIL/_webp") for n in names)
    assert "playwright/driver/node" in names and "playwright/driver/package/cli.js" in names
    assert "resources/selftest/sample.mp4" in names and "resources/app/civitgrab-256.png" in names
    # playwright's driver runs (package.json + lib/ are what `cli.js run-driver` loads), its developer parts don't
    assert "playwright/driver/package/package.json" in names and "playwright/driver/package/lib/coreBundle.js" in names
    assert not any(n.endswith(".d.ts") for n in names)
    for unwanted in ("types", "bin", "lib/vite", "lib/tools/skills"):
        assert not any(n.startswith(f"playwright/driver/package/{unwanted}/") for n in names), unwanted
    assert report["size"]["total_mb"] < SIZE_BUDGET_MB, report["size"]


def _user_env(home: Path, api_base: str) -> dict[str, str]:
    """A throw-away user with no display: the frozen CLI must need neither."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CIVITGRAB_", "XDG_", "QT_", "PYTHON", "DISPLAY", "WAYLAND"))}
    for name in ("config", "data", "cache", "state"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_STATE_HOME=str(home / "state"), CIVITGRAB_API_BASE=api_base)
    env.pop("CIVITAI_API_KEY", None)
    return env


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


def test_frozen_cli_downloads_tags_and_converts(built, fake_civitai, tmp_path):
    """The frozen civitgrab-cli for real, against the replica: download, tags (the browser method through
    the bundled playwright driver when this machine has a Chromium), and convert in worker processes
    started from the frozen executable (forkserver / spawn through freeze_support)."""
    proc, dist, _report = built
    assert proc.returncode == 0
    folder = dist / "civitgrab"
    cli = folder / "civitgrab-cli"
    before = _tree(folder)
    home = tmp_path / "home"
    env = _user_env(home, fake_civitai.base_url)

    def run(*args: str) -> str:
        out = subprocess.run([str(cli), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, (args, out.stdout[-3000:], out.stderr[-3000:])
        return out.stdout + out.stderr

    out = run("--mode", "1", "--username", "alice", "--output_dir", str(tmp_path / "downloads"))
    assert "Failed: 0" in out
    originals = [p for p in (tmp_path / "downloads").rglob("*") if p.suffix in (".jpeg", ".jpg", ".png")]
    assert len(originals) >= 5

    from civitgrab_desktop.core.civitai.browsers import BrowserNotFound, find_browser

    try:
        find_browser("")
        method = "browser"
    except BrowserNotFound:
        method = "api"
    # a key: the site shows a mature image's page (and its tags) only to a logged-in visitor
    out = run("tags", "--method", method, "--limit", "4", "--workers", "2", "--api-key", "k")
    assert "Tagged: 4" in out and "Failed: 0" in out, out

    out = run("convert", "--workers", "2", "--dest", str(tmp_path / "browse"))
    assert "Failed: 0" in out, out
    webps = list((tmp_path / "browse").rglob("*.webp"))
    assert len(webps) >= len(originals)
    from civitgrab_desktop.core.media.embed import file_image_id, read_file_xmp

    assert file_image_id(webps[0]) and read_file_xmp(webps[0])["record"]  # the record went into XMP

    # the library and settings are in the (temporary) user's data dir, nothing is next to the executable
    assert (home / "data" / "civitgrab" / "library.sqlite3").is_file()
    assert _tree(folder) == before
