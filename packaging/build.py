#!/usr/bin/env python3
"""Build the civitgrab app bundle for this OS, smoke-test it, and make the installer.

    python packaging/build.py                 # `make package`
    python packaging/build.py --no-installer  # bundle + self-tests only (what the test suite runs)

Steps:
1. PyInstaller with packaging/civitgrab.spec -> <dist>/civitgrab/ (Windows, Linux) or
   <dist>/civitgrab.app (macOS; signed ad hoc, or with $MACOS_SIGN_IDENTITY).
2. Smoke tests of the frozen app: `civitgrab --version` and `civitgrab-cli --version` with no display,
   then `civitgrab --selftest` offscreen with a throw-away HOME / data dirs, then (POSIX) the same
   self-test with the bundle made read-only (as an unprivileged user when we are root, since root
   ignores permissions): nothing may be written next to the executable.
3. Installer: Windows -> Inno Setup (`iscc`) per-user setup.exe; macOS -> .dmg (hdiutil), notarized
   when APPLE_ID / APPLE_TEAM_ID / APPLE_APP_PASSWORD are set, then mounted and self-tested;
   Linux -> a .tar.gz of the folder.
4. Prints the bundle size (folder, biggest parts, archive) and writes <dist>/build-report.json.

Exit code 0 when everything passed; 1 with the reason otherwise.

This script runs the steps in order and makes the Linux archive and the Windows installer; the
checks of the frozen app are in `bundle_checks.py`, the macOS signing, notarization and .dmg in
`macos_steps.py`, and what they share in `build_common.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

# The steps live beside this script (run as `python packaging/build.py`, its folder is on sys.path).
from build_common import IS_MAC, IS_WIN, ISS, ROOT, SPEC, BuildError, arch, log, mb, os_name, run, version
from bundle_checks import Bundle, check_version, make_writable, readonly_selftest, run_selftest, size_report
from macos_steps import dmg_selftest, macos_dmg, macos_sign, notarize

# -- platform steps ------------------------------------------------------------------------------


def pyinstaller(dist: Path, work: Path, *, clean: bool, full: bool) -> None:
    make_writable(dist / "civitgrab")
    make_writable(dist / "civitgrab.app")
    env = dict(os.environ)
    if full:
        env["CIVITGRAB_SPEC_FULL"] = "1"
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
           "--distpath", dist, "--workpath", work, SPEC]
    if clean:
        cmd.insert(3, "--clean")
    t0 = time.monotonic()
    run(cmd, timeout=1800, env=env, cwd=str(ROOT))
    log(f"PyInstaller done in {time.monotonic() - t0:.0f} s")


def linux_archive(bundle: Bundle) -> Path:
    out = bundle.dist / f"civitgrab-{version()}-linux-{arch()}.tar.gz"
    t0 = time.monotonic()
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle.folder, arcname=f"civitgrab-{version()}")
    log(f"{out.name}: {mb(out.stat().st_size)} MB in {time.monotonic() - t0:.0f} s")
    return out


def find_iscc() -> str | None:
    found = shutil.which("iscc") or shutil.which("ISCC")
    if found:
        return found
    for base in (os.environ.get("PROGRAMFILES(X86)"), os.environ.get("PROGRAMFILES"),  # (case-blind on Windows)
                 os.path.join(os.environ.get("LOCALAPPDATA", ""), "Programs")):
        if base:
            candidate = Path(base) / "Inno Setup 6" / "ISCC.exe"
            if candidate.is_file():
                return str(candidate)
    return None


def windows_installer(bundle: Bundle) -> Path:
    iscc = find_iscc()
    if not iscc:
        raise BuildError("Inno Setup's ISCC.exe was not found (choco install innosetup), or use --no-installer")
    name = f"civitgrab-{version()}-windows-{arch()}-setup"
    numbers = (re.findall(r"\d+", version().split("+")[0]) + ["0"] * 4)[:4]
    run([iscc, "/Q", f"/DAppVersion={version()}", f"/DAppNumericVersion={'.'.join(numbers)}",
         f"/DSourceDir={bundle.folder}", f"/DOutputDir={bundle.dist}",
         f"/DOutputName={name}", f"/DRepoRoot={ROOT}", ISS])
    out = bundle.dist / f"{name}.exe"
    if not out.is_file():
        raise BuildError(f"the installer {out} was not made")
    return out


# -- main ----------------------------------------------------------------------------------------


def build(args) -> dict:
    dist = Path(args.dist).resolve()
    work = Path(args.work).resolve()
    result: dict = {"version": version(), "os": os_name(), "arch": arch(), "python": platform.python_version()}
    t0 = time.monotonic()
    if not args.skip_build:
        pyinstaller(dist, work, clean=args.clean, full=args.full)
    bundle = Bundle(dist)
    bundle.check_exists()
    result["build_seconds"] = round(time.monotonic() - t0)

    if IS_MAC:
        result["signed_by"] = macos_sign(bundle.app)
    result["size"] = size_report(bundle.root)
    log(f"bundle {bundle.root}: {result['size']['total_mb']} MB, {result['size']['files']} files")

    scratch = Path(tempfile.mkdtemp(prefix="civitgrab-build-"))
    scratch.chmod(0o755)  # the read-only run may use an unprivileged user
    try:
        if not args.no_selftest:
            result["version_check"] = check_version(bundle, scratch)
            result["selftest"] = run_selftest(bundle, scratch, "offscreen")
            if not IS_WIN and not args.no_readonly:
                result["readonly_selftest"] = readonly_selftest(bundle, scratch)
        artifacts = []
        if IS_MAC:
            if not args.no_installer:
                notarize(bundle.app)
                dmg = macos_dmg(bundle, scratch, result["signed_by"])
                notarize(dmg)
                artifacts.append(dmg)
                if not args.no_selftest:
                    result["dmg_selftest"] = dmg_selftest(dmg, scratch)
        elif IS_WIN:
            if not args.no_installer:
                artifacts.append(windows_installer(bundle))
        elif not args.no_archive:
            artifacts.append(linux_archive(bundle))
        result["artifacts"] = {a.name: mb(a.stat().st_size) for a in artifacts}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["seconds"] = round(time.monotonic() - t0)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    parser.add_argument("--work", default=str(ROOT / "build" / "pyinstaller"), help="PyInstaller's work folder")
    parser.add_argument("--no-installer", action="store_true", help="bundle and self-tests only")
    parser.add_argument("--no-archive", action="store_true", help="Linux: skip the .tar.gz")
    parser.add_argument("--no-selftest", action="store_true", help="skip running the frozen app")
    parser.add_argument("--no-readonly", action="store_true", help="skip the read-only self-test")
    parser.add_argument("--skip-build", action="store_true", help="test and package an existing bundle")
    parser.add_argument("--clean", action="store_true", help="clear PyInstaller's cache first")
    parser.add_argument("--full", action="store_true",
                        help="no size trimming in the spec (to measure what it saves)")
    parser.add_argument("--report", default=None, help="write the JSON report here (default: <dist>/build-report.json)")
    args = parser.parse_args(argv)
    try:
        result = build(args)
    except (BuildError, subprocess.TimeoutExpired) as exc:
        print(f"[build] FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    report_path = Path(args.report) if args.report else Path(args.dist) / "build-report.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    size = result["size"]
    print(f"[build] OK: {size['folder']} is {size['total_mb']} MB ({size['files']} files); "
          f"playwright's node: {size['node_mb']} MB", flush=True)
    for name, value in result.get("artifacts", {}).items():
        print(f"[build] {name}: {value} MB", flush=True)
    print(f"[build] report: {report_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
