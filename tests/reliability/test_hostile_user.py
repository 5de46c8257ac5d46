"""Hostile input from the user, over a collection that is already on disk: bad and absurd IDs,
unknown users and tags (the service lists all models for an unknown tag), empty lists, absurd
numbers, a read-only output folder. Each gets a clear message and the documented exit code (2 for
bad input, 1 when something asked for is not found, 0 for a user who simply has no posts), no
traceback, and nothing already on disk or in the library changes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.reliability.helpers import TRACEBACK, assert_unchanged, check_library, make_workspace, snapshot
from tests.reliability.report import REPORT

pytestmark = pytest.mark.reliability

# (arguments, exit code, what the message must say)
CASES = [
    (("--mode", "2", "--model_id", "12a"), 2, "not a numeric model ID"),
    (("--mode", "2", "--model_id", "99999999999999999999999999"), 1, "Not found: 99999999999999999999999999"),
    (("--mode", "4", "--model_version_id", "-5"), 2, "not a numeric model version ID"),
    (("--mode", "4", "--model_version_id", "1e9"), 2, "not a numeric model version ID"),
    (("--mode", "1", "--username", "../../etc"), 2, "not a valid CivitAI username"),
    (("--mode", "1", "--username", "a" * 300), 1, "not found"),
    (("--mode", "1", "--username", ","), 2, "--username"),
    (("--mode", "1", "--username", " , ,"), 2, "--username"),
    (("--mode", "2", "--model_id", ""), 2, "--model_id"),
    (("--mode", "1", "--username", "alice", "--semaphore_limit", "0"), 2, "not between 1 and 20"),
    (("--mode", "1", "--username", "alice", "--semaphore_limit", "99999999999"), 2, "not between 1 and 20"),
    (("--mode", "1", "--username", "alice", "--max_images", "-1"), 2, "--max_images"),
    (("--mode", "1", "--username", "alice", "--timeout", "-3"), 2, "--timeout"),
    (("--mode", "1", "--username", "alice", "--retries", "1000000"), 2, "--retries"),
    (("--mode", "9",), 2, "invalid choice"),
    (("--mode", "1", "--username", "nobody_here"), 1, "Not found: nobody_here"),
    (("--mode", "1", "--username", "empty_user"), 0, "Found nothing: empty_user"),  # exists, has no posts
    (("--mode", "3", "--tags", "no_such_tag_at_all"), 1, "no_such_tag_at_all"),
    (("--mode", "2", "--model_id", "987654"), 1, "987654"),
    (("--mode", "4", "--model_version_id", "987654"), 1, "987654"),
    (("tags", "--workers", "0"), 2, "--workers"),
    (("tags", "--workers", "500"), 2, "--workers"),
    (("convert", "--quality", "0", "--dest", "x"), 2, "--quality"),
    (("convert", "--quality", "101", "--dest", "x"), 2, "--quality"),
    (("convert", "--batch-size", "-4", "--dest", "x"), 2, "--batch-size"),
]


def test_bad_user_input_is_a_clear_message_and_loses_nothing(ws, fake):
    first = ws.cli("--mode", "1", "--username", "alice,bob_art")
    assert first.returncode == 0, str(first)
    before = snapshot(ws.root / "image_downloads")
    rows_before = ws.sql("SELECT id, path, sha256, dl_state FROM images ORDER BY id")
    for args, code, message in CASES:
        run = ws.cli(*args)
        REPORT.inputs["bad input from the user"] += 1
        assert TRACEBACK not in run.output, str(run)
        assert run.returncode == code, f"{args}: exit {run.returncode}, expected {code}\n{run}"
        assert message.lower() in run.output.lower(), f"{args}: the message should mention {message!r}\n{run}"
    assert_unchanged(before, ws.root / "image_downloads")
    assert ws.sql("SELECT id, path, sha256, dl_state FROM images ORDER BY id") == rows_before
    check_library(ws)


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="needs setpriv to drop root")
def test_a_read_only_output_folder_is_a_clear_error_and_loses_nothing(fake):
    # root ignores permissions: as root the second run is made as `nobody`, in a folder it can reach
    user = "nobody" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="civitgrab-ro-", dir="/tmp"))
    try:
        base.chmod(0o755)
        ws = make_workspace(base / "ws", fake.base_url)
        out = base / "ro_out"
        first = ws.cli("--mode", "1", "--username", "grace", "--output_dir", str(out))
        assert first.returncode == 0, str(first)
        before = snapshot(out)
        for p in (ws.root, ws.data_dir, *ws.data_dir.rglob("*")):
            p.chmod(0o777 if p.is_dir() else 0o666)
        for p in (out, *[p for p in out.rglob("*") if p.is_dir()]):
            p.chmod(0o555)
        run = ws.cli("--mode", "1", "--username", "alice", "--output_dir", str(out), user=user)
        REPORT.inputs["bad input from the user"] += 1
        assert TRACEBACK not in run.output, str(run)
        assert run.returncode == 2, str(run)
        assert "cannot write to the output folder" in run.stderr, str(run)
        assert_unchanged(before, out)
        check_library(ws)
    finally:
        for p in (base, *base.rglob("*")):
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
