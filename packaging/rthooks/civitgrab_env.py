"""PyInstaller runtime hook: runs in the frozen app before civitgrab's own code."""

import os
import sys

# qasync picks its Qt binding from QT_API; only PySide6 is bundled, don't let it probe the others.
os.environ.setdefault("QT_API", "pyside6")

if sys.platform == "win32":
    # Group the taskbar button with the Start menu shortcut (same AppUserModelID as the installer's).
    try:
        import ctypes

        ctypes.windll.shell32.SetCurrentProcessExplicitAppUserModelID("civitgrab.civitgrab")
    except Exception:
        pass
