"""`make screenshots`: regenerate docs/screenshots/*.png (every page, 1280x800, light and dark).

For each theme: a fresh replica of CivitAI (tests/fake_civitai, on a free port), a fresh library
that civitgrab-cli fills (alice's images, and model version 2012 for its videos), then the tour
(tests/gui/screenshot_tour.py) under Xvfb. Needs xvfb-run (Debian package xvfb).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fake_civitai.server import FakeCivitai, default_dataset

REPO = Path(__file__).resolve().parents[2]


def run_cli(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "civitgrab_desktop.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def one_theme(theme: str, out: Path, work: Path) -> None:
    data, downloads = work / theme / "data", work / theme / "downloads"
    with FakeCivitai(default_dataset()) as fake:
        env = {**os.environ, "CIVITGRAB_DATA_DIR": str(data), "CIVITGRAB_API_BASE": fake.base_url,
               "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring", "PYTHONPATH": str(REPO),
               "QT_LOGGING_RULES": "qt.multimedia.*=false"}
        run_cli(env, "--mode", "1", "--username", "alice", "--output_dir", str(downloads))
        run_cli(env, "--mode", "4", "--model_version_id", "2012", "--output_dir", str(downloads))
        subprocess.run(
            ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24 -nolisten tcp", sys.executable, "-m",
             "tests.gui.screenshot_tour", "--data-dir", str(data), "--output-dir", str(downloads),
             "--api-base", fake.base_url, "--theme", theme, "--out", str(out)],
            env=env, check=True, timeout=600,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make_screenshots")
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument("--theme", choices=("light", "dark"), action="append")
    args = parser.parse_args(argv)
    if shutil.which("xvfb-run") is None:
        print("xvfb-run is missing (apt-get install xvfb xauth)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="civitgrab-shots-"))
    try:
        for theme in args.theme or ["light", "dark"]:
            one_theme(theme, Path(args.out), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
