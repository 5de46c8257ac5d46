"""Claims across real processes: two processes working one library never take the same image,
never see "database is locked", and a killed process's claims are taken over."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from civitgrab_desktop.core.library.store import LibraryStore, Source, new_owner
from tests.unit.test_library_support import downloaded_store, library_path, record

REPO_ROOT = Path(__file__).resolve().parents[2]
N_IMAGES = 500

# Each worker interleaves the three kinds of work over the whole library and writes down every
# image it claimed. It finishes each claim (so claims never go stale mid-test); the short sleep
# stands in for the real work and lets the two processes take turns at the lock.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from civitgrab_desktop.core.model import TagVote
    from civitgrab_desktop.core.library.store import LibraryStore, new_owner

    path, ids_file, ready_file, go_file, out_file = sys.argv[1:6]
    pending = json.loads(open(ids_file).read())
    store = LibraryStore(path)
    owner = new_owner()
    claimed = {"download": [], "tags": [], "convert": []}
    open(ready_file, "w").close()
    while not os.path.exists(go_file):
        time.sleep(0.002)
    while True:
        progressed = False
        for image_id in pending[:3]:
            if store.claim_download(image_id, owner):
                claimed["download"].append(image_id)
                time.sleep(0.0005)
                store.mark_downloaded(image_id, owner, f"/lib/{image_id}.png", "image/png", 100, "ab" * 32, "original")
        del pending[:3]
        for row in store.claim_for_tags(owner, 4):
            claimed["tags"].append(row.id)
            progressed = True
            time.sleep(0.0005)
            store.store_tags(row.id, owner, [TagVote(id=row.id % 13 + 1, name=f"t{row.id % 13}", score=row.id)], "api")
        for row in store.claim_for_convert(owner, 4):
            claimed["convert"].append(row.id)
            progressed = True
            time.sleep(0.0005)
            store.record_conversion(row.id, owner, webp_path=f"/lib/{row.id}.webp", webp_bytes=10)
        if not pending and not progressed:
            break
    store.release_claims(owner)
    store.close()
    with open(out_file, "w") as fh:
        json.dump(claimed, fh)
    """
)

# Claims work, reports it, then waits to be killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from civitgrab_desktop.core.library.store import LibraryStore, new_owner

    store = LibraryStore(sys.argv[1])
    owner = new_owner()
    tagged = [row.id for row in store.claim_for_tags(owner, 50)]
    converting = [row.id for row in store.claim_for_convert(owner, 5)]
    downloading = sorted(store.claim_downloads(range(1001, 1011), owner))
    job = store.create_job("tags", {"limit": 50}, owner=owner, state="running")
    print(owner, job, ",".join(map(str, tagged)), ",".join(map(str, downloading)), len(converting), flush=True)
    time.sleep(120)
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    return env


def _spawn(script: Path, *args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(paths: list[Path], procs: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            raise AssertionError("workers did not get ready")
        time.sleep(0.01)


@pytest.mark.slow
def test_two_processes_claim_every_image_exactly_once(tmp_path):
    path = library_path(tmp_path)
    ids = list(range(1, N_IMAGES + 1))
    with LibraryStore(path) as store:
        store.upsert_listed([record(i) for i in ids], Source("username", "alice"))
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(ids))  # both walk the same order: maximum contention
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    go = tmp_path / "go"
    workers = []
    for n in range(2):
        ready, out = tmp_path / f"ready{n}", tmp_path / f"out{n}.json"
        workers.append((_spawn(script, path, ids_file, ready, go, out), ready, out))
    _wait_for([ready for _, ready, _ in workers], [proc for proc, _, _ in workers])
    go.touch()

    results = []
    for proc, _, out in workers:
        _, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
        assert "locked" not in stderr.lower()
        results.append(json.loads(out.read_text()))

    for kind in ("download", "tags", "convert"):
        first, second = (set(r[kind]) for r in results)
        assert len(first) == len(results[0][kind]) and len(second) == len(results[1][kind])
        assert not first & second, f"{kind}: claimed by both processes: {sorted(first & second)[:10]}"
        assert first | second == set(ids), f"{kind}: not every image was claimed"
        assert first and second, f"{kind}: one process did all the work; the test proved nothing"

    with LibraryStore(path) as store:
        stats = store.stats()
        assert stats["dl_state"] == {"done": N_IMAGES}
        assert stats["tag_state"] == {"done": N_IMAGES}
        assert stats["cv_state"] == {"done": N_IMAGES}
        assert stats["conversions"] == N_IMAGES
        assert (
            store.connection.execute("SELECT COUNT(*) FROM images WHERE tag_owner IS NOT NULL").fetchone()[0]
            == 0
        )


@pytest.mark.slow
def test_claims_of_a_killed_process_are_taken_over(tmp_path):
    path = library_path(tmp_path)
    with downloaded_store(path, range(1, 101)) as store:
        store.upsert_listed([record(i) for i in range(1001, 1011)], Source("username", "alice"))
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    proc = _spawn(script, path)
    try:
        line = proc.stdout.readline().split()
        assert line, proc.stderr.read()
        child_owner, job_id = line[0], line[1]
        child_tagged = {int(i) for i in line[2].split(",")}
        child_downloading = {int(i) for i in line[3].split(",")}
        assert child_tagged == set(range(1, 51)) and child_downloading == set(range(1001, 1011))

        with LibraryStore(path) as store:
            me = new_owner()
            # While the child lives its claims hold.
            assert {r.id for r in store.claim_for_tags(me, 100)} == set(range(51, 101))
            assert not store.claim_download(1001, me)
            assert store.mark_interrupted_jobs() == []
            store.release_claims(me)
    finally:
        proc.kill()  # SIGKILL: no cleanup runs in the child
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()

    with LibraryStore(path) as store:
        me = new_owner()
        taken = {r.id for r in store.claim_for_tags(me, 200)}
        assert child_tagged <= taken
        assert store.claim_downloads(child_downloading, me) == child_downloading
        assert len(store.claim_for_convert(me, 200)) == 100
        assert store.mark_interrupted_jobs() == [job_id]
        job = store.get_job(job_id)
        assert (job.state, job.owner) == ("interrupted", child_owner)
