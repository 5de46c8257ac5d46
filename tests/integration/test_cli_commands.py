"""civitgrab-cli's other commands and the interactive mode, through the real entry point."""

from __future__ import annotations

import csv
import json
import os
import pty
import sqlite3
import subprocess
import sys

from tests.integration.conftest import media_files


def test_export_csv_of_a_populated_library(workspace):
    assert workspace.cli("--mode", "1", "--username", "alice").returncode == 0
    out = workspace.root / "library.csv"
    run = workspace.cli("export-csv", str(out))
    assert run.returncode == 0, run.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    files = {int(p.stem): p for p in media_files(workspace.downloads)}
    assert {int(r["image_id"]) for r in rows} >= set(files)
    for column in ("image_id", "type", "nsfw_level", "username", "model_version_name", "path", "sha256",
                   "downloaded_at", "tags", "tags_scraped", "converted", "webp_path"):
        assert column in rows[0]
    for row in rows:
        if int(row["image_id"]) in files:
            assert row["path"] == str(files[int(row["image_id"])].resolve())
            assert row["username"] == "alice" and row["tags_scraped"] == "0" and row["converted"] == "0"


def test_migrate_imports_classic_data_once(workspace, fake_civitai):
    classic = workspace.root / "classic"
    (classic / "image_downloads").mkdir(parents=True)
    image = fake_civitai.dataset.images_for_user("grace")[0]
    data, _ = fake_civitai.dataset.media(image.id)
    file = classic / "image_downloads" / f"{image.id}.jpeg"
    file.write_bytes(data)
    (classic / "downloaded_images.json").write_text(json.dumps({
        f"{image.id}_HD": {"path": str(file), "quality": "HD", "download_date": "2025-01-02 - 10:11"},
        "123456_SD": {"path": str(classic / "gone.jpeg"), "quality": "SD", "download_date": "2025-01-02 - 10:11",
                      "url": "https://image.civitai.com/x/y/width=450/123456.jpeg"},
    }))
    db = sqlite3.connect(classic / "tracking_database.sqlite")
    db.execute("""CREATE TABLE tracked_images (image_key TEXT PRIMARY KEY, image_id TEXT NOT NULL, quality TEXT NOT NULL,
                  path TEXT NOT NULL, download_date TEXT NOT NULL, url TEXT, checkpoint_name TEXT,
                  target_type TEXT, target_value TEXT)""")
    db.execute("CREATE TABLE image_tags (image_key TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY(image_key, tag))")
    db.execute("INSERT INTO tracked_images VALUES (?,?,?,?,?,?,?,?,?)",
               (f"tag:sci-fi_{image.id}_HD", str(image.id), "HD", str(file), "2025-01-02 - 10:11", None, "juggernaut",
                "tag", "sci-fi"))
    db.execute("INSERT INTO image_tags VALUES (?, ?)", (f"tag:sci-fi_{image.id}_HD", "sci-fi"))
    db.commit()
    db.close()

    run = workspace.cli("migrate", str(classic))
    assert run.returncode == 0, run.output
    assert "2 new images" in run.stdout
    with workspace.store() as store:
        row = store.image(image.id)
        assert row.dl_state == "done" and row.path == str(file)
        kinds = {(s.target_type, s.target_value) for s in store.sources_for(image.id)}
        assert ("tag", "sci-fi") in kinds
        assert store.image(123456).dl_state == "pending"
    again = workspace.cli("migrate", str(classic))
    assert again.returncode == 0
    assert "0 new images" in again.stdout
    # a later download of the same image does not fetch it again
    fake_civitai.clear_log()
    assert workspace.cli("--mode", "1", "--username", "grace").returncode == 0
    assert not any(image.uuid in r.path for r in fake_civitai.request_log)


def test_tagnames_pages_until_empty_and_appends_only_new(workspace, fake_civitai):
    out = workspace.root / "tag_names.txt"
    out.write_text("anime\nmy own line\n")
    run = workspace.cli("tagnames", "--out", str(out))
    assert run.returncode == 0, run.output
    names = out.read_text().splitlines()
    assert names[:2] == ["anime", "my own line"]
    assert len(names) == len(set(names))
    pages = [r for r in fake_civitai.request_log if r.path == "/api/v1/tags"]
    assert len(pages) >= 3  # ~450 names at 200 per page, then one empty page
    assert "landscape" in names
    again = workspace.cli("tagnames", "--out", str(out))
    assert "0 new" in again.stdout
    assert out.read_text().splitlines() == names


def test_auth_without_a_keychain_explains_the_env_var(workspace):
    run = workspace.cli("auth", "set", "--key", "abc123456789")
    assert run.returncode == 1
    assert "CIVITAI_API_KEY" in run.stderr
    status = workspace.cli("auth", "status", CIVITAI_API_KEY="zzzz1234")
    assert "set (" in status.stdout and "zzzz1234" not in status.stdout


def test_jobs_are_listed_and_a_stopped_job_resumes(workspace, fake_civitai):
    import signal
    import time

    fake_civitai.set_latency(0.2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "civitgrab_desktop.cli", "--mode", "1", "--username", "erin", "--semaphore_limit", "1"],
        cwd=workspace.root, env=workspace.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline and not list(workspace.downloads.rglob("*.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    fake_civitai.set_latency(0)
    jobs = workspace.cli("jobs")
    assert "stopped" in jobs.stdout
    resumed = workspace.cli("resume")
    assert resumed.returncode == 0, resumed.output
    assert len(media_files(workspace.downloads)) == len(fake_civitai.dataset.images_for_user("erin"))
    assert "done" in workspace.cli("jobs").stdout


def _run_in_terminal(workspace, answers: str, *args: str) -> tuple[int, str]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "civitgrab_desktop.cli", *args],
        cwd=workspace.root, env=workspace.env(), stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    os.close(slave)
    os.write(master, answers.encode())
    out, _ = proc.communicate(timeout=120)
    os.close(master)
    return proc.returncode, out.decode(errors="replace")


def test_interactive_mode_asks_everything(workspace):
    code, out = _run_in_terminal(workspace, "\n2\n\n1\n3\nnot valid!\ngrace\n")
    assert code == 0, out
    assert "Enter timeout value" in out and "Choose mode" in out
    assert "not a valid CivitAI username" in out  # asked again
    assert (workspace.downloads / "Username_Search" / "grace").is_dir()


def test_mixed_mode_asks_only_what_is_missing(workspace):
    code, out = _run_in_terminal(workspace, "heidi\n", "--mode", "1", "--no_videos")
    assert code == 0, out
    assert "Enter username(s)" in out and "Enter timeout value" not in out
    assert (workspace.downloads / "Username_Search" / "heidi").is_dir()
