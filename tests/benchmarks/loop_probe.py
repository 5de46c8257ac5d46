"""Run a module as `python -m` would, measuring how long its asyncio event loop ever stalls.

    python -m tests.benchmarks.loop_probe REPORT.json MODULE [ARGS...]

A 10 ms timer is re-armed on every loop the program creates; how late it fires is the time the
loop was busy without a break (one slow callback, or one iteration's callbacks together). At exit
the largest lateness and the number of stalls over 50 ms go to REPORT.json. The GUI shares its
loop with the jobs, so a stall here is a frozen window there. On a loaded machine a timer also
fires late when the OS does not schedule the process; the loop thread's own CPU time over the
late interval (`max_loop_stall_cpu_ms`) tells the two apart.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import runpy
import sys
import time
from pathlib import Path

TICK_S = 0.010
STALL_S = 0.050


class _Probe:
    def __init__(self) -> None:
        self.max_lateness = 0.0
        self.max_busy = 0.0
        self.stalls = 0
        self.ticks = 0

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        due = time.perf_counter() + TICK_S
        cpu_at = time.thread_time()

        def tick() -> None:
            late = time.perf_counter() - due
            self.ticks += 1
            self.max_lateness = max(self.max_lateness, late)
            # the part of the lateness the loop thread spent running (not waiting to be scheduled)
            self.max_busy = max(self.max_busy, min(late, time.thread_time() - cpu_at))
            if late > STALL_S:
                self.stalls += 1
            if not loop.is_closed():
                self.arm(loop)

        loop.call_later(TICK_S, tick)

    def report(self) -> dict:
        return {
            "max_loop_stall_ms": round(self.max_lateness * 1000, 1),
            "max_loop_stall_cpu_ms": round(self.max_busy * 1000, 1),
            "stalls_over_50ms": self.stalls,
            "ticks": self.ticks,
        }


def main() -> None:
    report_path = Path(sys.argv[1])
    module = sys.argv[2]
    probe = _Probe()

    class ProbedPolicy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            loop = super().new_event_loop()
            loop.call_soon(probe.arm, loop)
            return loop

    asyncio.set_event_loop_policy(ProbedPolicy())
    atexit.register(lambda: report_path.write_text(json.dumps(probe.report()), encoding="utf-8"))
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
