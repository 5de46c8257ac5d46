"""Where the app's resources (icons, app icon) live, in a checkout, an install or a frozen build."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

ENV_RESOURCES = "CIVITGRAB_RESOURCES"


@lru_cache(maxsize=1)
def resources_dir() -> Path | None:
    """The `resources/` folder: $CIVITGRAB_RESOURCES, PyInstaller's bundle, or the source tree."""
    candidates = []
    if os.environ.get(ENV_RESOURCES):
        candidates.append(Path(os.environ[ENV_RESOURCES]))
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        candidates.append(Path(frozen_root) / "resources")
    package_root = Path(__file__).resolve().parents[1]
    candidates += [package_root / "resources", package_root.parent / "resources"]
    for candidate in candidates:
        if (candidate / "icons").is_dir():
            return candidate
    return None


def resource_path(*parts: str) -> Path | None:
    root = resources_dir()
    if root is None:
        return None
    path = root.joinpath(*parts)
    return path if path.exists() else None
