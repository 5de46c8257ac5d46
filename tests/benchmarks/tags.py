"""Tag fetching throughput: the tRPC API method against the browser method.

    python -m tests.benchmarks.tags [--json] [--latency 0.1] [--browser-images 40] [--users ...]

The fake CivitAI runs in a subprocess with `--latency` seconds added to every response. The library
is built by the real CLI (a download of the given users at zero latency), then the latency is
switched on and both methods run in this process through TagsJob at their default settings: `api`
over every downloaded image `--api-rounds` times (the first run, then --retag runs, so the timing
covers a few hundred fetches), `browser` over the first `--browser-images` (a --retag run). Prints
images/s for each method and their ratio (targets: api >= 20 images/s and >= 10x the browser).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Users whose images carry 4-14 tags, as most real images do (bigcap's carry 0-3).
DEFAULT_USERS = "alice,bob_art,carol,dave_ai,erin,frank_gen,grace,heidi,MixedCase,hostile"


def start_fake() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_civitai"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    base = proc.stdout.readline().strip()
    if not base.startswith("http"):
        proc.kill()
        raise SystemExit("the fake CivitAI did not start")
    return proc, base


def set_latency(base: str, seconds: float) -> None:
    body = json.dumps({"latency": seconds}).encode()
    req = urllib.request.Request(f"{base}/__fake__/config", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


def download(base: str, root: Path, users: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CIVITGRAB_DATA_DIR": str(root / "data"),
        "CIVITGRAB_API_BASE": base,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    env.pop("CIVITAI_API_KEY", None)
    run = subprocess.run(
        [sys.executable, "-m", "civitgrab_desktop.cli", "--mode", "1", "--username", users, "--semaphore_limit", "10"],
        cwd=root, env=env, capture_output=True, text=True, timeout=900,
    )
    if run.returncode != 0:
        raise SystemExit(f"download failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")


async def run_method(base: str, library_path: Path, **params) -> dict:
    from civitgrab_desktop.core.civitai.client import CivitaiClient, ClientOptions
    from civitgrab_desktop.core.library.async_library import Library
    from civitgrab_desktop.jobs.tags import TagsJob, TagsParams

    p = TagsParams(**params)
    library = await Library.open(library_path)
    # A key: the site shows a mature image's page (and its tags) only to a logged-in visitor.
    client = CivitaiClient(base, api_key="bench-key", options=ClientOptions(concurrency=p.workers))
    try:
        job_id = await library.create_job("tags", p.to_dict())
        job = TagsJob(library, client, p, job_id=job_id)
        started = time.perf_counter()
        summary = await job.run()
        wall = time.perf_counter() - started
        ids = await library.image_ids(tag_state="done")
        tags = sum([len(await library.tags_of(i)) for i in ids[: summary["done"]]])
    finally:
        await client.close()
        await library.close()
    return {
        "method": p.method,
        "workers": p.workers,
        "images": summary["done"],
        "failed": summary["failed"],
        "seconds": round(wall, 3),
        "images_per_s": round(summary["done"] / wall, 2) if wall else None,
        "methods": summary.get("methods"),
        "avg_tags_per_image": round(tags / max(1, summary["done"]), 2),
    }


def combine(rounds: list[dict]) -> dict:
    images = sum(r["images"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    return {
        **rounds[0],
        "rounds": len(rounds),
        "images": images,
        "failed": sum(r["failed"] for r in rounds),
        "seconds": round(seconds, 3),
        "images_per_s": round(images / seconds, 2) if seconds else None,
        "per_round_images_per_s": [r["images_per_s"] for r in rounds],
        "methods": {"api": sum((r["methods"] or {}).get("api", 0) for r in rounds)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.tags")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--latency", type=float, default=0.1, help="seconds added to every response")
    ap.add_argument("--browser-images", type=int, default=40)
    ap.add_argument("--api-rounds", type=int, default=3)
    ap.add_argument("--users", default=DEFAULT_USERS, help="users downloaded to build the library")
    args = ap.parse_args(argv)
    os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

    fake, base = start_fake()
    try:
        with tempfile.TemporaryDirectory(prefix="civitgrab-bench-tags-") as tmp:
            root = Path(tmp)
            (root / "data").mkdir()
            t0 = time.perf_counter()
            download(base, root, args.users)
            build_s = time.perf_counter() - t0
            set_latency(base, args.latency)
            library = root / "data" / "library.sqlite3"
            rounds = [
                asyncio.run(run_method(base, library, method="api", retag=n > 0)) for n in range(args.api_rounds)
            ]
            api = combine(rounds)
            browser = asyncio.run(
                run_method(base, library, method="browser", retag=True, limit=args.browser_images)
            )
    finally:
        fake.terminate()
        fake.wait(10)
    ratio = round(api["images_per_s"] / browser["images_per_s"], 1) if browser["images_per_s"] else None
    result = {
        "latency_s": args.latency,
        "library_build_s": round(build_s, 1),
        "api": api,
        "browser": browser,
        "ratio_api_to_browser": ratio,
        "targets": {"api_images_per_s": 20, "ratio": 10},
        "targets_met": bool(api["images_per_s"] >= 20 and ratio and ratio >= 10),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"api:     {api['images']} images in {api['seconds']} s = {api['images_per_s']} images/s")
        print(f"browser: {browser['images']} images in {browser['seconds']} s = {browser['images_per_s']} images/s")
        print(f"ratio:   {ratio}x (targets: api >= 20 images/s, >= 10x browser)")
    return 0 if api["failed"] == 0 and browser["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
