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

The pieces: `report.py` (the report and its JSON line), `bundle.py` (checks without Qt),
`samples.py` (sample files, conversion in a worker process), `window.py` (the checks with Qt).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from civitgrab_desktop import APP_NAME
from civitgrab_desktop.selftest.bundle import (
    app_root,
    check_imports,
    check_keyring,
    check_playwright,
    compare,
    needs_offscreen,
    snapshot,
)
from civitgrab_desktop.selftest.report import CheckFailed, Report

ENV_TIMEOUT = "CIVITGRAB_SELFTEST_TIMEOUT"
DEFAULT_TIMEOUT = 180.0


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
        report.check("imports", check_imports)
        report.check("keyring", lambda: check_keyring(report))
        report.check("playwright_driver", check_playwright)
        from civitgrab_desktop.selftest.window import run_in_window  # imports Qt: after the import check

        run_in_window(args, report, data_dir, work)
    except Exception as exc:  # a bug in the self-test itself: still a report
        report.fail("selftest", exc)
        if sys.stderr is not None:  # None in a windowed Windows exe
            traceback.print_exc()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if root is not None and before is not None:
        report.check("nothing_written_next_to_executable", lambda: compare(root, before))
    if not explicit and not user_dir_existed and user_dir.exists():
        report.fail("user_data_untouched", CheckFailed(f"the user's data dir {user_dir} was created"))
    logging.shutdown()
    return report.finish()
