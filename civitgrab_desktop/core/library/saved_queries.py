"""Saved queries (a mode plus an identifier, with options) for incremental updates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from civitgrab_desktop.core.library.clock import utc_now_iso
from civitgrab_desktop.core.library.rows import SavedQuery, dumps
from civitgrab_desktop.core.library.store_base import StoreBase


class SavedQueryOps(StoreBase):
    def save_query(self, mode: int, identifier: str, options: Mapping[str, Any]) -> int:
        """Create the query, or replace the options of the one with the same mode and identifier.
        Returns its id."""
        now = utc_now_iso()
        return self.run_write(
            lambda c: c.execute(
                """INSERT INTO queries (mode, identifier, options_json, created_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT(mode, identifier) DO UPDATE SET options_json = excluded.options_json
                   RETURNING id""",
                (int(mode), str(identifier), dumps(dict(options)), now),
            ).fetchone()[0]
        )

    def list_queries(self) -> list[SavedQuery]:
        rows = self._all("SELECT * FROM queries ORDER BY mode, identifier COLLATE NOCASE")
        return [SavedQuery.from_row(row) for row in rows]

    def get_query(self, query_id: int) -> SavedQuery | None:
        row = self._one("SELECT * FROM queries WHERE id = ?", (int(query_id),))
        return SavedQuery.from_row(row) if row else None

    def update_query(
        self, query_id: int, options: Mapping[str, Any] | None = None, paused: bool | None = None
    ) -> bool:
        sets, params = [], []
        if options is not None:
            sets.append("options_json = ?")
            params.append(dumps(dict(options)))
        if paused is not None:
            sets.append("paused = ?")
            params.append(1 if paused else 0)
        if not sets:
            return self.get_query(query_id) is not None
        sql = f"UPDATE queries SET {', '.join(sets)} WHERE id = ?"
        return self.run_write(lambda c: c.execute(sql, [*params, int(query_id)]).rowcount) > 0

    def delete_query(self, query_id: int) -> bool:
        return (
            self.run_write(lambda c: c.execute("DELETE FROM queries WHERE id = ?", (int(query_id),)).rowcount)
            > 0
        )

    def mark_query_run(self, query_id: int, result: Mapping[str, Any]) -> bool:
        """Remember when the query last ran and what it found."""
        return (
            self.run_write(
                lambda c: (
                    c.execute(
                        "UPDATE queries SET last_run_at = ?, last_result_json = ? WHERE id = ?",
                        (utc_now_iso(), dumps(dict(result)), int(query_id)),
                    ).rowcount
                )
            )
            > 0
        )
