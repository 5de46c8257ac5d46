"""Download throughput of civitgrab-cli against a plain aiohttp fetch loop, and its peak memory.

    python -m tests.benchmarks.download --json [--images 10000] [--concurrency 8] [--latency 0.05]

Both fetch the same user's images from the fake CivitAI (in its own process, media pre-rendered,
the same latency per response) at the same concurrency, following `nextPage` the same way. The
plain loop only streams each file to disk; civitgrab also types, verifies, hashes, fsyncs,
records every image in the library and writes sidecars. Targets: ratio ≥ 0.8, peak RSS < 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.benchmarks.common import cli_env, emit, fake_server


async def plain_fetch(base: str, username: str, concurrency: int, out: Path) -> int:
    """The reference: list pages, fetch each file with a semaphore, write it. Nothing else."""
    sem = asyncio.Semaphore(concurrency)
    count = 0
    out.mkdir(parents=True, exist_ok=True)
    async with aiohttp.ClientSession() as session:

        async def fetch(item: dict) -> None:
            nonlocal count
            async with sem, session.get(item["url"]) as resp:
                resp.raise_for_status()
                with open(out / f"{item['id']}.bin", "wb") as fh:
                    async for chunk in resp.content.iter_chunked(256 * 1024):
                        fh.write(chunk)
            count += 1

        url = f"{base}/api/v1/images?limit=200&username={username}&nsfw=X&sort=Newest&withMeta=true"
        tasks = []
        while url:
            async with session.get(url) as resp:
                data = await resp.json()
            tasks += [asyncio.create_task(fetch(i)) for i in data["items"]]
            url = data.get("metadata", {}).get("nextPage")
        await asyncio.gather(*tasks)
    return count


def run(images: int, concurrency: int, latency: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="civitgrab-bench-dl-"))
    try:
        with fake_server("--bench-images", str(images), "--latency", str(latency), "--prewarm") as base:
            t0 = time.perf_counter()
            plain_count = asyncio.run(plain_fetch(base, "bench", concurrency, work / "plain"))
            plain_s = time.perf_counter() - t0

            data_dir = work / "data"
            data_dir.mkdir()
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "civitgrab_desktop.cli", "--mode", "1", "--username", "bench",
                 "--semaphore_limit", str(concurrency), "--output_dir", str(work / "ours"), "--no-save"],
                env=cli_env(data_dir, base),
                capture_output=True,
                text=True,
            )
            ours_s = time.perf_counter() - t0
            # RUSAGE_CHILDREN: the largest resident set of any waited-for child = the CLI run.
            peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        ours_count = sum(1 for p in (work / "ours").rglob("*.jpeg"))
        plain_rate = plain_count / plain_s
        ours_rate = ours_count / ours_s
        return {
            "benchmark": "download",
            "images": images,
            "concurrency": concurrency,
            "latency_s": latency,
            "plain_aiohttp": {"files": plain_count, "seconds": round(plain_s, 2), "images_per_s": round(plain_rate, 1)},
            "civitgrab": {
                "files": ours_count,
                "seconds": round(ours_s, 2),
                "images_per_s": round(ours_rate, 1),
                "exit_code": proc.returncode,
                "peak_rss_mb": round(peak_kb / 1024, 1),
            },
            "throughput_ratio": round(ours_rate / plain_rate, 3),
            "targets": {"throughput_ratio": 0.8, "peak_rss_mb": 300},
            "ok": ours_count == images and ours_rate / plain_rate >= 0.8 and peak_kb / 1024 < 300,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--latency", type=float, default=0.05)
    args = ap.parse_args()
    emit(run(args.images, args.concurrency, args.latency), args.json)


if __name__ == "__main__":
    main()
