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

# The Linux bundle is ~420 MB (playwright's node alone is 112 MB); anything much bigger means something
# unwanted came back (QtWebEngine, scipy's unused parts, GTK...).
SIZE_BUDGET_MB = 470


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
    assert not any(n.endswith(".d.ts") for n in names)
    assert report["size"]["total_mb"] < SIZE_BUDGET_MB, report["size"]
