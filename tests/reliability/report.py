"""Counters the reliability tests fill, and the "Reliability report" block printed at the end of
the pytest run (see ``pytest_terminal_summary`` in ``conftest.py``).

Everything is process-local (one pytest process runs the suite); the CLI runs are subprocesses,
so what they did is counted from the fake service's request log and from the files they left.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Report:
    ran: bool = False
    started: float = 0.0
    faults: Counter = field(default_factory=Counter)  # kind@where -> responses the fake faulted
    kills: Counter = field(default_factory=Counter)  # phase -> SIGKILLs sent
    processes: Counter = field(default_factory=Counter)  # command -> civitgrab-cli processes run
    max_concurrent: int = 0
    inputs: Counter = field(default_factory=Counter)  # family -> hostile inputs tried
    files_checked: int = 0  # media files verified (decoded / container checked)
    files_compared: int = 0  # ... of which compared byte for byte with the original
    sidecars_checked: int = 0
    rows_checked: int = 0  # library rows checked against the files
    libraries_checked: int = 0  # PRAGMA integrity_check runs
    lost: int = 0  # a recorded or previously present file missing
    corrupt: int = 0  # a final-named file that does not verify or differs from the original
    refetched: int = 0  # an image fetched again although its final file existed (must stay 0)
    redone: int = 0  # tags fetched / conversions done twice (must stay 0)
    cdn_fetches: int = 0
    notes: list[str] = field(default_factory=list)

    def start(self) -> None:
        if not self.ran:
            self.ran = True
            self.started = time.monotonic()

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def lines(self, passed: int, failed: int, skipped: int) -> list[str]:
        elapsed = time.monotonic() - self.started if self.started else 0.0

        def breakdown(counter: Counter) -> str:
            if not counter:
                return ""
            return " (" + ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))) + ")"

        out = [
            f"tests: {passed} passed, {failed} failed, {skipped} skipped in {elapsed:.0f} s",
            f"faults injected: {sum(self.faults.values())}{breakdown(self.faults)}",
            f"SIGKILLs: {sum(self.kills.values())}{breakdown(self.kills)}",
            f"civitgrab-cli processes: {sum(self.processes.values())}{breakdown(self.processes)}; "
            f"up to {self.max_concurrent} at once on one library",
            f"hostile inputs tried: {sum(self.inputs.values())}{breakdown(self.inputs)}",
            f"files checked: {self.files_checked} media files verified, {self.files_compared} compared byte for byte "
            f"with the original, {self.sidecars_checked} sidecars read, {self.rows_checked} library rows matched to "
            f"their files, {self.libraries_checked} library integrity checks",
            f"CDN fetches audited: {self.cdn_fetches}",
            f"lost files: {self.lost}   corrupt files: {self.corrupt}   fetched again after done: {self.refetched}   "
            f"tagged/converted twice: {self.redone}",
        ]
        out += [f"note: {n}" for n in self.notes]
        return out


REPORT = Report()
