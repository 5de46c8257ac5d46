"""`civitgrab --selftest` (civitgrab_desktop/selftest/): its pieces, and a whole run from source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from civitgrab_desktop.selftest import bundle, samples
from civitgrab_desktop.selftest import report as reporting

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIVITGRAB_", "DISPLAY", "WAYLAND"))}
    env.pop("QT_QPA_PLATFORM", None)  # the self-test must go offscreen by itself without a display
    env.update(HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "xdg-data"),
               XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_CACHE_HOME=str(tmp_path / "xdg-cache"))
    env.update(extra)
    return env


def _run(tmp_path: Path, *args: str, **extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = subprocess.run([sys.executable, "-m", "civitgrab_desktop", "--selftest", *args], cwd=tmp_path,
                         env=_env(tmp_path, **extra), capture_output=True, text=True, timeout=240)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return out, (json.loads(lines[-1]) if lines else {})


def test_selftest_from_source_passes_offscreen_on_a_temporary_library(tmp_path):
    report_file = tmp_path / "report.json"
    out, report = _run(tmp_path, CIVITGRAB_SELFTEST_OUT=str(report_file))
    assert out.returncode == 0, (out.stderr[-3000:], report.get("errors"))
    assert report["ok"] and report["errors"] == []
    assert json.loads(report_file.read_text()) == report  # the same report for windowed exes (no stdout)
    assert report["platform"] == "offscreen" and report["frozen"] is False
    assert report["data_dir"] == "temporary"
    checks = report["checks"]
    for name in ("imports", "keyring", "playwright_driver", "startup", "window", "library", "convert_in_worker",
                 "qt_images", "video_first_frame"):
        assert checks[name]["ok"], (name, checks[name])
    assert checks["imports"]["modules"] >= 20
    assert checks["video_first_frame"]["size"] == [96, 96]
    assert checks["convert_in_worker"]["exif_roundtrip"] and checks["convert_in_worker"]["phash_distance"] <= 6
    assert checks["library"]["journal_mode"] == "wal"
    assert {"jpeg", "webp", "svg"} <= set(checks["qt_images"]["formats"])
    # the test environment has no keychain: a warning, not a failure
    assert checks["keyring"]["usable"] is False and any("keychain" in w for w in report["warnings"])
    # the temporary library is gone, and nothing was created in the (fake) user's profile
    assert not Path(report["library"]).exists()
    assert not (tmp_path / "xdg-data" / "civitgrab").exists()


def test_selftest_fails_with_the_reason(tmp_path):
    """A broken install (here: resources without the sample files) exits non-zero and says why."""
    resources = tmp_path / "resources"
    (resources / "icons").mkdir(parents=True)
    (resources / "selftest").mkdir()
    for svg in (ROOT / "resources" / "icons").glob("*.svg"):
        (resources / "icons" / svg.name).write_bytes(svg.read_bytes())
    out, report = _run(tmp_path, CIVITGRAB_RESOURCES=str(resources))
    assert out.returncode == 1
    assert report["ok"] is False
    assert any("sample.jpg" in e for e in report["errors"]) and any("sample.mp4" in e for e in report["errors"])
    assert "selftest FAILED" in out.stderr and "sample.mp4" in out.stderr


def test_short_keeps_the_last_line():
    exc = ImportError("\n\nIMPORTANT: read this\n\nlots of advice\n\nOriginal error was: libfoo.so: bad ELF\n")
    assert reporting.short(exc) == "Original error was: libfoo.so: bad ELF"
    assert reporting.short(RuntimeError("")) == "RuntimeError"
    assert len(reporting.short(ValueError("x" * 1000), 50)) == 50


def test_snapshot_finds_new_and_changed_files(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub").mkdir()
    before = bundle.snapshot(tmp_path)
    assert bundle.compare(tmp_path, before)["entries"] == 2
    (tmp_path / "sub" / "new.log").write_text("x")
    with pytest.raises(reporting.CheckFailed, match=r"1 file\(s\) written .*new.log"):
        bundle.compare(tmp_path, before)


def test_report_exit_codes_and_output_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "r.json"
    monkeypatch.setenv(reporting.ENV_OUT, str(out))
    ok = reporting.Report()
    ok.check("fine", lambda: {"value": 1})
    ok.warn("just so you know")
    assert ok.finish() == 0
    data = json.loads(out.read_text())
    assert data["ok"] and data["checks"]["fine"]["ok"] and data["warnings"] == ["just so you know"]
    assert json.loads(capsys.readouterr().out) == data

    bad = reporting.Report()
    bad.check("broken", lambda: (_ for _ in ()).throw(reporting.CheckFailed("it broke")))
    assert bad.finish() == 1
    assert bad.finish() == 1  # printed once only (the watchdog may race the normal end)
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and "broken: it broke" in captured.err
    assert json.loads(out.read_text())["errors"] == ["broken: it broke"]


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {}, True),
        ("linux", {"DISPLAY": ":0"}, False),
        ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, False),
        ("linux", {"QT_QPA_PLATFORM": "xcb"}, False),
        ("win32", {}, False),
        ("darwin", {}, False),
    ],
)
def test_needs_offscreen(monkeypatch, platform, env, expected):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "platform", platform)
    assert bundle.needs_offscreen() is expected


def test_app_root_of_a_frozen_app(monkeypatch, tmp_path):
    assert bundle.app_root() is None  # not frozen
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    exe = tmp_path / "civitgrab.app" / "Contents" / "MacOS" / "civitgrab"
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    monkeypatch.setattr(sys, "executable", str(exe))
    assert bundle.app_root() == (tmp_path / "civitgrab.app").resolve()
    folder_exe = tmp_path / "dist" / "civitgrab" / "civitgrab"
    folder_exe.parent.mkdir(parents=True)
    folder_exe.write_text("")
    monkeypatch.setattr(sys, "executable", str(folder_exe))
    assert bundle.app_root() == folder_exe.parent.resolve()


def test_keyring_check_reports_the_backend_and_its_plugins():
    report = reporting.Report()
    result = bundle.check_keyring(report)  # conftest: the null backend
    assert result["backend"] == "keyring.backends.null.Keyring" and result["usable"] is False
    assert "SecretService" in result["entry_points"] and "macOS" in result["entry_points"]
    assert report.warnings and "PYTHON_KEYRING_BACKEND" in report.warnings[0]


def test_worker_convert_round_trip(tmp_path):
    src = ROOT / "resources" / "selftest" / "sample.jpg"
    result = samples.worker_convert(str(src), str(tmp_path / "out.webp"))
    assert result["size"] == [96, 96] and result["same_size"] and result["exif_roundtrip"]
    assert result["phash_distance"] <= 6 and result["libwebp"]
    assert (tmp_path / "out.webp").read_bytes()[8:12] == b"WEBP"


def test_samples_are_small():
    """The self-test samples ship in every bundle: a few KB each."""
    for name in ("sample.jpg", "sample.mp4"):
        assert (ROOT / "resources" / "selftest" / name).stat().st_size < 10_000
