"""Finding a Chromium-family browser already installed on the machine, for Playwright.

We never download a browser at run time (`playwright install`): the app drives whatever
Chromium, Chrome or Edge the system has, in the standard install places of Windows, macOS and
Linux. A user setting (`browser_path`, `--browser`) wins: an executable path, or a Playwright
channel name such as `chrome` or `msedge`, or `firefox` for an installed Firefox (when a site
challenge refuses the headless Chromium shell, an ordinary installed browser often passes).
`playwright_driver()` checks that Playwright's own driver runs (the self-test asks; a packaged app
can lose it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from civitgrab_desktop.core.civitai.client import CivitaiError

CHANNELS = ("chrome", "chrome-beta", "msedge", "msedge-beta", "msedge-dev", "chromium")
# An installed Firefox, driven over WebDriver BiDi (Playwright's "moz-firefox" channels).
FIREFOX_CHANNELS = {"firefox": "moz-firefox", "moz-firefox": "moz-firefox",
                    "firefox-beta": "moz-firefox-beta", "moz-firefox-beta": "moz-firefox-beta",
                    "firefox-nightly": "moz-firefox-nightly", "moz-firefox-nightly": "moz-firefox-nightly"}

LINUX_COMMANDS = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "microsoft-edge",
    "microsoft-edge-stable",
    "brave-browser",
)
LINUX_PATHS = (
    "/usr/bin/chromium",
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium-browser",
    "/snap/bin/chromium",
    "/usr/bin/google-chrome",
    "/opt/google/chrome/chrome",
    "/usr/bin/microsoft-edge",
    "/opt/microsoft/msedge/msedge",
)
MAC_APPS = (
    "Google Chrome.app/Contents/MacOS/Google Chrome",
    "Chromium.app/Contents/MacOS/Chromium",
    "Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    "Brave Browser.app/Contents/MacOS/Brave Browser",
)
WINDOWS_EXES = (
    r"Google\Chrome\Application\chrome.exe",
    r"Microsoft\Edge\Application\msedge.exe",
    r"Chromium\Application\chrome.exe",
    r"BraveSoftware\Brave-Browser\Application\brave.exe",
)

# Platform notes §5: no GPU, no background traffic, no first-run UI; /dev/shm is small in containers.
BASE_ARGS = (
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


class BrowserUnavailable(CivitaiError):
    """The browser method cannot run on this machine (nothing to retry per image)."""


class BrowserNotFound(BrowserUnavailable):
    """No usable browser: the user has to install one or point the setting at it."""


@dataclass(frozen=True)
class BrowserChoice:
    """How Playwright should start the browser: an executable path, or a channel name."""

    executable_path: str | None = None
    channel: str | None = None
    engine: str = "chromium"  # the Playwright browser type: chromium | firefox

    @property
    def label(self) -> str:
        return self.executable_path or f"channel {self.channel}"

    def launch_kwargs(self) -> dict[str, str]:
        if self.engine == "firefox":
            kwargs = {"channel": self.channel or "moz-firefox"}
            if self.executable_path:
                kwargs["executable_path"] = self.executable_path
            return kwargs
        if self.executable_path:
            return {"executable_path": self.executable_path}
        return {"channel": self.channel or "chromium"}


def launch_args(platform: str | None = None, euid: int | None = None) -> list[str]:
    """Chromium flags; `--no-sandbox` only as root on Linux (the sandbox refuses to start there)."""
    platform = platform or sys.platform
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else -1
    args = list(BASE_ARGS)
    if platform.startswith("linux") and euid == 0:
        args.insert(0, "--no-sandbox")
    return args


def candidate_paths(platform: str | None = None, env: dict[str, str] | None = None) -> list[Path]:
    """Standard install locations for this platform, most likely first."""
    platform = platform or sys.platform
    env = dict(os.environ if env is None else env)
    if platform.startswith("win"):
        roots = [env.get(k) for k in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA")]
        return [Path(root, *PureWindowsPath(exe).parts) for exe in WINDOWS_EXES for root in roots if root]
    if platform == "darwin":
        roots = [Path("/Applications"), Path(env.get("HOME", "~")).expanduser() / "Applications"]
        return [root / app for app in MAC_APPS for root in roots]
    return [Path(p) for p in LINUX_PATHS]


def _usable(path: Path) -> bool:
    return path.is_file() and (sys.platform.startswith("win") or os.access(path, os.X_OK))


def find_browser(
    override: str | None = None,
    *,
    platform: str | None = None,
    env: dict[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    bundled: Iterable[str] = (),
) -> BrowserChoice:
    """The browser to drive. `override` (the setting / --browser) is a path or a channel name;
    otherwise the PATH (Linux), the standard install places, then a Playwright-managed browser
    that happens to be installed (`bundled`). Raises BrowserNotFound with what to do."""
    if override and override.strip():
        text = override.strip()
        if text.lower() in CHANNELS:
            return BrowserChoice(channel=text.lower())
        if text.lower() in FIREFOX_CHANNELS:
            return BrowserChoice(channel=FIREFOX_CHANNELS[text.lower()], engine="firefox")
        path = Path(text).expanduser()
        found = str(path) if _usable(path) else which(text)
        if found:
            engine = "firefox" if "firefox" in Path(found).name.lower() else "chromium"
            return BrowserChoice(executable_path=found, engine=engine)
        raise BrowserNotFound(f"the browser set in browser_path / --browser was not found: {text}")
    platform = platform or sys.platform
    if platform.startswith("linux"):
        for command in LINUX_COMMANDS:
            found = which(command)
            if found:
                return BrowserChoice(executable_path=found)
    for path in [*candidate_paths(platform, env), *map(Path, bundled)]:
        if _usable(path):
            return BrowserChoice(executable_path=str(path))
    raise BrowserNotFound(
        "no Chromium, Chrome or Edge found on this machine; install one, or set its path "
        "(setting browser_path, or --browser PATH)"
    )


def playwright_driver() -> dict[str, object]:
    """Run Playwright's own driver (`node cli.js --version`), which the browser method needs and a
    packaged app can lose. Returns its version and the size of its node binary; raises
    BrowserUnavailable with what is wrong."""
    from playwright._impl._driver import compute_driver_executable

    node, cli = compute_driver_executable()
    for path in (node, cli):
        if not Path(path).is_file():
            raise BrowserUnavailable(f"playwright driver file missing: {path}")
    env = dict(os.environ)
    env.pop("NODE_OPTIONS", None)
    out = subprocess.run([node, cli, "--version"], capture_output=True, text=True, timeout=60, env=env,
                         stdin=subprocess.DEVNULL)
    text = (out.stdout or out.stderr).strip()
    if out.returncode != 0 or not text.startswith("Version"):
        raise BrowserUnavailable(f"playwright driver does not run (rc {out.returncode}): {text[:200]}")
    return {"driver": text.split()[-1], "node_mb": round(Path(node).stat().st_size / 2**20, 1)}
