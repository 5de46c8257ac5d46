"""CSV export of the library: one row per image, streamed to a temp file and renamed into place,
so a crash never leaves half a CSV under the final name.

Names, prompts and tags come from the service or from imported files: a cell starting with
`= + - @`, a tab or a carriage return would run as a formula in Excel or LibreOffice. Such text gets
a leading `'` (OWASP's CSV injection rule); numbers stay numbers. Every CSV we write goes through
`csv_cell` (this export, the database page's export, the tag-mode summary of downloads)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from civitgrab_desktop.core.library.db import run_read
from civitgrab_desktop.core.library.filters import ImageFilter
from civitgrab_desktop.core.library.store_base import StoreBase

TAG_SEPARATOR = ";"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """`value` as a spreadsheet-safe CSV cell: numbers as they are, None as "", text that a
    spreadsheet would run as a formula with a leading `'`."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_row(values: Sequence[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]

# column name -> SQL expression over `images i` left-joined with `conversions c`
_COLUMN_SQL: dict[str, str] = {
    "image_id": "i.id",
    "type": "i.type",
    "nsfw_level": "i.nsfw_level",
    "username": "i.username",
    "model_version_name": "i.model_version_name",
    "checkpoint_name": "i.checkpoint_name",
    "base_model": "i.base_model",
    "created_at": "i.created_at",
    "width": "i.width",
    "height": "i.height",
    "url": "i.url",
    "path": "i.path",
    "quality": "i.quality",
    "mime": "i.mime",
    "bytes": "i.bytes",
    "sha256": "i.sha256",
    "dl_state": "i.dl_state",
    "downloaded_at": "i.downloaded_at",
    "tags": "NULL",  # filled per row, see _tag_names
    "tags_scraped": "CASE WHEN i.tag_state = 'done' THEN 1 ELSE 0 END",
    "tags_fetched_at": "i.tags_fetched_at",
    "converted": "CASE WHEN i.cv_state = 'done' THEN 1 ELSE 0 END",
    "webp_path": "c.webp_path",
    "webp_bytes": "c.webp_bytes",
    "gone": "CASE WHEN i.gone_at IS NULL THEN 0 ELSE 1 END",
    "prompt": "i.prompt",
}
CSV_COLUMNS: tuple[str, ...] = tuple(_COLUMN_SQL)


def _connection_of(store_or_conn: StoreBase | sqlite3.Connection) -> sqlite3.Connection:
    if isinstance(store_or_conn, sqlite3.Connection):
        return store_or_conn
    return store_or_conn.connection


def _tag_names(conn: sqlite3.Connection, image_id: int) -> str:
    rows = conn.execute(
        """SELECT t.name FROM image_tags it JOIN tags t ON t.id = it.tag_id
           WHERE it.image_id = ? ORDER BY it.score DESC, t.name COLLATE NOCASE, t.id""",
        (image_id,),
    ).fetchall()
    return TAG_SEPARATOR.join(row[0] for row in rows)


def export_csv(
    store_or_conn: StoreBase | sqlite3.Connection,
    path: str | Path,
    *,
    filters: ImageFilter | Mapping[str, Any] | None = None,
    columns: Sequence[str] = CSV_COLUMNS,
    ids: Sequence[int] | None = None,
) -> int:
    """Write the matching images (id order) to `path` as UTF-8 CSV with a header row; returns
    the number of data rows. `tags` holds tag names joined by ';', highest score first.

    `ids` (what a table shows, in its order) exports exactly those images in that order instead;
    ids no longer in the library are left out."""
    columns = list(columns)
    unknown = [c for c in columns if c not in _COLUMN_SQL]
    if unknown:
        raise ValueError(f"unknown CSV columns: {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}")
    conn = _connection_of(store_or_conn)
    where, params = ImageFilter.coerce(filters).to_sql("i")
    select = ", ".join(f"{_COLUMN_SQL[c]} AS {c}" for c in columns)
    base = f"SELECT i.id AS _id, {select} FROM images i LEFT JOIN conversions c ON c.image_id = i.id"
    sql = f"{base} WHERE {where} ORDER BY i.id"
    by_ids_sql = f"{base} WHERE i.id IN (SELECT value FROM json_each(?))"
    want_tags = "tags" in columns
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)

    def rows(c: sqlite3.Connection) -> Iterator[sqlite3.Row]:
        cursor = c.cursor()
        cursor.row_factory = sqlite3.Row  # the caller's connection may not use Row
        if ids is None:
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(500):
                yield from batch
            return
        wanted = [int(i) for i in ids]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            cursor.execute(by_ids_sql, (json.dumps(chunk),))
            by_id = {row["_id"]: row for row in cursor.fetchall()}
            yield from (by_id[i] for i in chunk if i in by_id)

    def write(c: sqlite3.Connection) -> int:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                count = 0
                for row in rows(c):
                    values = [row[col] for col in columns]
                    if want_tags:
                        values[columns.index("tags")] = _tag_names(c, row["_id"])
                    writer.writerow(csv_row(values))
                    count += 1
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            return count
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # One read transaction: the export is a consistent snapshot even while others write.
    def snapshot(c: sqlite3.Connection) -> int:
        c.execute("BEGIN")
        try:
            return write(c)
        finally:
            c.execute("COMMIT")

    if conn.in_transaction:
        return write(conn)
    return run_read(conn, snapshot)
