"""The classic CLI's tracking data, read and written into the library: `downloaded_images.json`
(old versions) and `tracking_database.sqlite` (tables tracked_images and image_tags). The import
itself (finding each recorded file on disk, checking it is media, hashing it) is jobs/migrate.py.

Every classic key becomes an image row plus a source row; nothing is dropped:
- a file found on disk makes the image `done` (path, size and sha256 taken from the file);
- a missing file leaves it `pending` with the URL kept and the old path as the source's plan;
- the classic "tags" are the Mode-3 search tags a file was found with, so they become sources of
  type 'tag' (community tags come from the tag job, never from here).
Running the import again adds nothing twice. Bad entries are counted and reported, never fatal.

The classic files are hostile input: a recorded path may name any file on the disk (absolute, or
`../` out of the classic folder). Importing only reads: files are hashed (by jobs/migrate.py),
never changed, and the classic SQLite is opened read-only with its schema untrusted. Whether later work may change an
imported file is decided at the moment of use by core/roots.py: only files under a folder the user
chose (a download folder, or a classic folder confirmed with `--trust-root`) are ever changed; the
report lists the folders the imported files live in, so the user can choose.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from civitgrab_desktop.core.library.clock import to_iso, utc_now_iso
from civitgrab_desktop.core.library.store_base import StoreBase

BATCH_SIZE = 200
MAX_MESSAGES = 200

LEGACY_SOURCE_TYPE = "classic"  # keys without a context: ("classic", "<SD|HD>")
QUALITY_NAMES = {"HD": "original", "SD": "resized"}
VIDEO_EXTENSIONS = {".mp4", ".webm", ".mov", ".mkv"}
# "%Y-%m-%d - %H:%M" and the spacing variants older versions wrote ("YYYY-MM-DD- H:M").
_DATE_RE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:\s*-?\s*(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?\s*$")


@dataclass
class ImportReport:
    images_new: int = 0
    images_updated: int = 0  # pending images whose file the import found
    sources_new: int = 0
    skipped: int = 0  # entries that added nothing (already imported)
    missing_files: int = 0
    errors: int = 0
    entries: int = 0
    messages: list[str] = field(default_factory=list)
    folders: dict[str, int] = field(default_factory=dict)  # folder of each found file -> files

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(message)


@dataclass(frozen=True)
class ClassicKey:
    image_id: int
    quality: str
    target_type: str | None  # None for legacy "<id>_<quality>" keys
    target_value: str | None


def parse_classic_key(key: str) -> ClassicKey:
    """`<id>_<quality>` or `<ctx>_<id>_<quality>` with ctx `type:value` (the value may hold '_'
    and ':'). Raises ValueError for anything else."""
    rest, sep, quality = key.rpartition("_")
    if not sep or not quality:
        raise ValueError(f"unrecognized classic key {key!r}")
    if rest.isdigit():
        return ClassicKey(int(rest), quality, None, None)
    context, sep, image_id = rest.rpartition("_")
    ctx_type, colon, ctx_value = context.partition(":")
    if not sep or not image_id.isdigit() or not colon or not ctx_type or not ctx_value:
        raise ValueError(f"unrecognized classic key {key!r}")
    return ClassicKey(int(image_id), quality, ctx_type, ctx_value)


def parse_classic_date(text: object) -> str | None:
    """Classic dates are local time without a zone; returns ISO UTC, or None if unreadable."""
    if not isinstance(text, str):
        return None
    m = _DATE_RE.match(text)
    if not m:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) if g else 0 for g in m.groups())
        return to_iso(datetime(year, month, day, hour, minute, second))
    except ValueError:
        return None


@dataclass
class ClassicEntry:
    key: str
    image_id: int
    quality: str | None
    path: str | None
    download_date: str | None
    url: str | None
    checkpoint_name: str | None
    targets: list[tuple[str, str]]  # sources to record (query context and search tags)


@dataclass
class FileFacts:
    """A classic file found on disk (jobs/migrate.py finds and hashes it); sha256 None: not hashed
    because the image is already done."""

    path: str
    bytes: int
    sha256: str | None
    mime: str | None


def _str_or_none(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _entry(
    key: str,
    *,
    image_id: object = None,
    quality: object = None,
    path: object = None,
    download_date: object = None,
    url: object = None,
    checkpoint_name: object = None,
    target_type: object = None,
    target_value: object = None,
    tags: object = None,
) -> ClassicEntry:
    """Build an entry from one classic record; explicit columns win over what the key says."""
    try:
        parsed: ClassicKey | None = parse_classic_key(key)
    except ValueError:
        parsed = None
    id_text = _str_or_none(image_id)
    if id_text is not None and id_text.strip().isdigit():
        iid = int(id_text)
    elif parsed is not None:
        iid = parsed.image_id
    else:
        raise ValueError(f"{key!r}: no usable image id")
    if iid <= 0:
        raise ValueError(f"{key!r}: invalid image id {iid}")
    qual = _str_or_none(quality) or (parsed.quality if parsed else None)
    targets: list[tuple[str, str]] = []
    t_type, t_value = _str_or_none(target_type), _str_or_none(target_value)
    if t_type and t_value:
        targets.append((t_type, t_value))
    elif parsed is not None and parsed.target_type:
        targets.append((parsed.target_type, parsed.target_value or ""))
    else:
        targets.append((LEGACY_SOURCE_TYPE, qual or "unknown"))
    if isinstance(tags, list):
        for tag in tags:
            name = _str_or_none(tag)
            if name:
                targets.append(("tag", name.strip()))
    return ClassicEntry(
        key=key,
        image_id=iid,
        quality=qual,
        path=_str_or_none(path),
        download_date=parse_classic_date(download_date),
        url=_str_or_none(url),
        checkpoint_name=_str_or_none(checkpoint_name),
        targets=list(dict.fromkeys(targets)),
    )


def iter_json_entries(json_path: Path, report: ImportReport) -> Iterator[ClassicEntry]:
    try:
        data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.error(f"{json_path}: cannot read the classic JSON: {exc}")
        return
    except RecursionError:
        report.error(f"{json_path}: cannot read the classic JSON: it is nested too deeply")
        return
    if not isinstance(data, dict):
        report.error(f"{json_path}: expected a JSON object of entries, got {type(data).__name__}")
        return
    for key, value in data.items():
        report.entries += 1
        if not isinstance(value, dict):
            report.error(f"{json_path}: entry {key!r} is not an object")
            continue
        try:
            yield _entry(
                key,
                quality=value.get("quality"),
                path=value.get("path"),
                download_date=value.get("download_date"),
                url=value.get("url"),
                checkpoint_name=value.get("checkpoint_name"),
                target_type=value.get("target_type"),
                target_value=value.get("target_value"),
                tags=value.get("tags"),
            )
        except ValueError as exc:
            report.error(f"{json_path}: {exc}")


def open_classic_sqlite(sqlite_path: str | Path) -> sqlite3.Connection:
    """The classic database, read-only: nothing is written to it (no journal either), and its
    schema is not trusted (views and triggers cannot call functions with side effects)."""
    conn = sqlite3.connect(f"{Path(sqlite_path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def iter_sqlite_entries(sqlite_path: Path, report: ImportReport) -> Iterator[ClassicEntry]:
    try:
        conn = open_classic_sqlite(sqlite_path)
    except sqlite3.Error as exc:
        report.error(f"{sqlite_path}: cannot open the classic database: {exc}")
        return
    try:
        conn.row_factory = sqlite3.Row
        try:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(tracked_images)")}
        except sqlite3.DatabaseError as exc:
            report.error(f"{sqlite_path}: not a readable SQLite database: {exc}")
            return
        if "image_key" not in columns:
            report.error(f"{sqlite_path}: no tracked_images table")
            return
        tags_by_key: dict[str, list[str]] = {}
        try:
            for row in conn.execute("SELECT image_key, tag FROM image_tags"):
                tags_by_key.setdefault(row[0], []).append(row[1])
        except sqlite3.Error:
            pass  # very old databases have no image_tags table
        wanted = [
            "image_id",
            "quality",
            "path",
            "download_date",
            "url",
            "checkpoint_name",
            "target_type",
            "target_value",
        ]
        select = ", ".join(["image_key", *(c if c in columns else f"NULL AS {c}" for c in wanted)])
        for row in conn.execute(f"SELECT {select} FROM tracked_images"):
            report.entries += 1
            key = row["image_key"]
            if not isinstance(key, str):
                report.error(f"{sqlite_path}: tracked_images row with a non-text key {key!r}")
                continue
            try:
                yield _entry(
                    key,
                    image_id=row["image_id"],
                    quality=row["quality"],
                    path=row["path"],
                    download_date=row["download_date"],
                    url=row["url"],
                    checkpoint_name=row["checkpoint_name"],
                    target_type=row["target_type"],
                    target_value=row["target_value"],
                    tags=tags_by_key.get(key),
                )
            except ValueError as exc:
                report.error(f"{sqlite_path}: {exc}")
    except sqlite3.Error as exc:
        report.error(f"{sqlite_path}: reading stopped: {exc}")
    finally:
        conn.close()


def _media_type(entry: ClassicEntry, facts: FileFacts | None) -> str:
    name = facts.path if facts else (entry.path or entry.url or "")
    suffix = Path(name.split("?")[0]).suffix.lower()
    return "video" if suffix in VIDEO_EXTENSIONS else "image"


def done_ids(store: StoreBase, batch: list[ClassicEntry]) -> set[int]:
    """The batch's images the library has downloaded already (their files need no hashing)."""
    ids = json.dumps(sorted({e.image_id for e in batch}))
    return {
        row[0]
        for row in store.run_read(
            lambda c: c.execute(
                "SELECT id FROM images WHERE dl_state = 'done' AND id IN (SELECT value FROM json_each(?))",
                (ids,),
            ).fetchall()
        )
    }


def write_batch(
    store: StoreBase,
    batch: list[ClassicEntry],
    facts: dict[str, FileFacts | None],
    located: dict[str, str | None],
    planned: dict[str, str | None],
    report: ImportReport,
) -> None:
    """Write a batch of entries in one transaction; `facts`, `located` and `planned` are keyed by
    entry key: the file found (None: missing), where it was found, where the classic tool meant it."""

    def work(c: sqlite3.Connection) -> tuple[int, int, int, int]:
        # Counted per attempt: run_write may run this again after a busy rollback.
        new = updated = sources = skipped = 0
        for entry in batch:
            n_new, n_updated, n_sources = _write_entry(
                c, entry, facts[entry.key], located[entry.key], planned[entry.key]
            )
            new, updated, sources = new + n_new, updated + n_updated, sources + n_sources
            skipped += 0 if (n_new or n_updated or n_sources) else 1
        return new, updated, sources, skipped

    new, updated, sources, skipped = store.run_write(work)
    report.images_new += new
    report.images_updated += updated
    report.sources_new += sources
    report.skipped += skipped


def _write_entry(
    c: sqlite3.Connection,
    entry: ClassicEntry,
    facts: FileFacts | None,
    found_path: str | None,
    planned_path: str | None = None,
) -> tuple[int, int, int]:
    """Write one entry; returns (image added, image upgraded to done, sources added)."""
    now = utc_now_iso()
    seen = entry.download_date or now
    quality = QUALITY_NAMES.get(entry.quality or "", (entry.quality or "").lower() or None)
    have_file = facts is not None and facts.sha256 is not None
    added = c.execute(
        """INSERT OR IGNORE INTO images (id, type, url, checkpoint_name, first_seen_at, last_seen_at,
               dl_state, path, quality, mime, bytes, sha256, downloaded_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (
            entry.image_id,
            _media_type(entry, facts),
            entry.url,
            entry.checkpoint_name,
            seen,
            seen,
            "done" if have_file else "pending",
            facts.path if have_file else None,
            quality,
            facts.mime if have_file else None,
            facts.bytes if have_file else None,
            facts.sha256 if have_file else None,
            seen if have_file else None,
        ),
    ).rowcount
    updated = 0
    if not added:
        c.execute(
            "UPDATE images SET url = COALESCE(url, ?), checkpoint_name = COALESCE(checkpoint_name, ?) WHERE id = ?",
            (entry.url, entry.checkpoint_name, entry.image_id),
        )
        if have_file:
            updated = c.execute(
                """UPDATE images SET dl_state = 'done', path = ?, quality = ?, mime = ?, bytes = ?, sha256 = ?,
                          downloaded_at = COALESCE(downloaded_at, ?), dl_error = NULL
                   WHERE id = ? AND dl_state != 'done'""",
                (facts.path, quality, facts.mime, facts.bytes, facts.sha256, seen, entry.image_id),
            ).rowcount
    source_path = found_path or planned_path
    new_sources = 0
    for target_type, target_value in entry.targets:
        new_sources += c.execute(
            """INSERT OR IGNORE INTO sources (image_id, target_type, target_value, path, linked, found_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (entry.image_id, target_type, target_value, source_path, 1 if found_path else 0, seen),
        ).rowcount
    return added, updated, new_sources
