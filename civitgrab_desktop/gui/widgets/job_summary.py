"""How a finished job's summary reads on its card: one line of counts, sizes and time, then the
queries that were not found, a switch to the browser method, an early stop or an error; and how
many problems it had (failed items plus queries not found or not listed). Plain text, no Qt."""

from __future__ import annotations

from typing import Any

from civitgrab_desktop.gui.util import human_bytes, human_duration

DONE_WORD = {"download": "downloaded", "tags": "tagged", "convert": "converted", "update": "downloaded",
             "refresh_metadata": "refreshed"}


def summary_line(kind: str, summary: dict[str, Any]) -> str:
    word = DONE_WORD.get(kind, "done")
    parts = [f"{word.capitalize()} {summary.get('done', 0):,}"]
    skipped = summary.get("skipped", 0)
    if skipped:
        reasons = summary.get("skip_reasons") or {}
        detail = ", ".join(f"{reason} {n:,}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:2])
        parts.append(f"skipped {skipped:,}" + (f" ({detail})" if detail else ""))
    failed = summary.get("failed", 0)
    if failed:
        parts.append(f"failed {failed:,}")
    if kind == "convert" and summary.get("src_bytes"):
        parts.append(f"{human_bytes(summary['src_bytes'])} → {human_bytes(summary.get('webp_bytes') or 0)} as WebP")
    elif summary.get("bytes"):
        parts.append(human_bytes(summary["bytes"]))
    if kind == "refresh_metadata" and summary.get("done"):
        parts.append(f"{summary.get('rewritten', 0):,} rewritten, {summary.get('unchanged', 0):,} already up to date")
    if kind == "convert" and summary.get("videos"):
        parts.append(f"{summary['videos']:,} videos placed")
    if kind == "tags" and summary.get("methods"):
        via = ", ".join(f"{n:,} via {'the API' if m == 'api' else m}" for m, n in summary["methods"].items() if n)
        if via:
            parts.append(via)
    if summary.get("elapsed_s") is not None:
        parts.append(f"in {human_duration(summary['elapsed_s'])}")
    line = " · ".join(parts)
    problems = [
        f"{t.get('identifier')}: {t.get('status')}" + (f" ({t['reason']})" if t.get("reason") else "")
        for t in summary.get("targets") or []
        if t.get("status") not in ("ok", None)
    ]
    if problems:
        line += "\n" + "; ".join(problems)
    if summary.get("fallback_reason"):
        line += f"\nSwitched to the browser: {summary['fallback_reason']}"
    if summary.get("stopped_early"):
        line += f"\nStopped early: {summary['stopped_early']}"
    if summary.get("error"):
        line += f"\nError: {summary['error']}"
    return line


def summary_problems(summary: dict[str, Any]) -> int:
    """Failed items plus queries that were not found or could not be listed."""
    targets = [t for t in summary.get("targets") or [] if t.get("status") in ("not found", "error")]
    return int(summary.get("failed") or 0) + len(targets)
