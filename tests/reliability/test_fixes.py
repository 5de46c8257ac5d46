"""Regression tests for the product bugs the reliability suite found (one per fix commit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from civitgrab_desktop.core.civitai import rest
from civitgrab_desktop.core.civitai.client import BadPayloadError, CivitaiClient, ClientOptions
from tests.fake_civitai import FaultRule


def _client(fake) -> CivitaiClient:
    return CivitaiClient(fake.base_url, options=ClientOptions(retries=1, listing_retries=3, backoff_max=0.05))


async def test_a_listing_page_that_breaks_the_schema_is_retried_not_taken_as_empty(fake_civitai):
    # {"items": {"oops": true}, "metadata": []} used to end the listing with 0 items: the user's
    # download "found nothing" (exit 0) and every image it had found before was marked gone.
    fake_civitai.add_fault(FaultRule("json-garbage", where="api", count=2))
    async with _client(fake_civitai) as client:
        pages = [p async for p in rest.iter_image_pages(client, **rest.listing_params(username="grace"))]
    assert sum(len(p.records) for p in pages) == len(fake_civitai.dataset.images_for_user("grace"))
    assert [r.fault for r in fake_civitai.request_log[:3]] == ["json-garbage", "json-garbage", None]


async def test_a_listing_that_never_keeps_to_the_schema_fails_with_a_reason(fake_civitai):
    fake_civitai.add_fault(FaultRule("json-garbage", where="api"))
    async with _client(fake_civitai) as client:
        with pytest.raises(BadPayloadError, match="without a list of items"):
            async for _ in rest.iter_image_pages(client, **rest.listing_params(username="grace")):
                pass
        with pytest.raises(BadPayloadError):
            await rest.search_models_by_tag(client, "landscape")
    assert len(fake_civitai.request_log) == 4 + 4  # 1 + 3 retries each


def test_a_final_file_the_library_missed_is_recorded_not_downloaded_again(tmp_path, fake_civitai):
    # SIGKILL between the rename of a finished download and the library write left the file under
    # its final name with the library row still pending: the next run fetched it again.
    from tests.reliability.helpers import cdn_fetches, check_files, check_library, make_workspace

    ws = make_workspace(tmp_path / "ws", fake_civitai.base_url)
    assert ws.cli("--mode", "1", "--username", "bob_art").returncode == 0
    victims = [i.id for i in fake_civitai.dataset.images_for_user("bob_art")[:3]]  # incl. a video
    paths = {}
    for image_id in victims:
        (path,) = ws.sql("SELECT path FROM images WHERE id = ?", (image_id,))[0]
        paths[image_id] = path
        for sidecar in Path(path).parent.glob(f"{image_id}[._]*"):
            if sidecar.suffix in (".json", ".txt"):
                sidecar.unlink()
    import sqlite3

    with sqlite3.connect(ws.library_path) as conn:  # the crash: the library never heard of the files
        conn.executemany(
            "UPDATE images SET dl_state = 'pending', path = NULL, sha256 = NULL, bytes = NULL WHERE id = ?",
            [(i,) for i in victims],
        )
    mark = len(fake_civitai.request_log)
    run = ws.cli("--mode", "1", "--username", "bob_art")
    assert run.returncode == 0, run
    assert not cdn_fetches(fake_civitai, since=mark), "a complete file on disk was downloaded again"
    for image_id in victims:
        row = ws.sql("SELECT dl_state, path FROM images WHERE id = ?", (image_id,))[0]
        assert row == ("done", paths[image_id])
        assert (Path(paths[image_id]).parent / f"{image_id}.json").is_file()
    check_files(ws.downloads, fake_civitai.dataset)
    check_library(ws)


def test_a_partial_or_broken_final_file_is_downloaded_again(tmp_path, fake_civitai):
    from tests.reliability.helpers import cdn_fetches, check_files, make_workspace

    ws = make_workspace(tmp_path / "ws", fake_civitai.base_url)
    assert ws.cli("--mode", "1", "--username", "grace").returncode == 0
    image = fake_civitai.dataset.images_for_user("grace")[0]
    (path,) = ws.sql("SELECT path FROM images WHERE id = ?", (image.id,))[0]
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])  # e.g. the classic tool's unfinished write
    import sqlite3

    with sqlite3.connect(ws.library_path) as conn:
        conn.execute("UPDATE images SET dl_state = 'pending', path = NULL WHERE id = ?", (image.id,))
    mark = len(fake_civitai.request_log)
    assert ws.cli("--mode", "1", "--username", "grace").returncode == 0
    assert cdn_fetches(fake_civitai, since=mark) == {image.uuid: 1}
    check_files(ws.downloads, fake_civitai.dataset)


def test_numbers_too_big_for_the_library_do_not_fail_the_page(tmp_path):
    # One item with an id, a size, a post id or a count of 2**63 or more failed the whole page's
    # library write (OverflowError): the job ended with nothing downloaded for that query. A
    # 5000-digit string id raised a plain ValueError past the item-level error handling.
    from civitgrab_desktop.core.civitai.records import RecordError, parse_image
    from civitgrab_desktop.core.library.store import LibraryStore, Source

    good = {"id": 7, "url": "https://image.civitai.com/x/y/original=true/z.jpeg", "width": 10**30,
            "height": "99999999999999999999999", "postId": 2**63, "modelVersionIds": [10**30, 5],
            "stats": {"likeCount": 2**62, "heartCount": 2**62, "cryCount": 10**30}}
    record = parse_image(good)
    assert (record.width, record.height, record.post_id, record.model_version_ids) == (None, None, None, [5])
    with LibraryStore(tmp_path / "lib.sqlite3") as store:
        states = store.upsert_listed([record], Source("username", "u", {7: str(tmp_path / "7")}))
    assert set(states) == {7}
    for bad_id in (2**63, 10**30, -(2**64), "1" * 5000, "9" * 20):
        with pytest.raises(RecordError):
            parse_image({**good, "id": bad_id})


def test_unusable_folders_and_libraries_are_one_clear_line_not_a_traceback(tmp_path, fake_civitai):
    # An export target that is a folder, a data dir below a regular file, and a library file that
    # is not SQLite ended in a Python traceback.
    from tests.reliability.helpers import TRACEBACK, make_workspace

    ws = make_workspace(tmp_path / "ws", fake_civitai.base_url)
    assert ws.cli("--mode", "1", "--username", "grace").returncode == 0
    run = ws.cli("export-csv", str(ws.root))
    assert run.returncode == 1 and TRACEBACK not in run.output, run
    assert "civitgrab-cli: error: Is a directory" in run.stderr

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    run = ws.cli("--mode", "1", "--username", "grace", "--data-dir", str(blocker / "data"))
    assert run.returncode == 1 and TRACEBACK not in run.output, run
    assert "civitgrab-cli: error: Not a directory" in run.stderr

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "library.sqlite3").write_bytes(b"this is not a database" * 100)
    for args in (("--mode", "1", "--username", "grace"), ("jobs",), ("export-csv", str(tmp_path / "x.csv"))):
        run = ws.cli(*args, "--data-dir", str(garbage)) if args[0] == "--mode" else ws.cli(args[0], "--data-dir", str(garbage), *args[1:])
        assert run.returncode == 1 and TRACEBACK not in run.output, run
        assert "is not a usable civitgrab library" in run.stderr, run
    assert (garbage / "library.sqlite3").read_bytes() == b"this is not a database" * 100


def _small_disk(path: Path, size: str):
    """A tmpfs of `size` at `path` (root only); pytest.skip when mounting is not allowed."""
    import os
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {res.stderr.strip()}")
    return path


def _unmount(path: Path) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_ends_the_download_with_one_clear_reason(tmp_path, fake_civitai):
    # A full disk used to fail every remaining item ("unexpected error: [Errno 28] ...", after
    # fetching each one from the CDN): 516 of 600 items for a 1 MB disk.
    from tests.reliability.helpers import TRACEBACK, cdn_fetches, check_files, check_library, make_workspace

    ws = make_workspace(tmp_path / "ws", fake_civitai.base_url)
    disk = _small_disk(tmp_path / "small", "1m")
    try:
        run = ws.cli("--mode", "1", "--username", "bigcap", "--output_dir", str(disk / "out"))
        assert run.returncode == 1 and TRACEBACK not in run.output, run
        assert "is full; stopped (free some space and run again)" in run.output, run
        assert "unexpected error" not in run.output, run
        assert "could not write the file: [Errno 28] No space left on device" in run.stdout, run
        done = ws.sql("SELECT count(*) FROM images WHERE dl_state = 'done'")[0][0]
        assert done > 0
        assert sum(cdn_fetches(fake_civitai).values()) < done + 40, "kept fetching after the disk was full"
        check_files(disk / "out", fake_civitai.dataset)
        check_library(ws)
    finally:
        _unmount(disk)
