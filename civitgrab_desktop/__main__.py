"""civitgrab (the desktop app). `python -m civitgrab_desktop` or the `civitgrab` launcher.

Nothing here imports Qt: `civitgrab --version` and `--help` work without a display.
"""

from __future__ import annotations

import argparse
import os
import sys

from civitgrab_desktop import __version__
from civitgrab_desktop.core.civitai.hosts import DEFAULT_SITE, site_names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="civitgrab",
        description="Download CivitAI images and videos at full resolution, fetch their tags, convert them to "
        "WebP and browse the collection. For the command line, use civitgrab-cli.",
    )
    parser.add_argument("--version", action="version", version=f"civitgrab {__version__}")
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", metavar="DIR", default=None,
                        help="library, logs and settings folder (default: per-user data dir; env CIVITGRAB_DATA_DIR)")
    parser.add_argument("--api-base", "--api_base", dest="api_base", metavar="URL", default=None,
                        help=f"CivitAI base URL (default {DEFAULT_SITE}; env CIVITGRAB_API_BASE)")
    parser.add_argument("--debug", action="store_true", help="verbose logging")
    parser.add_argument("--selftest", action="store_true",
                        help="open the main window, print a JSON report and quit (for packaging checks)")
    parser.add_argument("links", nargs="*", metavar="LINK",
                        help=f"{site_names()} links to put in the download form")
    return parser


def _no_display() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if _no_display():
        if args.selftest:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        else:
            print(
                "civitgrab: no display found (DISPLAY and WAYLAND_DISPLAY are unset). Start it from a desktop "
                "session, set QT_QPA_PLATFORM=offscreen, or use civitgrab-cli.",
                file=sys.stderr,
            )
            return 1
    if args.selftest:  # packaging check (civitgrab_desktop/selftest/)
        from civitgrab_desktop.selftest import run as selftest

        return selftest(args)
    from civitgrab_desktop.app import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
