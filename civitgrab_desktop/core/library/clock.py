"""Timestamps as the library stores them: ISO-8601 UTC text for dates people read, epoch
seconds (REAL) for claim times that are compared against leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc_now_iso() -> str:
    return to_iso(datetime.now(UTC))


def to_iso(moment: datetime) -> str:
    """Fixed-width ISO UTC text, so stored timestamps also sort and compare as strings."""
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is local time
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def iso_days_ago(days: float) -> str:
    return to_iso(datetime.now(UTC) - timedelta(days=days))


def epoch_to_iso(seconds: float) -> str:
    return to_iso(datetime.fromtimestamp(seconds, UTC))
