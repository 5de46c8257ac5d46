"""The self-test's checks that need no Qt: everything imports (our modules and what a bundle tends to
lose), the keyring backend, Playwright's driver, and a frozen app's folder left untouched."""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import sys
from pathlib import Path
from typing import Any

from civitgrab_desktop.selftest.report import CheckFailed, Report, is_frozen, short

# Imported by name (besides every civitgrab_desktop module): what a frozen app must still have.
THIRD_PARTY = (
    "PySide6.QtCore",
    "PySide6.QtGui",
    "PySide6.QtWidgets",
    "PySide6.QtSvg",
    "PySide6.QtMultimedia",
    "PySide6.QtMultimediaWidgets",
    "qasync",
    "aiohttp",
    "tenacity",
    "PIL.Image",
    "PIL.WebPImagePlugin",
    "PIL.JpegImagePlugin",
    "PIL.PngImagePlugin",
    "PIL.GifImagePlugin",
    "imagehash",
    "numpy",
    "piexif",
    "platformdirs",
    "keyring",
    "sqlite3",
    "playwright.async_api",
)

# The backend module each OS needs (keyring finds backends through entry points: metadata too).
PLATFORM_KEYRING = {
    "win32": "keyring.backends.Windows",
    "darwin": "keyring.backends.macOS",
}
WEAK_KEYRING_MODULES = ("keyring.backends.fail", "keyring.backends.null")


def app_root() -> Path | None:
    """The folder a frozen app was installed as: dist/civitgrab, or the whole civitgrab.app."""
    if not is_frozen():
        return None
    exe_dir = Path(sys.executable).resolve().parent
    if exe_dir.name == "MacOS" and exe_dir.parent.name == "Contents" and exe_dir.parent.parent.suffix == ".app":
        return exe_dir.parent.parent
    return exe_dir


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root` with (size, mtime_ns); symlinks are not followed."""
    found: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            size = 0 if name in dirnames else st.st_size
            found[os.path.relpath(path, root)] = (size, st.st_mtime_ns if name not in dirnames else 0)
    return found


def compare(root: Path, before: dict[str, tuple[int, int]]) -> dict[str, Any]:
    after = snapshot(root)
    changed = sorted(k for k in after if before.get(k) != after[k])
    if changed:
        raise CheckFailed(f"{len(changed)} file(s) written in {root}: {', '.join(changed[:5])}")
    return {"root": str(root), "entries": len(after)}


def needs_offscreen() -> bool:
    """Linux (and other X11/Wayland systems) without a display: Qt would abort (rc 134)."""
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_imports() -> dict[str, Any]:
    import civitgrab_desktop

    names = [
        m.name
        for m in pkgutil.walk_packages(civitgrab_desktop.__path__, "civitgrab_desktop.")
        if not m.name.endswith("__main__")
    ]
    failed = []
    for name in sorted(set(names)) + list(THIRD_PARTY):
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name} ({type(exc).__name__}: {short(exc)})")
    if len(names) < 20:
        failed.append(f"only {len(names)} civitgrab_desktop modules found")
    if failed:
        raise CheckFailed("cannot import " + "; ".join(failed))
    return {"modules": len(names), "third_party": len(THIRD_PARTY)}


def check_keyring(report: Report) -> dict[str, Any]:
    from importlib.metadata import entry_points

    import keyring
    import keyring.backend

    backend = keyring.get_keyring()
    module = type(backend).__module__
    name = f"{module}.{type(backend).__name__}"
    plugins = sorted({ep.name for ep in entry_points(group="keyring.backends")})
    needed = PLATFORM_KEYRING.get(sys.platform, "keyring.backends.SecretService")
    importlib.import_module(needed)
    if not plugins:
        raise CheckFailed("keyring's backend entry points are missing (package metadata not bundled)")
    weak = module in WEAK_KEYRING_MODULES or module.startswith(WEAK_KEYRING_MODULES)
    via_env = bool(os.environ.get("PYTHON_KEYRING_BACKEND"))
    if weak:
        report.warn(f"no usable OS keychain ({name}{', set by PYTHON_KEYRING_BACKEND' if via_env else ''}); "
                    "the API key can still come from CIVITAI_API_KEY")
    return {"backend": name, "usable": not weak, "entry_points": plugins, "platform_backend": needed}


def check_playwright() -> dict[str, Any]:
    """Playwright's driver runs (the browser tag method needs it); which system browser it would drive."""
    from civitgrab_desktop.core.civitai.browsers import BrowserUnavailable, find_browser, playwright_driver

    try:
        found = playwright_driver()
    except BrowserUnavailable as exc:
        raise CheckFailed(str(exc)) from None
    browser = None
    with contextlib.suppress(Exception):
        browser = find_browser("").label
    return {**found, "system_browser": browser}
