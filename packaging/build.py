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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
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


# -- sizes ---------------------------------------------------------------------------------------


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


# -- the frozen app ----------------------------------------------------------------------------


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


FAT_MAGICS = (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")  # fat (universal2) binaries, 32- and 64-bit tables
THIN_MAGICS = {b"\xfe\xed\xfa\xce": ">", b"\xfe\xed\xfa\xcf": ">", b"\xce\xfa\xed\xfe": "<", b"\xcf\xfa\xed\xfe": "<"}
MH_EXECUTE = 2


def macho_filetype(path: Path) -> int | None:
    """The Mach-O file type (MH_EXECUTE, MH_DYLIB, MH_BUNDLE...) or None for other files. A fat
    binary reports the type of its first slice (they all have the same)."""
    import struct

    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
            if magic in FAT_MAGICS:
                count = struct.unpack(">I", fh.read(4))[0]
                if not 0 < count < 16:  # Java class files share the magic
                    return None
                if magic == FAT_MAGICS[0]:
                    _cpu, _sub, offset, _size, _align = struct.unpack(">5I", fh.read(20))
                else:
                    _cpu, _sub, offset, _size, _align, _res = struct.unpack(">2iQQ2I", fh.read(32))
                fh.seek(offset)
                magic = fh.read(4)
            order = THIN_MAGICS.get(magic)
            if order is None:
                return None
            _cpu, _sub, filetype = struct.unpack(order + "iiI", fh.read(12))
            return filetype
    except (OSError, struct.error):
        return None


def is_macho(path: Path) -> bool:
    return macho_filetype(path) is not None


def macos_sign(app: Path) -> str:
    """Ad hoc by default; with $MACOS_SIGN_IDENTITY: every Mach-O inside out, hardened runtime and a
    secure timestamp; entitlements (node, the playwright driver, needs JIT; Python loads unsigned
    plugins) only on executables (they mean nothing on libraries)."""
    identity = os.environ.get("MACOS_SIGN_IDENTITY", "").strip()
    if not identity or identity == "-":
        run(["codesign", "--force", "--deep", "-s", "-", app])
        run(["codesign", "--verify", "--deep", "--strict", app])
        return "ad-hoc"
    keychain = os.environ.get("MACOS_KEYCHAIN")
    base = ["codesign", "--force", "--timestamp", "--options", "runtime", "-s", identity]
    if keychain:
        base += ["--keychain", keychain]
    with_entitlements = [*base, "--entitlements", ENTITLEMENTS]
    nested = [p for p in app.rglob("*") if p.is_file() and not p.is_symlink() and is_macho(p)]
    nested.sort(key=lambda p: len(p.parts), reverse=True)  # deepest first: inside out
    main_exes = {app / "Contents" / "MacOS" / n for n in ("civitgrab", "civitgrab-cli")}
    for path in nested:
        if path not in main_exes:
            cmd = with_entitlements if macho_filetype(path) == MH_EXECUTE else base
            run([*cmd, path], check=True, capture_output=True)
    for path in sorted(main_exes):
        run([*with_entitlements, path])
    run([*with_entitlements, app])
    run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", app])
    return identity


def notarize(path: Path) -> bool:
    """notarytool submit --wait exits 0 for a rejected ("Invalid") submission too: read the status
    and fail with Apple's log unless it is Accepted."""
    apple_id, team, password = (os.environ.get(k, "").strip() for k in ("APPLE_ID", "APPLE_TEAM_ID", "APPLE_APP_PASSWORD"))
    if not (apple_id and team and password):
        log(f"not notarizing {path.name} (APPLE_ID / APPLE_TEAM_ID / APPLE_APP_PASSWORD not set)")
        return False
    auth = ["--apple-id", apple_id, "--team-id", team, "--password", password]
    target = path
    if path.suffix == ".app":
        target = path.with_suffix(".zip")
        run(["ditto", "-c", "-k", "--keepParent", path, target])
    try:
        log(f"$ xcrun notarytool submit {target.name} --wait (credentials from the environment)")
        proc = subprocess.run(["xcrun", "notarytool", "submit", str(target), *auth, "--wait", "--timeout", "30m",
                               "--output-format", "json"], capture_output=True, text=True, timeout=2400)
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result = {}
        status, sub_id = result.get("status"), result.get("id")
        if proc.returncode != 0 or status != "Accepted":
            details = ""
            if sub_id:
                details = subprocess.run(["xcrun", "notarytool", "log", sub_id, *auth], capture_output=True,
                                         text=True, timeout=300).stdout
            raise BuildError(f"notarization of {path.name}: {status or 'no status'} (rc {proc.returncode}) "
                             f"{proc.stderr.strip()[-500:]}\n{details[-4000:]}")
        log(f"notarized {path.name} (submission {sub_id})")
    finally:
        if target != path:
            target.unlink(missing_ok=True)
    run(["xcrun", "stapler", "staple", path])
    run(["xcrun", "stapler", "validate", path])
    return True


def macos_dmg(bundle: Bundle, scratch: Path, signed_by: str) -> Path:
    out = bundle.dist / f"civitgrab-{version()}-macos-{arch()}.dmg"
    stage = scratch / "dmg"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    run(["ditto", bundle.app, stage / "civitgrab.app"])
    (stage / "Applications").symlink_to("/Applications")
    with contextlib.suppress(FileNotFoundError):
        out.unlink()
    run(["hdiutil", "create", "-volname", f"civitgrab {version()}", "-srcfolder", stage, "-fs", "HFS+",
         "-format", "UDZO", "-ov", out], timeout=1200)
    if signed_by != "ad-hoc":
        cmd = ["codesign", "--force", "--timestamp", "-s", signed_by]
        if os.environ.get("MACOS_KEYCHAIN"):
            cmd += ["--keychain", os.environ["MACOS_KEYCHAIN"]]
        run([*cmd, out])
    return out


def dmg_selftest(dmg: Path, scratch: Path) -> dict:
    """Mount the .dmg read-only and run the self-test of the app inside (qutebrowser does the same)."""
    mount = scratch / "mnt"
    mount.mkdir(exist_ok=True)
    run(["hdiutil", "attach", "-nobrowse", "-readonly", "-noautoopen", "-mountpoint", mount, dmg], timeout=300)
    try:
        exe = mount / "civitgrab.app" / "Contents" / "MacOS" / "civitgrab"
        report = run_selftest(Bundle(mount), scratch, "dmg", exe=exe)
    finally:
        run(["hdiutil", "detach", mount, "-force"], check=False, timeout=120)
    return {"ok": report["ok"], "warnings": report.get("warnings", [])}


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
