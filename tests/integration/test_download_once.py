"""Each image is handled once per job: deep-scan passes that list it again, two identifiers that
both list it, and a transfer that outlasts the library's claim lease."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from civitgrab_desktop.core.civitai.client import CivitaiClient, ClientOptions
from civitgrab_desktop.core.library.async_library import Library
from civitgrab_desktop.core.library.owners import new_owner
from civitgrab_desktop.core.library.store import LibraryStore
from civitgrab_desktop.jobs.download import DownloadJob, DownloadParams
from tests.fake_civitai import FaultRule
from tests.fake_civitai.server import ACCOUNT
from tests.integration.conftest import media_files


def cdn_fetches(fake) -> Counter:
    """Original-media requests per image uuid."""
    return Counter(r.path.split("/")[2] for r in fake.request_log if "/original=true" in r.path)


def test_deep_scan_at_the_listing_cap_downloads_each_image_once(workspace, fake_civitai):
    # The repro: the listing stops at 8 items, the passes list most of them again.
    fake_civitai.set_item_cap(8)
    fake_civitai.set_latency(0.05)  # the passes list items while earlier copies still download
    expected = {i.id: i for i in fake_civitai.dataset.images_for_user("carol")}
    run = workspace.cli("--mode", "1", "--username", "carol", "--deep_scan", "--deep_scan_threshold", "8")

    assert run.returncode == 0, run.output
    assert "could not write the file" not in run.output
    files = media_files(workspace.downloads)
    assert sorted(int(p.stem) for p in files) == sorted(expected)
    fetched = cdn_fetches(fake_civitai)
    assert fetched == Counter({i.uuid: 1 for i in expected.values()})
    n = len(expected)
    assert re.search(rf"listed 8, new {n}, already had 0, downloaded {n}, linked 0, failed 0", run.stdout), run.stdout
    assert f"Downloaded: {n} " in run.stdout and "Failed: 0" in run.stdout
    assert not list(workspace.downloads.rglob("*.part"))


def test_two_identifiers_listing_the_same_image_fetch_it_once(workspace, fake_civitai):
    # Versions 2007 and 2008 share images (an image made with two resources); both listings are
    # queued while the first copies are still downloading.
    fake_civitai.set_latency(0.05)
    dataset = fake_civitai.dataset
    first = {i.id for i in dataset.images.values() if 2007 in i.model_version_ids and i.nsfw_level != 32}
    second = {i.id for i in dataset.images.values() if 2008 in i.model_version_ids and i.nsfw_level != 32}
    shared = first & second
    assert shared, "the dataset should have images under both versions"
    run = workspace.cli("--mode", "4", "--model_version_id", "2007,2008", "--semaphore_limit", "4")

    assert run.returncode == 0, run.output
    fetched = cdn_fetches(fake_civitai)
    assert max(fetched.values()) == 1, [u for u, c in fetched.items() if c > 1]
    on_disk = [int(p.stem) for p in media_files(workspace.downloads)]
    for image_id in shared:
        assert on_disk.count(image_id) == 2, f"image {image_id} should be in both version folders"
    # the second copies are links to the first, not second downloads
    for image_id in shared:
        copies = [p for p in media_files(workspace.downloads) if int(p.stem) == image_id]
        assert copies[0].stat().st_ino == copies[1].stat().st_ino
    assert "Failed: 0" in run.stdout


async def test_a_transfer_longer_than_the_lease_keeps_its_claim(workspace, fake_civitai):
    # The library's download lease is 1 s here; the one image's response takes 3 s to start.
    # Another process asking for the image while it transfers must be refused.
    image = fake_civitai.dataset.images_for_user("grace")[0]
    fake_civitai.add_fault(FaultRule("slow", where="cdn", path_prefix=f"/{ACCOUNT}/{image.uuid}", delay=3.0, count=1))
    params = DownloadParams(mode=6, identifiers=[str(image.id)], output_dir=str(workspace.root / "out"))
    db = workspace.data_dir / "library.sqlite3"
    library = await Library.open(db, download_lease=1.0)
    client = CivitaiClient(fake_civitai.base_url, options=ClientOptions(concurrency=2, timeout=30))
    other = LibraryStore(db, download_lease=1.0)
    try:
        job_id = await library.create_job("download", params.to_dict())
        job = DownloadJob(library, client, params, job_id=job_id)
        task = asyncio.create_task(job.run())
        taken_by_other = []
        await asyncio.sleep(1.5)  # past the lease, inside the 3 s transfer
        for _ in range(8):
            taken_by_other.append(await asyncio.to_thread(other.claim_download, image.id, new_owner()))
            await asyncio.sleep(0.1)
        summary = await task
    finally:
        other.close()
        await client.close()
        await library.close()
    assert summary["state"] == "done" and summary["done"] == 1, summary
    assert not any(taken_by_other), "another process took the claim of a running transfer"
    assert len(media_files(workspace.root / "out")) == 1


def test_files_already_under_their_final_names_are_recorded_not_fetched_again(workspace, fake_civitai):
    # A run killed between the rename and the library write leaves complete files the library
    # does not know; here the whole library is gone. The next run records them from disk.
    first = workspace.cli("--mode", "1", "--username", "grace", "--no-save")
    assert first.returncode == 0, first.output
    on_disk = {p: p.read_bytes() for p in media_files(workspace.downloads)}
    for path in workspace.data_dir.glob("library.sqlite3*"):
        path.unlink()
    fake_civitai.clear_log()
    again = workspace.cli("--mode", "1", "--username", "grace", "--no-save")
    assert again.returncode == 0, again.output
    assert cdn_fetches(fake_civitai) == Counter()
    assert f"{len(on_disk)}  already on disk (an earlier run was interrupted)" in again.stdout, again.stdout
    assert {p: p.read_bytes() for p in media_files(workspace.downloads)} == on_disk
    with workspace.store() as store:
        assert all(store.image(int(p.stem)).dl_state == "done" for p in on_disk)


def test_an_image_that_fails_for_one_identifier_is_not_fetched_again_for_another(workspace, fake_civitai):
    dataset = fake_civitai.dataset
    shared = sorted(
        i.id for i in dataset.images.values()
        if {2007, 2008} <= set(i.model_version_ids) and i.nsfw_level != 32 and not i.is_video
    )
    broken = dataset.image(shared[0])
    fake_civitai.add_fault(FaultRule("500", where="cdn", path_prefix=f"/{ACCOUNT}/{broken.uuid}"))
    run = workspace.cli("--mode", "4", "--model_version_id", "2007,2008", "--retries", "1")

    assert run.returncode == 1, run.output
    assert cdn_fetches(fake_civitai)[broken.uuid] == 2  # one attempt and one retry, for both identifiers
    assert re.search(r"version 2007: ok - .*failed 1\n", run.stdout), run.stdout
    assert re.search(r"version 2008: ok - .*failed 1\n", run.stdout), run.stdout
    assert run.stdout.count(f"{broken.id}: server error 500") == 2, run.stdout  # a failure under each identifier
    assert broken.id not in {int(p.stem) for p in media_files(workspace.downloads)}
