"""Job records, so the app can show past jobs and resume interrupted ones."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from civitgrab_desktop.core.library.clock import utc_now_iso
from civitgrab_desktop.core.library.db import placeholders
from civitgrab_desktop.core.library.rows import JobRow, dumps
from civitgrab_desktop.core.library.store_base import StoreBase

JOB_STATES = ("queued", "running", "paused", "stopped", "done", "failed", "interrupted")
UNFINISHED_STATES = ("queued", "running", "paused")


def _check_state(state: str) -> None:
    if state not in JOB_STATES:
        raise ValueError(f"job state must be one of {', '.join(JOB_STATES)}, not {state!r}")


class JobOps(StoreBase):
    def create_job(
        self, kind: str, params: Mapping[str, Any], *, owner: str | None = None, state: str = "queued"
    ) -> str:
        """A new job record; returns its id."""
        _check_state(state)
        job_id = uuid.uuid4().hex
        now = utc_now_iso()
        self.run_write(
            lambda c: c.execute(
                """INSERT INTO jobs (id, kind, params_json, state, owner, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (job_id, kind, dumps(dict(params)), state, owner, now, now),
            )
        )
        return job_id

    def update_job(
        self,
        job_id: str,
        state: str | None = None,
        progress: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> bool:
        """Change what is given (None leaves a field as is). False when the job does not exist."""
        sets = ["updated_at = ?"]
        params: list[Any] = [utc_now_iso()]
        if state is not None:
            _check_state(state)
            sets.append("state = ?")
            params.append(state)
        for column, value in (("progress_json", progress), ("summary_json", summary)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(dumps(dict(value)))
        if owner is not None:
            sets.append("owner = ?")
            params.append(owner)
        sql = f"UPDATE jobs SET {', '.join(sets)} WHERE id = ?"
        return self.run_write(lambda c: c.execute(sql, [*params, job_id]).rowcount) > 0

    def get_job(self, job_id: str) -> JobRow | None:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return JobRow.from_row(row) if row else None

    def list_jobs(self, states: Iterable[str] | None = None, kind: str | None = None) -> list[JobRow]:
        """Jobs, newest first."""
        conds, params = [], []
        if states is not None:
            state_list = [states] if isinstance(states, str) else list(states)
            conds.append(f"state IN ({placeholders(len(state_list))})" if state_list else "0")
            params.extend(state_list)
        if kind is not None:
            conds.append("kind = ?")
            params.append(kind)
        where = " AND ".join(conds) if conds else "1"
        rows = self._all(f"SELECT * FROM jobs WHERE {where} ORDER BY created_at DESC, rowid DESC", params)
        return [JobRow.from_row(row) for row in rows]

    def mark_interrupted_jobs(self) -> list[str]:
        """Unfinished jobs whose owner process is dead become 'interrupted' (resumable).
        Returns their ids. Owners on other hosts are left alone (we cannot see them)."""

        def work(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                f"""UPDATE jobs SET state = 'interrupted', updated_at = ?
                    WHERE state IN ({placeholders(len(UNFINISHED_STATES))}) AND owner IS NOT NULL
                      AND owner_is_dead(owner)
                    RETURNING id""",
                [utc_now_iso(), *UNFINISHED_STATES],
            ).fetchall()
            return [row[0] for row in rows]

        return self.run_write(work)
