-- eventuali SQLite schema, version 1.
--
-- The one file format shared by every backend that serves sqlite:// (the
-- reference backend reads this file; the C backend embeds it at build time),
-- so a database written by one engine is read and appended to by the other.
--
-- Connection settings every engine applies on open (not stored in the file):
--   PRAGMA journal_mode = WAL;      -- readers never block the writer
--   PRAGMA synchronous = NORMAL;    -- durable against process crash; an OS crash
--                                   -- may lose the last commits, never corrupt
--                                   -- (URL option synchronous=full for fsync per commit)
--   PRAGMA busy_timeout = 5000;     -- wait for another process's write lock
--   PRAGMA foreign_keys = OFF;
-- Opening a file (every engine does the same):
--   * no tables at all -> in one BEGIN IMMEDIATE transaction, check again and
--     run this script, then insert the eventuali_meta rows (safe when several
--     processes create the same file at once);
--   * tables but no eventuali_meta -> NotAnEventualiStoreError;
--   * schema_version greater than the engine's -> SchemaVersionError;
--     smaller -> run the migrations in order (none yet).
-- Every write transaction starts with BEGIN IMMEDIATE, so positions are
-- assigned in commit order (one writer at a time per file) and the
-- optimistic-concurrency check and the insert see the same state.

CREATE TABLE IF NOT EXISTS eventuali_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
-- rows: ('schema_version', '1'), ('created_by', '<backend name> <version>')

CREATE TABLE IF NOT EXISTS eventuali_streams (
    stream_id   TEXT PRIMARY KEY,
    stream_type TEXT NOT NULL,
    tenant      TEXT NOT NULL DEFAULT '',
    version     INTEGER NOT NULL,          -- version of the stream's last event
    deleted     INTEGER NOT NULL DEFAULT 0 -- 1 = tombstoned: no more appends
) WITHOUT ROWID;

-- AUTOINCREMENT: a position is never reused, even after the newest events are deleted.
CREATE TABLE IF NOT EXISTS eventuali_events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       BLOB NOT NULL,          -- 16 bytes
    stream_id      TEXT NOT NULL,
    stream_type    TEXT NOT NULL,
    version        INTEGER NOT NULL,
    event_type     TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    timestamp      INTEGER NOT NULL,       -- microseconds since the epoch, UTC
    tenant         TEXT NOT NULL,
    metadata       BLOB NOT NULL,
    payload        BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS eventuali_events_event_id ON eventuali_events (event_id);
CREATE UNIQUE INDEX IF NOT EXISTS eventuali_events_stream ON eventuali_events (stream_id, version);

CREATE TABLE IF NOT EXISTS eventuali_snapshots (
    stream_id      TEXT NOT NULL,
    version        INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    timestamp      INTEGER NOT NULL,
    payload        BLOB NOT NULL,
    PRIMARY KEY (stream_id, version)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS eventuali_checkpoints (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
