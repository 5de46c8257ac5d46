"""Frozen entry point of `civitgrab` (the windowed app). PyInstaller runs this as __main__."""

import multiprocessing
import sys

if __name__ == "__main__":
    # The converter's worker processes (spawn / forkserver) re-run this executable: let them.
    multiprocessing.freeze_support()
    from civitgrab_desktop.__main__ import main

    sys.exit(main())
