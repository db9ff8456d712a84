-- eventuali PostgreSQL schema, version 1.
--
-- The one layout every engine that serves postgresql:// shares.  {schema} is
-- replaced by the quoted schema name of the URL option ``schema`` (default
-- ``eventuali``); every object lives in that schema, so several stores can
-- share one database.
--
-- Opening a store (every engine does the same):
--   * in one transaction holding pg_advisory_xact_lock(<key of the schema>),
--     so several processes starting at once create it exactly once:
--   * no eventuali_meta table -> if the schema holds other tables:
--     NotAnEventualiStoreError; otherwise run this script and insert the
--     eventuali_meta rows;
--   * schema_version greater than the engine's -> SchemaVersionError;
--     smaller -> run the migrations in order (none yet).
--
-- Global order.  eventuali_head holds one row: the last position handed out.
-- An append locks its stream rows (sorted by stream id), checks versions, and
-- only then updates eventuali_head, which it holds locked until it commits.
-- So positions are handed out in commit order, and a reader paging by
-- position can never see position n+1 before position n is visible.

CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.eventuali_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
-- rows: ('schema_version', '1'), ('created_by', '<backend name> <version>')

CREATE TABLE IF NOT EXISTS {schema}.eventuali_head (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    position bigint NOT NULL
);
INSERT INTO {schema}.eventuali_head (one, position) VALUES (true, 0) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS {schema}.eventuali_streams (
    stream_id   text PRIMARY KEY,
    stream_type text NOT NULL,
    tenant      text NOT NULL DEFAULT '',
    version     bigint NOT NULL,             -- version of the stream's last event
    deleted     boolean NOT NULL DEFAULT false  -- tombstoned: no more appends
);

CREATE TABLE IF NOT EXISTS {schema}.eventuali_events (
    position       bigint PRIMARY KEY,       -- from eventuali_head: never reused
    event_id       bytea NOT NULL CHECK (length(event_id) = 16),
    stream_id      text NOT NULL,
    stream_type    text NOT NULL,
    version        bigint NOT NULL,
    event_type     text NOT NULL,
    schema_version integer NOT NULL,
    timestamp      bigint NOT NULL,          -- microseconds since the epoch, UTC
    tenant         text NOT NULL,
    metadata       bytea NOT NULL,
    payload        bytea NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS eventuali_events_event_id ON {schema}.eventuali_events (event_id);
CREATE UNIQUE INDEX IF NOT EXISTS eventuali_events_stream ON {schema}.eventuali_events (stream_id, version);

CREATE TABLE IF NOT EXISTS {schema}.eventuali_snapshots (
    stream_id      text NOT NULL,
    version        bigint NOT NULL,
    schema_version integer NOT NULL,
    timestamp      bigint NOT NULL,
    payload        bytea NOT NULL,
    PRIMARY KEY (stream_id, version)
);

CREATE TABLE IF NOT EXISTS {schema}.eventuali_checkpoints (
    name     text PRIMARY KEY,
    position bigint NOT NULL
);
