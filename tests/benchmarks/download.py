"""Download speed, CPU and memory of civitgrab-cli against a plain aiohttp loop, on real-size media.

    python -m tests.benchmarks.download --json [--concurrency 5] [--latency 0.02] [--repeat 1]
                                        [--big-job 10000]

The fake CivitAI (its own process, 20 ms per response) serves user ``bench`` with what users
really download (tests/benchmarks/download_media.py, cached under the temp dir): PNG originals of
1.5-3 MB with A1111/ComfyUI text chunks, JPEGs of 0.3-1 MB, WebPs, mp4 clips of 5-9 MB; ~185 MB.
Both clients run as child processes at the same concurrency, following ``nextPage`` the same
way; each child's CPU time (user+system) and peak RSS come from its own wait4() record. The plain
loop only streams each file to disk; civitgrab also types, verifies, hashes, fsyncs, records
every image in the library and writes sidecars. The event loop's longest stall is measured inside
the civitgrab process (tests/benchmarks/loop_probe.py).

`--big-job N` then runs civitgrab alone on N small JPEGs (the library and queue at scale) for its
peak RSS. Targets (issue 16): speed >= 0.85 x the plain loop, CPU <= 2 x the plain loop's,
peak RSS <= 120 MB (real-size job) and <= 300 MB (10,000 items), no loop stall > 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.benchmarks.common import REPO, cli_env, emit, fake_server

MEDIA_EXTS = {".png", ".jpeg", ".jpg", ".webp", ".mp4", ".webm", ".gif"}
TARGETS = {"speed_ratio_min": 0.85, "cpu_ratio_max": 2.0, "peak_rss_mb_max": 120, "big_job_peak_rss_mb_max": 300,
           "loop_stall_ms_max": 50}


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


def _child(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run a child process to its end: wall seconds, CPU seconds and peak RSS of that child alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()  # drain while it runs (a full pipe would block it)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "exit_code": proc.returncode,
        "output": output.decode("utf-8", "replace"),
    }


def _media_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix.lower() in MEDIA_EXTS and p.is_file()]


def _figures(run: dict, megabytes: float) -> dict:
    return {
        "seconds": round(run["seconds"], 2),
        "mb_per_s": round(megabytes / run["seconds"], 1),
        "cpu_s": round(run["cpu_s"], 2),
        "user_s": round(run["user_s"], 2),
        "sys_s": round(run["sys_s"], 2),
        "cpu_s_per_100mb": round(run["cpu_s"] / megabytes * 100, 2),
        "peak_rss_mb": round(run["peak_rss_mb"], 1),
    }


def _civitgrab(base: str, work: Path, concurrency: int, name: str) -> tuple[dict, dict]:
    data_dir = work / f"data-{name}"
    probe_report = work / f"probe-{name}.json"
    # No keychain: finding a keyring backend imports every backend (~0.1 s of CPU, once per run),
    # which says nothing about downloading; the tests run with the same null backend.
    env = cli_env(data_dir, base, PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    run = _child(
        [sys.executable, "-m", "tests.benchmarks.loop_probe", str(probe_report), "civitgrab_desktop.cli",
         "--mode", "1", "--username", "bench", "--semaphore_limit", str(concurrency),
         "--output_dir", str(work / name), "--no-save"],
        env=env,
    )
    probe = json.loads(probe_report.read_text()) if probe_report.exists() else {}
    return run, probe


def one_round(base: str, work: Path, concurrency: int, expected_files: int, megabytes: float, ours_first: bool) -> dict:
    def plain_run() -> dict:
        return _child([sys.executable, "-m", "tests.benchmarks.download", "--plain", base, str(work / "plain"),
                       "--concurrency", str(concurrency)])

    if ours_first:  # rounds alternate the order, so a burst of load on a shared machine hits both alike
        ours, probe = _civitgrab(base, work, concurrency, "ours")
        plain = plain_run()
    else:
        plain = plain_run()
        ours, probe = _civitgrab(base, work, concurrency, "ours")
    ours_files = _media_files(work / "ours")
    plain_files = _media_files(work / "plain") or list((work / "plain").glob("*.bin"))
    result = {
        "plain_aiohttp": {"files": len(plain_files), **_figures(plain, megabytes)},
        "civitgrab": {"files": len(ours_files), "exit_code": ours["exit_code"], **_figures(ours, megabytes), **probe},
        "speed_ratio": round(plain["seconds"] / ours["seconds"], 3),
        "cpu_ratio": round(ours["cpu_s"] / max(plain["cpu_s"], 1e-6), 2),
    }
    if ours["exit_code"] != 0 or len(ours_files) != expected_files:
        result["civitgrab"]["output_tail"] = ours["output"][-2000:]
    for folder in ("plain", "ours", "data-ours"):
        shutil.rmtree(work / folder, ignore_errors=True)
    return result


def big_job(items: int, latency: float, concurrency: int, work: Path) -> dict:
    with fake_server("--bench-images", str(items), "--latency", str(latency), "--prewarm", ready_timeout=900) as base:
        run, probe = _civitgrab(base, work, concurrency, "big")
    files = len(_media_files(work / "big"))
    shutil.rmtree(work / "big", ignore_errors=True)
    return {
        "items": items,
        "files": files,
        "exit_code": run["exit_code"],
        "seconds": round(run["seconds"], 1),
        "cpu_s": round(run["cpu_s"], 1),
        "peak_rss_mb": round(run["peak_rss_mb"], 1),
        **probe,
    }


def run(concurrency: int, latency: float, repeat: int, big_items: int) -> dict:
    # Imported here, not at the top: the plain loop's child process runs this module, and
    # numpy + Pillow (the media generator's) would add ~0.15 s of CPU to the reference.
    from tests.benchmarks.download_media import ensure_media

    manifest = ensure_media()
    entries = json.loads(manifest.read_text(encoding="utf-8"))
    megabytes = sum(e["bytes"] for e in entries) / 1e6
    by_format: dict[str, dict] = {}
    for e in entries:
        f = by_format.setdefault(e["format"], {"files": 0, "mb": 0.0})
        f["files"] += 1
        f["mb"] = round(f["mb"] + e["bytes"] / 1e6, 1)
    # Bytecode as an installed package has it (PYTHONDONTWRITEBYTECODE would recompile every run).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "civitgrab_desktop")], check=True)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="civitgrab-bench-dl-"))
    try:
        with fake_server("--bench-media", str(manifest), "--latency", str(latency), "--prewarm") as base:
            rounds = [one_round(base, work, concurrency, len(entries), megabytes, bool(n % 2)) for n in range(repeat)]
        big = big_job(big_items, latency, concurrency, work) if big_items else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    speed = statistics.median(r["speed_ratio"] for r in rounds)
    cpu = statistics.median(r["cpu_ratio"] for r in rounds)
    rss = max(r["civitgrab"]["peak_rss_mb"] for r in rounds)
    stall = max(r["civitgrab"].get("max_loop_stall_ms", 0) for r in rounds)
    complete = all(r["civitgrab"]["files"] == len(entries) and r["civitgrab"]["exit_code"] == 0 for r in rounds)
    result = {
        "benchmark": "download",
        "media": {"files": len(entries), "mb": round(megabytes, 1), "by_format": by_format},
        "concurrency": concurrency,
        "latency_s": latency,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rounds": rounds,
        "speed_ratio_median": speed,
        "cpu_ratio_median": cpu,
        "civitgrab_peak_rss_mb_max": rss,
        "civitgrab_max_loop_stall_ms": stall,
        "big_job": big,
        "targets": TARGETS,
    }
    result["ok"] = bool(
        complete
        and speed >= TARGETS["speed_ratio_min"]
        and cpu <= TARGETS["cpu_ratio_max"]
        and rss <= TARGETS["peak_rss_mb_max"]
        and stall <= TARGETS["loop_stall_ms_max"]
        and (big is None or (big["exit_code"] == 0 and big["files"] == big_items
                             and big["peak_rss_mb"] <= TARGETS["big_job_peak_rss_mb_max"]))
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--concurrency", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.02)
    ap.add_argument("--repeat", type=int, default=1, help="rounds of (plain loop, civitgrab); medians are reported")
    ap.add_argument("--big-job", type=int, default=10_000, help="items of the memory run on small media (0: skip)")
    ap.add_argument("--plain", nargs=2, metavar=("BASE", "OUT"), help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()
    if args.plain:
        count = asyncio.run(plain_fetch(args.plain[0], "bench", args.concurrency, Path(args.plain[1])))
        print(count)
        return
    emit(run(args.concurrency, args.latency, args.repeat, args.big_job), args.json)


if __name__ == "__main__":
    main()
