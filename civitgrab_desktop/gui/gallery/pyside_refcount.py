"""Work around PySide6 6.12's reference counting of None, True and False on Python < 3.12.

PySide6 6.12 (a stable-ABI build) treats None, True and False as immortal, as they are on Python
3.12+: it hands them out without taking a reference. On Python 3.11 every such hand-out still
drops one: each call of a void method (`label.setText(...)`, every `painter.drawRect(...)`), each
`signal.emit()`, each `data()` override returning None takes one reference from None / True /
False. After a few thousand calls the count reaches zero and the interpreter aborts with
"Fatal Python error: none_dealloc: deallocating None" (or bool_dealloc). A gallery paints tens
of thousands of such calls per second; the rest of the app gets there within minutes.

`apply()` gives those objects a reference count so large (2**56) that no session can use it up,
which is what immortality means on 3.12. It runs once, before any Qt object is used (imported at
the top of the main window module), and is a no-op on Python 3.12+.
"""

from __future__ import annotations

import ctypes
import sys

_BUMP = 1 << 56
_applied = False


def apply() -> bool:
    """Make None, True, False (and Ellipsis, NotImplemented) effectively immortal; True when the
    counts were raised (Python < 3.12 only)."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    for obj in (None, True, False, Ellipsis, NotImplemented):
        before = sys.getrefcount(obj)
        cell = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt: the first field of PyObject
        cell.value += _BUMP
        if abs(sys.getrefcount(obj) - before - _BUMP) > 1024:  # not a layout we know: undo
            cell.value -= _BUMP
            return False
    _applied = True
    return True


apply()
