"""Fixtures of the reliability suite and its report plugin.

* ``fake``: the in-process fake CivitAI (a fresh one per test, see tests/fake_civitai), with every
  faulted response counted for the report.
* ``ws``: a workspace (data dir + output folder) whose ``cli()`` / ``popen()`` run the real
  civitgrab-cli in subprocesses against ``fake``.
* ``pytest_terminal_summary`` prints the "Reliability report" block at the end of the run, only
  when tests from this folder ran.
"""

from __future__ import annotations

import pytest

from tests.fake_civitai.faults import path_kind
from tests.fake_civitai.server import ACCOUNT
from tests.reliability.helpers import RWorkspace, make_workspace
from tests.reliability.report import REPORT

HERE = "tests/reliability/"


@pytest.fixture(autouse=True)
def _reliability_report():
    REPORT.start()
    yield


@pytest.fixture
def fake(fake_civitai):
    """The fake service; faulted responses are counted (per kind and where) as they happen."""
    original = fake_civitai._log

    def log(rec) -> None:
        original(rec)
        if rec.fault:
            REPORT.faults[f"{rec.fault}@{path_kind(rec.path, ACCOUNT)}"] += 1

    fake_civitai._log = log
    yield fake_civitai


@pytest.fixture
def ws(tmp_path, fake) -> RWorkspace:
    return make_workspace(tmp_path / "ws", fake.base_url)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not REPORT.ran:
        return
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in counts:
        for rep in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(rep, "nodeid", "") or ""
            if nodeid.startswith(HERE) and getattr(rep, "when", "call") in ("call", "setup"):
                if outcome == "passed" and rep.when != "call":
                    continue
                counts[outcome] += 1
    errors = [r for r in terminalreporter.stats.get("error", []) if (getattr(r, "nodeid", "") or "").startswith(HERE)]
    terminalreporter.write_sep("=", "Reliability report")
    for line in REPORT.lines(counts["passed"], counts["failed"] + len(errors), counts["skipped"]):
        terminalreporter.write_line(line)
