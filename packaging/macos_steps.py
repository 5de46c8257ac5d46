"""The macOS steps: sign the .app (ad hoc, or every Mach-O inside out with $MACOS_SIGN_IDENTITY),
notarize and staple when Apple credentials are set, make the .dmg and self-test the app inside it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from build_common import ENTITLEMENTS, BuildError, arch, log, run, version
from bundle_checks import Bundle, run_selftest

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
