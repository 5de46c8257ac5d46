"""Library schema: forward migrations, one per `PRAGMA user_version`.

Migration N takes a library at version N-1 to version N. Never edit a released migration; add one.
The image id (CivitAI's) is the identity of an image, never its path.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
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
]

SCHEMA_VERSION = len(MIGRATIONS)
