"""`civitgrab --selftest`: check that this install (a checkout or a frozen bundle) really works.

It is the smoke test of the packaged app (packaging/build.py, the release workflow), and a quick
check for users ("does my install work?"). It:

- imports every civitgrab_desktop module and the libraries a bundle tends to lose (Qt modules and
  plugins, keyring backends, Pillow WebP, playwright's driver);
- opens the main window (offscreen when there is no display) on a temporary library (a temp dir,
  never the user's; an explicit --data-dir / CIVITGRAB_DATA_DIR is honoured), and grabs it;
- converts a sample JPEG to WebP with our EXIF in a worker process (the converter's process pool:
  frozen apps need multiprocessing.freeze_support() for that) and decodes the WebP with Pillow and Qt;
- decodes the first frame of a sample video with QMediaPlayer + QVideoSink (the FFmpeg plugin);
- reports the keyring backend (no keychain is a warning, not a failure: CI machines have none);
- runs playwright's driver (`node cli.js --version`): the browser tag method needs it;
- in a frozen app, checks that nothing was written next to the executable.

It prints one JSON line on stdout (also written to $CIVITGRAB_SELFTEST_OUT when set: a windowed
Windows exe has no stdout) and exits 0, or 1 with the reasons in "errors" (and on stderr).
A watchdog ends a hung self-test with exit code 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import pkgutil
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from civitgrab_desktop import APP_NAME, __version__

LOG = logging.getLogger(__name__)

ENV_OUT = "CIVITGRAB_SELFTEST_OUT"
ENV_TIMEOUT = "CIVITGRAB_SELFTEST_TIMEOUT"
ENV_SCREENSHOT = "CIVITGRAB_SELFTEST_SCREENSHOT"
DEFAULT_TIMEOUT = 180.0
MEDIA_TIMEOUT = 20.0

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


# -- helpers -----------------------------------------------------------------------------------


class CheckFailed(RuntimeError):
    """A check found a problem (the message is the reason shown to the user)."""


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def app_root() -> Path | None:
    """The folder a frozen app was installed as: dist/civitgrab, or the whole civitgrab.app."""
    if not is_frozen():
        return None
    exe_dir = Path(sys.executable).resolve().parent
    if exe_dir.name == "MacOS" and exe_dir.parent.name == "Contents" and exe_dir.parent.parent.suffix == ".app":
        return exe_dir.parent.parent
    return exe_dir


def resources_dir() -> Path | None:
    from civitgrab_desktop.gui.resources import resources_dir as find

    return find()


def sample(name: str) -> Path:
    root = resources_dir()
    path = root / "selftest" / name if root is not None else None
    if path is None or not path.is_file():
        raise CheckFailed(f"sample file resources/selftest/{name} is missing")
    return path


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


def short(exc: BaseException, limit: int = 300) -> str:
    """The gist of an error: its last non-empty line (numpy's ImportError is 20 lines of advice)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def needs_offscreen() -> bool:
    """Linux (and other X11/Wayland systems) without a display: Qt would abort (rc 134)."""
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Report:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "ok": False,
            "app": __version__,
            "frozen": is_frozen(),
            "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()} {platform.machine()}",
            "executable": sys.executable,
        }
        self.checks: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.done = False

    def check(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        try:
            result = fn()
        except Exception as exc:
            return self.fail(name, exc, t0)
        return self.passed(name, result, t0)

    async def acheck(self, name: str, coro) -> Any:
        t0 = time.monotonic()
        try:
            result = await coro
        except Exception as exc:
            return self.fail(name, exc, t0)
        return self.passed(name, result, t0)

    def passed(self, name: str, result: Any, t0: float) -> Any:
        entry = dict(result) if isinstance(result, dict) else {"value": result} if result is not None else {}
        entry = {"ok": True, **entry, "seconds": round(time.monotonic() - t0, 3)}
        self.checks[name] = entry
        return result

    def fail(self, name: str, exc: BaseException, t0: float | None = None) -> None:
        reason = short(exc, 1000)
        if not isinstance(exc, CheckFailed | TimeoutError):
            reason = f"{type(exc).__name__}: {reason}"
            LOG.error("selftest %s failed", name, exc_info=exc)
        entry: dict[str, Any] = {"ok": False, "error": reason}
        if t0 is not None:
            entry["seconds"] = round(time.monotonic() - t0, 3)
        self.checks[name] = entry
        self.errors.append(f"{name}: {reason}")
        return None

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def finish(self, *, forced_error: str | None = None) -> int:
        """Print (once) and return the exit code."""
        with self._lock:
            if self.done:
                return 1
            self.done = True
            if forced_error:
                self.errors.append(forced_error)
            self.data["checks"] = self.checks
            self.data["warnings"] = self.warnings
            self.data["errors"] = self.errors
            self.data["ok"] = not self.errors
            self.data["seconds"] = round(time.monotonic() - self.started, 2)
            text = json.dumps(self.data, sort_keys=False)
            out = os.environ.get(ENV_OUT)
            if out:
                with contextlib.suppress(OSError):
                    Path(out).write_text(text + "\n", encoding="utf-8")
            stream = sys.stdout
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.write(text + "\n")
                    stream.flush()
            if self.errors and sys.stderr is not None:
                with contextlib.suppress(Exception):
                    sys.stderr.write("civitgrab selftest FAILED:\n" + "".join(f"  - {e}\n" for e in self.errors))
                    sys.stderr.flush()
            return 0 if not self.errors else 1


# -- checks without Qt ---------------------------------------------------------------------------


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
    from playwright._impl._driver import compute_driver_executable

    node, cli = compute_driver_executable()
    for path in (node, cli):
        if not Path(path).is_file():
            raise CheckFailed(f"playwright driver file missing: {path}")
    env = dict(os.environ)
    env.pop("NODE_OPTIONS", None)
    out = subprocess.run([node, cli, "--version"], capture_output=True, text=True, timeout=60, env=env,
                         stdin=subprocess.DEVNULL)
    text = (out.stdout or out.stderr).strip()
    if out.returncode != 0 or not text.startswith("Version"):
        raise CheckFailed(f"playwright driver does not run (rc {out.returncode}): {text[:200]}")
    size = Path(node).stat().st_size
    browser = None
    with contextlib.suppress(Exception):
        from civitgrab_desktop.core.civitai.browsers import find_browser

        browser = find_browser("").label
    return {"driver": text.split()[-1], "node_mb": round(size / 2**20, 1), "system_browser": browser}


def worker_convert(src: str, dst: str) -> dict[str, Any]:
    """Runs in a worker process (like the converter): JPEG -> WebP with our EXIF, verified."""
    from PIL import features

    from civitgrab_desktop.core.media.embed import build_metadata
    from civitgrab_desktop.core.media.exif import read_exif
    from civitgrab_desktop.core.media.phash import verify_conversion
    from civitgrab_desktop.core.media.webp import convert_to_webp
    from civitgrab_desktop.core.media.webp_riff import parse_chunks, xmp_payload
    from civitgrab_desktop.core.media.xmp import read_xmp

    if not features.check("webp"):
        raise CheckFailed("Pillow has no WebP support")
    info = {"id": 1, "username": "selftest", "meta": {"prompt": "self test ✓"}, "createdAt": "2024-01-02T03:04:05Z"}
    built = build_metadata(info, [{"name": "test", "score": 1}])
    outcome = convert_to_webp(src, dst, exif=built.exif.data, xmp=built.xmp, quality=90)
    check = verify_conversion(src, dst)
    comment = read_exif(dst).get("user_comment") or ""
    with open(dst, "rb") as fh:
        xmp = read_xmp(xmp_payload(parse_chunks(fh.read())))
    return {
        "pid": os.getpid(),
        "size": [outcome.width, outcome.height],
        "webp_bytes": outcome.webp_bytes,
        "phash_distance": check.distance,
        "same_size": check.same_size,
        "exif_roundtrip": comment == "self test ✓" and xmp["description"] == "self test ✓" and xmp["subject"] == ["test"],
        "libwebp": features.version("webp"),
    }


def pool_context():
    """The converter's own worker context (start method and forkserver preload), so the self-test
    starts workers exactly the way a conversion does."""
    from civitgrab_desktop.jobs.convert import pool_context as converter_context

    return converter_context()


# -- checks with Qt --------------------------------------------------------------------------------


def check_qt_image(webp: Path, jpeg: Path) -> dict[str, Any]:
    from PySide6.QtGui import QImageReader

    formats = sorted(bytes(f.data()).decode() for f in QImageReader.supportedImageFormats())
    sizes = {}
    for path in (jpeg, webp):
        reader = QImageReader(str(path))
        image = reader.read()
        if image.isNull():
            raise CheckFailed(f"Qt cannot decode {path.suffix}: {reader.errorString()}")
        sizes[path.suffix.lstrip(".")] = [image.width(), image.height()]
    missing = {"jpeg", "webp", "png", "gif", "svg"} - set(formats)
    if missing:
        raise CheckFailed(f"Qt image formats missing: {', '.join(sorted(missing))}")
    return {"decoded": sizes, "formats": formats}


async def first_video_frame(path: Path | None = None, timeout: float = MEDIA_TIMEOUT) -> dict[str, Any]:
    """The thumbnail pattern of platform notes §3: LoadedMedia, then pause(), then the first frame."""
    from PySide6.QtCore import QUrl

    path = path or sample("sample.mp4")
    from PySide6.QtMultimedia import QMediaPlayer, QVideoSink

    loop = asyncio.get_running_loop()
    loaded: asyncio.Future = loop.create_future()
    got: asyncio.Future = loop.create_future()
    player = QMediaPlayer()
    if not player.isAvailable():
        raise CheckFailed("no multimedia backend (Qt's FFmpeg plugin did not load)")
    sink = QVideoSink()
    player.setVideoSink(sink)

    def on_status(status) -> None:
        if status == QMediaPlayer.MediaStatus.LoadedMedia and not loaded.done():
            loaded.set_result(True)
        elif status == QMediaPlayer.MediaStatus.InvalidMedia:
            for f in (loaded, got):
                if not f.done():
                    f.set_exception(CheckFailed(f"invalid media: {player.errorString() or 'no decoder'}"))

    def on_error(_error, message: str = "") -> None:
        for f in (loaded, got):
            if not f.done():
                f.set_exception(CheckFailed(f"media player error: {message or player.errorString()}"))

    def on_frame(frame) -> None:
        if frame.isValid() and not got.done():
            got.set_result(frame.toImage())

    player.mediaStatusChanged.connect(on_status)
    player.errorOccurred.connect(on_error)
    sink.videoFrameChanged.connect(on_frame)
    try:
        player.setSource(QUrl.fromLocalFile(str(path)))
        try:
            await asyncio.wait_for(loaded, timeout)
        except TimeoutError:
            raise CheckFailed(f"video not loaded after {timeout:.0f} s (status {player.mediaStatus().name})") from None
        player.pause()
        try:
            image = await asyncio.wait_for(got, timeout)
        except TimeoutError:
            raise CheckFailed(f"no video frame after {timeout:.0f} s") from None
    finally:
        with contextlib.suppress(Exception):
            player.stop()
            player.setSource(QUrl())
            sink.videoFrameChanged.disconnect(on_frame)
    if image.isNull() or image.width() == 0:
        raise CheckFailed("the first video frame is empty")
    small = image.scaled(8, 8)
    total = sum(small.pixelColor(x, y).value() for x in range(8) for y in range(8)) / 64
    if total < 8:
        raise CheckFailed("the first video frame is black")
    return {"size": [image.width(), image.height()], "mean_value": round(total, 1)}


async def check_window(app, window, ctx) -> dict[str, Any]:
    await asyncio.sleep(0.2)  # a few event-loop turns: layouts, first paint
    app.processEvents()
    pixmap = window.grab()
    if pixmap.isNull() or pixmap.width() < 200 or pixmap.height() < 200:
        raise CheckFailed(f"the main window did not render ({pixmap.width()}x{pixmap.height()})")
    shot = os.environ.get(ENV_SCREENSHOT)
    if shot:
        pixmap.save(shot)
    pages = [p.title for p in window.pages.values()]
    if not pages:
        raise CheckFailed("the main window has no pages")
    return {"size": [pixmap.width(), pixmap.height()], "pages": pages, "visible": window.isVisible()}


async def check_library(ctx) -> dict[str, Any]:
    services = ctx.services
    if services.library is None:
        raise CheckFailed("the library did not open")
    path = Path(services.paths.library)
    if not path.is_file():
        raise CheckFailed(f"no library file at {path}")
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    if "images" not in tables:
        raise CheckFailed(f"the library has no images table ({', '.join(tables)})")
    return {"schema_version": version, "journal_mode": mode, "tables": len(tables), "sqlite": sqlite3.sqlite_version}


async def check_worker(work: Path) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    jpeg = sample("sample.jpg")
    loop = asyncio.get_running_loop()
    dst = work / "sample.webp"
    with ProcessPoolExecutor(1, mp_context=pool_context()) as pool:
        result = await asyncio.wait_for(loop.run_in_executor(pool, worker_convert, str(jpeg), str(dst)), 90)
    if result["pid"] == os.getpid():
        raise CheckFailed("the worker ran in this process")
    if result["size"] != [96, 96] or not result["same_size"]:
        raise CheckFailed(f"WebP has the wrong size {result['size']}")
    if result["phash_distance"] > 6:
        raise CheckFailed(f"WebP differs from the JPEG (phash distance {result['phash_distance']})")
    if not result["exif_roundtrip"]:
        raise CheckFailed("the EXIF and XMP written into the WebP did not read back")
    result["start_method"] = pool_context().get_start_method()
    result.pop("pid")
    from PIL import Image

    with Image.open(dst) as im:
        im.load()
        if im.format != "WEBP":
            raise CheckFailed(f"the converted file is {im.format}, not WEBP")
    return result


async def gui_checks(app, services, args, report: Report, work: Path) -> None:
    from civitgrab_desktop.app import ExceptionHook
    from civitgrab_desktop.gui.context import AppContext
    from civitgrab_desktop.gui.main_window import MainWindow
    from civitgrab_desktop.gui.theme import ThemeManager

    theme = ThemeManager(app)
    theme.apply(services.settings.get("theme"))
    hook = ExceptionHook(services.log_file)
    hook.install()
    errors_before = hook.count
    try:
        hook.attach_loop(asyncio.get_running_loop())
        ctx = AppContext(services, api_base_overridden=bool(args.api_base))
        window = MainWindow(ctx, theme)
        hook.parent = window
        closed = asyncio.Event()
        window.closed.connect(closed.set)
        window.show()
        report.data["platform"] = app.platformName()
        report.data["library"] = str(services.paths.library)
        try:
            await report.acheck("startup", window.started())
            await report.acheck("window", check_window(app, window, ctx))
            await report.acheck("library", check_library(ctx))
            await report.acheck("convert_in_worker", check_worker(work))
            webp = work / "sample.webp"
            if webp.exists():
                report.check("qt_images", lambda: check_qt_image(webp, sample("sample.jpg")))
            await report.acheck("video_first_frame", first_video_frame())
        finally:
            window.request_quit()
            try:
                await asyncio.wait_for(closed.wait(), 60)
                LOG.info("civitgrab closed cleanly (selftest)")
            except TimeoutError:
                report.fail("shutdown", CheckFailed("the window did not close within 60 s"))
        if hook.count > errors_before:
            report.fail("errors", CheckFailed(f"{hook.count - errors_before} unhandled error(s) (see the log)"))
    finally:
        hook.uninstall()


# -- entry -------------------------------------------------------------------------------------


def _start_watchdog(report: Report, seconds: float) -> None:
    def fire() -> None:
        code = report.finish(forced_error=f"timeout: the self-test did not finish within {seconds:.0f} s")
        if code:  # only if the normal path has not printed yet
            with contextlib.suppress(Exception):
                faulthandler_dump()
            os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def faulthandler_dump() -> None:
    import faulthandler

    if sys.stderr is not None:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)


def run(args) -> int:
    """Run the self-test; `args` is the GUI's argparse namespace (data_dir, api_base, debug)."""
    report = Report()
    try:
        timeout = float(os.environ.get(ENV_TIMEOUT) or DEFAULT_TIMEOUT)
    except ValueError:
        timeout = DEFAULT_TIMEOUT
    _start_watchdog(report, timeout)
    if needs_offscreen():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("QT_API", "pyside6")

    root = app_root()
    before = snapshot(root) if root is not None else None
    from civitgrab_desktop.core.config import ENV_DATA_DIR, default_data_dir

    user_dir = default_data_dir()
    user_dir_existed = user_dir.exists()
    explicit = args.data_dir or os.environ.get(ENV_DATA_DIR)
    work = Path(tempfile.mkdtemp(prefix=f"{APP_NAME}-selftest-"))
    data_dir = Path(explicit) if explicit else work / "data"
    report.data["data_dir"] = "explicit" if explicit else "temporary"
    try:
        _run_checks(args, report, data_dir, work)
    except Exception as exc:  # a bug in the self-test itself: still a report
        report.fail("selftest", exc)
        if sys.stderr is not None:  # None in a windowed Windows exe
            traceback.print_exc()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if root is not None and before is not None:
        report.check("nothing_written_next_to_executable", lambda: _compare(root, before))
    if not explicit and not user_dir_existed and user_dir.exists():
        report.fail("user_data_untouched", CheckFailed(f"the user's data dir {user_dir} was created"))
    logging.shutdown()
    return report.finish()


def _compare(root: Path, before: dict[str, tuple[int, int]]) -> dict[str, Any]:
    after = snapshot(root)
    changed = sorted(k for k in after if before.get(k) != after[k])
    if changed:
        raise CheckFailed(f"{len(changed)} file(s) written in {root}: {', '.join(changed[:5])}")
    return {"root": str(root), "entries": len(after)}


def _run_checks(args, report: Report, data_dir: Path, work: Path) -> None:
    report.check("imports", check_imports)
    report.check("keyring", lambda: check_keyring(report))
    report.check("playwright_driver", check_playwright)

    from civitgrab_desktop.app import create_application
    from civitgrab_desktop.services import Services

    app = create_application()
    services = Services.create(data_dir=str(data_dir), api_base=args.api_base, debug=args.debug)
    report.data["qt"] = _qt_version()

    import qasync

    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(app)) as runner:
        runner.run(gui_checks(app, services, args, report, work))


def _qt_version() -> str:
    import PySide6
    from PySide6.QtCore import qVersion

    return f"PySide6 {PySide6.__version__}, Qt {qVersion()}"
