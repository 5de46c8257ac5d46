"""Issue 15, finding 5 (the parts outside the metadata issue): the secrets filter covers
tracebacks, `--api-key` on the command line warns, the classic SQLite is opened read-only with an
untrusted schema."""

from __future__ import annotations

import io
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from civitgrab_desktop.core.config import SECRET_FILTER, mask_secrets, register_secret
from civitgrab_desktop.core.library.classic_import import (
    ImportReport,
    iter_sqlite_entries,
    open_classic_sqlite,
)

REPO = Path(__file__).resolve().parents[2]
KEY = "cgTESTsmall0key0" + "4d7e" * 6


def _log_text(emit) -> str:
    register_secret(KEY)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(SECRET_FILTER)
    log = logging.getLogger("test.secrets")
    log.addHandler(handler)
    log.propagate = False
    try:
        emit(log)
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_the_key_is_masked_in_a_logged_traceback():
    def emit(log):
        def fail(url):
            raise RuntimeError(f"could not reach {url}")
        try:
            fail(f"https://civitai.com/api/v1/images?token={KEY}")
        except RuntimeError:
            log.exception("request failed")
            log.error("again", exc_info=True, stack_info=True)

    text = _log_text(emit)
    assert "Traceback" in text and "RuntimeError: could not reach" in text
    assert KEY not in text and "***" in text


def test_the_key_is_masked_in_messages_and_arguments():
    text = _log_text(lambda log: log.warning("header %s", {"Authorization": f"Bearer {KEY}"}))
    assert KEY not in text and "Bearer ***" in text
    assert mask_secrets(f"x{KEY}y") == "x***y"


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "CIVITGRAB_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring", "CIVITGRAB_API_BASE": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, "-m", "civitgrab_desktop.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [("--api-key", KEY, "jobs"), ("jobs", "--api_key", KEY), ("auth", "status", "--api-key", KEY)])
def test_a_key_on_the_command_line_gets_a_warning(tmp_path, args):
    run = _cli(*args, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "warning: an API key given on the command line" in run.stderr
    assert "auth set" in run.stderr and "CIVITAI_API_KEY" in run.stderr
    assert KEY not in run.stdout + run.stderr


def test_no_warning_without_a_key_on_the_command_line(tmp_path):
    run = _cli("jobs", tmp_path=tmp_path)
    assert run.returncode == 0 and "warning" not in run.stderr


def _classic_db(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript(
        """CREATE TABLE tracked_images (image_key TEXT PRIMARY KEY, path TEXT, quality TEXT);
           INSERT INTO tracked_images VALUES ('12_HD', 'x/12.png', 'HD');
           CREATE TABLE log (n INTEGER);
           CREATE TRIGGER t AFTER INSERT ON tracked_images BEGIN INSERT INTO log VALUES (1); END;"""
    )
    db.commit()
    db.close()
    return path


def test_the_classic_sqlite_is_read_only_and_its_schema_untrusted(tmp_path):
    path = _classic_db(tmp_path / "tracking_database.sqlite")
    before = path.read_bytes()
    conn = open_classic_sqlite(path)
    try:
        assert conn.execute("PRAGMA trusted_schema").fetchone()[0] == 0
        assert conn.execute("PRAGMA query_only").fetchone()[0] == 1
        with pytest.raises(sqlite3.OperationalError):
            conn.execute("INSERT INTO tracked_images VALUES ('13_HD', 'y', 'HD')")
    finally:
        conn.close()
    report = ImportReport()
    assert [e.image_id for e in iter_sqlite_entries(path, report)] == [12]
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
