"""Library schema: forward migrations, one per `PRAGMA user_version`, and `split_sql`, which cuts a
migration script into statements (`db.py` applies them inside its own transaction).

Migration N takes a library at version N-1 to version N. Never edit a released migration; add one.
The image id (CivitAI's) is the identity of an image, never its path.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

LOG = logging.getLogger(__name__)

MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    # 1: initial schema
    """
    CREATE TABLE images (
        id                  INTEGER PRIMARY KEY,          -- CivitAI image id
        type                TEXT NOT NULL DEFAULT 'image', -- image | video | audio
        url                 TEXT,
        width               INTEGER,
        height              INTEGER,
        nsfw_level          INTEGER NOT NULL DEFAULT 0,    -- 1 PG, 2 PG-13, 4 R, 8 X, 16 XXX, 32 Blocked, 0 unknown
        username            TEXT,
        post_id             INTEGER,
        created_at          TEXT,                          -- ISO-8601 from the service
        base_model          TEXT,
        model_version_ids   TEXT,                          -- JSON list
        model_version_name  TEXT,
        checkpoint_name     TEXT,
        prompt              TEXT,
        meta_json           TEXT,                          -- JSON of the flat generation meta
        reactions           INTEGER NOT NULL DEFAULT 0,
        record_json         TEXT,                          -- the full API record as received
        first_seen_at       TEXT NOT NULL,
        last_seen_at        TEXT NOT NULL,
        gone_at             TEXT,                          -- set when the service stopped listing it

        -- download state: pending | done | failed
        dl_state            TEXT NOT NULL DEFAULT 'pending',
        path                TEXT,                          -- primary file on disk (absolute)
        quality             TEXT,                          -- 'original' | 'resized'
        mime                TEXT,
        bytes               INTEGER,
        sha256              TEXT,
        downloaded_at       TEXT,
        dl_error            TEXT,
        dl_attempts         INTEGER NOT NULL DEFAULT 0,
        dl_owner            TEXT,                          -- claim: "<host>:<pid>:<token>"
        dl_claimed_at       REAL,

        -- community tags: never | done | failed
        tag_state           TEXT NOT NULL DEFAULT 'never',
        tags_fetched_at     TEXT,
        tag_error           TEXT,
        tag_method          TEXT,
        tag_owner           TEXT,
        tag_claimed_at      REAL,

        -- WebP conversion: never | done | failed | skipped
        cv_state            TEXT NOT NULL DEFAULT 'never',
        cv_error            TEXT,
        cv_owner            TEXT,
        cv_claimed_at       REAL
    );
    CREATE INDEX idx_images_username   ON images(username COLLATE NOCASE);
    CREATE INDEX idx_images_created    ON images(created_at);
    CREATE INDEX idx_images_nsfw       ON images(nsfw_level);
    CREATE INDEX idx_images_type       ON images(type);
    CREATE INDEX idx_images_mvname     ON images(model_version_name);
    CREATE INDEX idx_images_reactions  ON images(reactions);
    -- The work queues. They also serve plain dl_state lookups; a separate dl_state index would
    -- tempt the planner into scanning every downloaded image when claiming tag/convert work.
    CREATE INDEX idx_images_tag_work   ON images(dl_state, tag_state);
    CREATE INDEX idx_images_cv_work    ON images(dl_state, cv_state);

    -- Which queries found an image, and where that query's copy (a hard link) lives.
    CREATE TABLE sources (
        image_id        INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        target_type     TEXT NOT NULL,        -- username | model | modelVersion | tag | update ...
        target_value    TEXT NOT NULL,
        path            TEXT,                 -- planned/actual path of the file for this query
        linked          INTEGER NOT NULL DEFAULT 0, -- 1 when the file is present at `path`
        found_at        TEXT NOT NULL,
        model_id        INTEGER,              -- for tag mode: the model that carried the tag
        PRIMARY KEY (image_id, target_type, target_value)
    ) WITHOUT ROWID;
    CREATE INDEX idx_sources_target ON sources(target_type, target_value);

    CREATE TABLE tags (
        id          INTEGER PRIMARY KEY,      -- CivitAI tag id (the truth; names can be displayed differently)
        name        TEXT NOT NULL,
        type        TEXT,
        nsfw_level  INTEGER
    );
    CREATE INDEX idx_tags_name ON tags(name COLLATE NOCASE);

    CREATE TABLE image_tags (
        image_id      INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        tag_id        INTEGER NOT NULL REFERENCES tags(id),
        score         INTEGER NOT NULL DEFAULT 0,
        up_votes      INTEGER NOT NULL DEFAULT 0,
        down_votes    INTEGER NOT NULL DEFAULT 0,
        automated     INTEGER NOT NULL DEFAULT 0,
        needs_review  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (image_id, tag_id)
    ) WITHOUT ROWID;
    CREATE INDEX idx_image_tags_tag ON image_tags(tag_id);

    CREATE TABLE conversions (
        image_id      INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
        webp_path     TEXT NOT NULL,
        quality       INTEGER,
        lossless      INTEGER NOT NULL DEFAULT 0,
        src_phash     TEXT,
        webp_phash    TEXT,
        distance      INTEGER,
        src_bytes     INTEGER,
        webp_bytes    INTEGER,
        original_removed INTEGER NOT NULL DEFAULT 0,
        converted_at  TEXT NOT NULL
    );

    CREATE TABLE jobs (
        id            TEXT PRIMARY KEY,
        kind          TEXT NOT NULL,          -- download | tags | convert | update
        params_json   TEXT NOT NULL,
        state         TEXT NOT NULL,          -- queued | running | paused | stopped | done | failed | interrupted
        progress_json TEXT,
        summary_json  TEXT,
        owner         TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE INDEX idx_jobs_state ON jobs(state);

    -- Saved queries for incremental updates.
    CREATE TABLE queries (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        mode          INTEGER NOT NULL,       -- 1 username, 2 model, 3 tag, 4 model version
        identifier    TEXT NOT NULL,
        options_json  TEXT NOT NULL,
        paused        INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT NOT NULL,
        last_run_at   TEXT,
        last_result_json TEXT,
        UNIQUE (mode, identifier)
    );
    """,
    # 2: migrate_2_gallery (below): FTS5 search index and the gallery's indexes
    # 3: (below) the tags_count column and the database table's sort indexes
]

# Full-text index of what the gallery's search box looks at: prompt, username, model names and
# community tag names. A regular FTS5 table (it keeps its own copy of the text: this SQLite has no
# contentless_delete, and tag names live in other tables), rowid = image id, kept in sync by
# triggers. `models` holds the model version and checkpoint names; `tags` the image's tag names.
FTS_TABLE = "images_fts"

_FTS_TAGS_OF = (
    "(SELECT group_concat(t.name, ' ') FROM image_tags it JOIN tags t ON t.id = it.tag_id"
    " WHERE it.image_id = {image})"
)
_FTS_MODELS_OF = "COALESCE({row}.model_version_name, '') || ' ' || COALESCE({row}.checkpoint_name, '')"

_GALLERY_INDEXES = """
    -- Covering indexes for the gallery (downloaded images only) in each sort order: the id list
    -- of 100,000 images comes from the index alone, without touching the wide rows.
    CREATE INDEX IF NOT EXISTS idx_images_done_created   ON images(dl_state, created_at);
    CREATE INDEX IF NOT EXISTS idx_images_done_reactions ON images(dl_state, reactions);
    -- The database view sorts every row by download time.
    CREATE INDEX IF NOT EXISTS idx_images_downloaded     ON images(downloaded_at);
"""

_FTS_SQL = f"""
    CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(
        prompt, username, models, tags,
        tokenize = 'unicode61 remove_diacritics 2',
        prefix = '2 3'
    );
    INSERT INTO {FTS_TABLE} (rowid, prompt, username, models, tags)
        SELECT i.id, i.prompt, i.username, {_FTS_MODELS_OF.format(row="i")}, {_FTS_TAGS_OF.format(image="i.id")}
        FROM images i;
    CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
        INSERT INTO {FTS_TABLE} (rowid, prompt, username, models, tags)
        VALUES (new.id, new.prompt, new.username, {_FTS_MODELS_OF.format(row="new")},
                {_FTS_TAGS_OF.format(image="new.id")});
    END;
    CREATE TRIGGER images_fts_update AFTER UPDATE OF prompt, username, model_version_name, checkpoint_name ON images
    WHEN old.prompt IS NOT new.prompt OR old.username IS NOT new.username
         OR old.model_version_name IS NOT new.model_version_name OR old.checkpoint_name IS NOT new.checkpoint_name
    BEGIN
        UPDATE {FTS_TABLE} SET prompt = new.prompt, username = new.username,
               models = {_FTS_MODELS_OF.format(row="new")}
        WHERE rowid = new.id;
    END;
    CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
        DELETE FROM {FTS_TABLE} WHERE rowid = old.id;
    END;
    CREATE TRIGGER images_fts_tag_added AFTER INSERT ON image_tags BEGIN
        UPDATE {FTS_TABLE} SET tags = {_FTS_TAGS_OF.format(image="new.image_id")} WHERE rowid = new.image_id;
    END;
    CREATE TRIGGER images_fts_tag_removed AFTER DELETE ON image_tags BEGIN
        UPDATE {FTS_TABLE} SET tags = {_FTS_TAGS_OF.format(image="old.image_id")} WHERE rowid = old.image_id;
    END;
    CREATE TRIGGER images_fts_tag_renamed AFTER UPDATE OF name ON tags WHEN old.name IS NOT new.name BEGIN
        UPDATE {FTS_TABLE} SET tags = {_FTS_TAGS_OF.format(image=f"{FTS_TABLE}.rowid")}
        WHERE rowid IN (SELECT image_id FROM image_tags WHERE tag_id = new.id);
    END;
"""


def split_sql(script: str) -> list[str]:
    """Split a script into statements. (`executescript` would commit our transaction first.)"""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        statements.append(buffer.strip())
    return statements


def fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.__fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp.__fts5_probe")
        return True
    except sqlite3.Error:
        return False


def migrate_2_gallery(conn: sqlite3.Connection) -> None:
    """Indexes for the gallery's filters and sort orders, and the FTS5 search index (skipped,
    with a warning, on an SQLite built without FTS5: search then falls back to LIKE)."""
    for statement in split_sql(_GALLERY_INDEXES):
        conn.execute(statement)
    if not fts5_available(conn):
        LOG.warning("This SQLite has no FTS5; the gallery search will scan instead of using an index")
        return
    # split_sql keeps each trigger body whole (sqlite3.complete_statement knows BEGIN ... END)
    for statement in split_sql(_FTS_SQL):
        conn.execute(statement)


MIGRATIONS.append(migrate_2_gallery)

# 3: the database table's sorts without reading the wide rows. `tags_count` is kept by
# TaggingOps.store_tags (the one writer of image_tags; a per-row trigger would rewrite the image
# row once per tag). The one-column id index is narrow, so "sort by id" over 100,000 rows walks
# it (~20 ms) instead of the whole table (~100 ms). Measured on the benchmark library.
MIGRATIONS.append(
    """
    ALTER TABLE images ADD COLUMN tags_count INTEGER NOT NULL DEFAULT 0;
    UPDATE images SET tags_count = (SELECT COUNT(*) FROM image_tags it WHERE it.image_id = images.id)
        WHERE id IN (SELECT DISTINCT image_id FROM image_tags);
    CREATE INDEX IF NOT EXISTS idx_images_tags_count ON images(tags_count);
    CREATE INDEX IF NOT EXISTS idx_images_path       ON images(path);
    CREATE INDEX IF NOT EXISTS idx_images_id         ON images(id);
    """
)


# 4: the folders the user chose (core/roots.py): civitgrab changes files only under these. Jobs
# register their download folder / convert destination; `migrate --trust-root` (or the GUI's
# confirmation) adds classic folders. Existing libraries start with the absolute folders their
# download and convert jobs and saved queries name (relative ones cannot be placed any more).
_ROOTS_SQL = """
    CREATE TABLE IF NOT EXISTS roots (
        path      TEXT PRIMARY KEY,   -- absolute, as chosen (resolved again at every check)
        kind      TEXT NOT NULL,      -- download | convert | classic | user
        added_at  TEXT NOT NULL
    ) WITHOUT ROWID;
"""


def migrate_4_roots(conn: sqlite3.Connection) -> None:
    import json
    import os

    from civitgrab_desktop.core.library.clock import utc_now_iso

    conn.execute(_ROOTS_SQL)
    now = utc_now_iso()
    found: list[tuple[str, str]] = []
    for kind, params_json in conn.execute("SELECT kind, params_json FROM jobs WHERE kind IN ('download', 'update', 'convert')"):
        try:
            params = json.loads(params_json or "{}")
        except ValueError:
            continue
        folder = params.get("dest") if kind == "convert" else params.get("output_dir")
        if kind == "convert" and isinstance(folder, str) and os.path.basename(folder.rstrip("/\\")) == "CivitAI_Browse":
            folder = os.path.dirname(folder.rstrip("/\\"))
        found.append(("convert" if kind == "convert" else "download", folder))
    for (options_json,) in conn.execute("SELECT options_json FROM queries"):
        try:
            found.append(("download", json.loads(options_json or "{}").get("output_dir")))
        except ValueError:
            continue
    for kind, folder in found:
        if isinstance(folder, str) and os.path.isabs(os.path.expanduser(folder)):
            conn.execute(
                "INSERT OR IGNORE INTO roots (path, kind, added_at) VALUES (?, ?, ?)",
                (os.path.normpath(os.path.expanduser(folder)), kind, now),
            )


MIGRATIONS.append(migrate_4_roots)

SCHEMA_VERSION = len(MIGRATIONS)

