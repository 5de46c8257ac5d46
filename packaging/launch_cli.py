"""Frozen entry point of `civitgrab-cli` (console). PyInstaller runs this as __main__."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from civitgrab_desktop.cli.main import main

    sys.exit(main())
