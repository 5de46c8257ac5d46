"""Run the fake CivitAI in the foreground.

    python -m tests.fake_civitai --port 8765 [--latency 0.05] [--cap 50000] [--fault-rate 0.05]
                                 [--fault-kinds 429,500,503,reset] [--bench-images 10000]

Prints the base URL on the first line of stdout, then serves until SIGINT/SIGTERM. Drive it from
other processes with the ``/__fake__/`` control endpoints (see ``server.py``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .dataset import build_dataset
from .faults import FAULT_KINDS, FaultRule
from .server import FakeCivitai, default_dataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fake_civitai", description="Fake CivitAI server")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    ap.add_argument("--cap", type=int, default=None, help="items per listing stream before nextPage stops")
    ap.add_argument("--fault-rate", type=float, default=0.0, help="probability of a fault per request")
    ap.add_argument("--fault-kinds", default="429,500,503,reset",
                    help=f"comma-separated kinds used with --fault-rate (from {', '.join(FAULT_KINDS)})")
    ap.add_argument("--bench-images", type=int, default=0, help="add user 'bench' with N small JPEGs")
    ap.add_argument("--seed", type=int, default=1234, help="seed of the fault RNGs")
    ap.add_argument("--prewarm", action="store_true", help="render every media file before serving (benchmarks)")
    ap.add_argument("--anonymous-public-only", action="store_true",
                    help="callers without a valid key get PG items only (the documented anonymous cap)")
    ap.add_argument("--site-color", choices=("blue", "green"), default="blue",
                    help="green: the SFW site (mature pages redirect, non-PG tags hidden)")
    ap.add_argument("--key", action="append", default=[], metavar="TOKEN=USER",
                    help="an API key that authenticates as USER (sees USER's private posts)")
    args = ap.parse_args(argv)

    dataset = build_dataset(bench_images=args.bench_images) if args.bench_images else default_dataset()
    if args.prewarm:
        dataset.prewarm()
    fake = FakeCivitai(dataset, port=args.port, latency=args.latency, item_cap=args.cap)
    fake.configure(anonymous_public_only=args.anonymous_public_only, site_color=args.site_color)
    for pair in args.key:
        token, _, user = pair.partition("=")
        fake.add_api_key(token, user)
    if args.fault_rate > 0:
        kinds = [k.strip() for k in args.fault_kinds.split(",") if k.strip()]
        per_kind = args.fault_rate / max(1, len(kinds))
        for n, kind in enumerate(kinds):
            fake.add_fault(FaultRule(kind, rate=per_kind, seed=args.seed + n))
    fake.start()
    print(fake.base_url, flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
