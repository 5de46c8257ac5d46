"""The API key never leaks: after a download (key in the environment, and on the command line),
tags by both methods, a conversion, an update and a CSV export, all with debug logging, the key is
in no file the app wrote (logs, library and its WAL, sidecars, meta files, WebP EXIF, CSV, saved
queries, thumbnails), in no URL, and every request that carried it went to the API base.
(Links to other hosts, with a key set, are covered in test_hostile_service.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.helpers import assert_clean_output
from tests.reliability.report import REPORT

pytestmark = pytest.mark.reliability

KEY = "cgTEST0secret0key0" + "7f3a9c" * 4
has_chromium = any(Path(p).exists() for p in ("/usr/bin/chromium", "/usr/lib/chromium/chromium"))


def encodings_of(secret: str) -> list[bytes]:
    """The forms a leaked key could take in a file: UTF-8 (logs, JSON, CSV, SQLite text) and the
    UTF-16 of EXIF's "unicode" UserComment / XP tags."""
    return [secret.encode(), secret.encode("utf-16-le"), secret.encode("utf-16-be")]


def test_the_api_key_is_in_no_file_no_url_and_goes_only_to_the_api_base(ws, fake):
    runs = [
        ws.cli("--debug", "--mode", "1", "--username", "alice,bob_art", CIVITAI_API_KEY=KEY),
        ws.cli("--debug", "--api-key", KEY, "--mode", "2", "--model_id", "1001"),
        ws.cli("--debug", "tags", "--method", "api", CIVITAI_API_KEY=KEY),
    ]
    if has_chromium:
        runs.append(ws.cli("--debug", "tags", "--method", "browser", "--retag", "--limit", "3", "--workers", "2",
                           CIVITAI_API_KEY=KEY))
    runs += [
        ws.cli("--debug", "convert", "--dest", str(ws.root / "browse"), "--workers", "2", CIVITAI_API_KEY=KEY),
        ws.cli("--debug", "update", CIVITAI_API_KEY=KEY),
        ws.cli("--debug", "export-csv", str(ws.root / "library.csv"), CIVITAI_API_KEY=KEY),
    ]
    for run in runs:
        assert_clean_output(run)
        assert run.returncode == 0, str(run)
        assert KEY not in run.output, f"the key was printed by {run.args}"

    assert ws.log_text(), "debug logging wrote a log"
    assert (ws.root / "library.csv").is_file() and any((ws.root / "browse").rglob("*.webp"))
    forms = encodings_of(KEY)
    scanned = 0
    for path in sorted(p for p in ws.root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        scanned += 1
        assert not any(form in data for form in forms), f"the API key is in {path}"
    REPORT.inputs["files scanned for the API key"] += scanned

    carried = [r for r in fake.request_log if any(KEY in v for v in r.headers.values())]
    assert carried, "the key was sent to the API"
    for rec in fake.request_log:
        assert KEY not in rec.path and all(KEY not in v for _, v in rec.query), f"the key is in a URL: {rec.path}"
    for rec in carried:  # only ever as the Bearer header (the replica is the API base and its CDN)
        assert rec.headers.get("Authorization") == f"Bearer {KEY}", rec.path
        assert [k for k, v in rec.headers.items() if KEY in v] == ["Authorization"], rec.path
