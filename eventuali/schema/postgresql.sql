-- eventuali PostgreSQL schema, version 2.
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
--     smaller -> run the migrations in order, then this script's functions
--     (everything from "-- Functions" on) again: functions are code, not data.
--
-- Stream ids are COLLATE "C": compared byte-wise, not by the database's locale.
-- Every append inserts one (stream_id, version) index entry per event, each a
-- descent of the index with text comparisons.  Byte-wise comparison saves 3%
-- of the server's instructions for an append against a C.UTF-8 database and
-- 20% against an ICU locale (und-x-icu), counted with callgrind on stores
-- built the same way.  Ids are only compared for equality and for a lock
-- order, which any fixed order serves.
--
-- Version history: 1 -> 2 made stream ids COLLATE "C", and the append function
-- plan once per connection and insert through a ProjectSet (see the function).
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
    stream_id   text COLLATE "C" PRIMARY KEY,
    stream_type text NOT NULL,
    tenant      text NOT NULL DEFAULT '',
    version     bigint NOT NULL,             -- version of the stream's last event
    deleted     boolean NOT NULL DEFAULT false  -- tombstoned: no more appends
);

CREATE TABLE IF NOT EXISTS {schema}.eventuali_events (
    position       bigint PRIMARY KEY,       -- from eventuali_head: never reused
    event_id       bytea NOT NULL CHECK (length(event_id) = 16),
    stream_id      text COLLATE "C" NOT NULL,
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
    stream_id      text COLLATE "C" NOT NULL,
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

-- Functions
--
-- One append, in one round trip: writes (one array element per StreamWrite)
-- and records (one element per record, writes concatenated; r_write is the
-- 1-based index of the record's write, r_offset its 1-based index within it).
-- Raises SQLSTATE EV409 (message: stream id, detail: "expected actual") on a
-- version mismatch and EV410 (message: stream id) for a deleted stream, for
-- the first offending write in order; nothing is written then.  Returns the
-- position of the last record (NULL when there are none).
CREATE OR REPLACE FUNCTION {schema}.eventuali_append(
    w_stream_ids text[], w_stream_types text[], w_tenants text[], w_expected bigint[],
    w_counts integer[],
    r_write integer[], r_offset integer[], r_event_ids bytea[], r_event_types text[],
    r_schema_versions integer[], r_timestamps bigint[], r_metadata bytea[], r_payloads bytea[],
    checkpoint_name text, checkpoint_position bigint, channel text
) RETURNS bigint LANGUAGE plpgsql
-- Generic plans: the statements below are planned once per connection (and
-- again when ANALYZE changes a table's statistics), not on every call.  With
-- the default (custom plans while they look cheaper) the planner ran for every
-- statement of every append - about 6% of the server's instructions and ~17%
-- of an append's time on the server, measured with pgbench.
-- Every table access here is a lookup by primary key, and written so that no
-- join is left to plan: with the statistics of a young store (never analyzed:
-- ~600 rows assumed) a join of the writes against eventuali_streams became a
-- hash join over a full scan, so an append's cost grew with the number of
-- streams (1.1 -> 2.7 ms for a one-event append after 6,000 streams) until
-- autovacuum analyzed the table.  (enable_seqscan = off is no fix: the
-- disabled-scan cost of the one-row eventuali_head update then set off JIT
-- compilation, 130 ms a call.)  tests/postgres checks the plans via auto_explain.
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    bases bigint[];
    bad integer;
    bad_deleted boolean;
    bad_base bigint;
    total integer;
    last bigint;
BEGIN
    -- Lock the existing stream rows in one order (no deadlocks between appends);
    -- the next statement takes a new snapshot, so it reads the versions as they
    -- are once the locks are ours.
    PERFORM 1 FROM {schema}.eventuali_streams
     WHERE stream_id = ANY (w_stream_ids) ORDER BY stream_id FOR UPDATE;

    WITH w AS (
        SELECT * FROM unnest(w_stream_ids, w_expected, w_counts)
               WITH ORDINALITY AS w(sid, expected, cnt, wi)
    ), b AS (
        -- A stream named twice in one append: each write starts where the previous ended.
        -- The stream rows are looked up per write (correlated subqueries: primary-key
        -- lookups whatever the statistics say), not joined: see the SET clauses.
        SELECT w.wi, w.expected,
               coalesce((SELECT s.deleted FROM {schema}.eventuali_streams s
                          WHERE s.stream_id = w.sid), false) AS deleted,
               coalesce((SELECT s.version FROM {schema}.eventuali_streams s
                          WHERE s.stream_id = w.sid), 0)
               + coalesce(sum(w.cnt) OVER (
                   PARTITION BY w.sid ORDER BY w.wi
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS base
          FROM w
    )
    SELECT array_agg(base ORDER BY wi),
           min(wi) FILTER (WHERE deleted OR NOT (expected = -1 OR expected = base
                           OR (expected = -2 AND base = 0) OR (expected = -3 AND base > 0)))
      INTO bases, bad FROM b;

    IF bad IS NOT NULL THEN
        SELECT coalesce(s.deleted, false) INTO bad_deleted
          FROM (SELECT 1) one LEFT JOIN {schema}.eventuali_streams s ON s.stream_id = w_stream_ids[bad];
        IF bad_deleted THEN
            RAISE EXCEPTION USING ERRCODE = 'EV410', MESSAGE = w_stream_ids[bad];
        END IF;
        bad_base := bases[bad];
        RAISE EXCEPTION USING ERRCODE = 'EV409', MESSAGE = w_stream_ids[bad],
            DETAIL = w_expected[bad]::text || ' ' || bad_base::text;
    END IF;

    total := coalesce(array_length(r_event_ids, 1), 0);
    IF total > 0 THEN
        INSERT INTO {schema}.eventuali_streams AS t (stream_id, stream_type, tenant, version)
        SELECT DISTINCT ON (w_stream_ids[wi]) w_stream_ids[wi], w_stream_types[wi], w_tenants[wi],
               bases[wi] + cnt
          FROM unnest(w_counts) WITH ORDINALITY AS c(cnt, wi)
         WHERE cnt > 0
         ORDER BY w_stream_ids[wi], wi DESC
        ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version;

        -- The serialization point: positions in commit order (see the header).
        UPDATE {schema}.eventuali_head SET position = position + total RETURNING position INTO last;

        INSERT INTO {schema}.eventuali_events (position, event_id, stream_id, stream_type, version,
               event_type, schema_version, timestamp, tenant, metadata, payload)
        SELECT last - total + r.ord, r.eid, w_stream_ids[r.wi], w_stream_types[r.wi],
               bases[r.wi] + r.off, r.et, r.sv, r.ts, w_tenants[r.wi], r.md, r.pl
          -- Set-returning functions in a select list (a ProjectSet) run in lockstep and
          -- stream their rows; unnest(a, b, ...) in FROM would first copy every array
          -- into a tuplestore (4% of the server's instructions for an append, callgrind).
          -- Arrays of unequal length would pad with NULLs, which NOT NULL refuses.
          FROM (SELECT unnest(r_write) AS wi, unnest(r_offset) AS off,
                       unnest(r_event_ids) AS eid, unnest(r_event_types) AS et,
                       unnest(r_schema_versions) AS sv, unnest(r_timestamps) AS ts,
                       unnest(r_metadata) AS md, unnest(r_payloads) AS pl,
                       generate_series(1, total) AS ord) r;

        PERFORM pg_notify(channel, last::text);
    END IF;

    IF checkpoint_name IS NOT NULL THEN
        INSERT INTO {schema}.eventuali_checkpoints (name, position)
        VALUES (checkpoint_name, checkpoint_position)
        ON CONFLICT (name) DO UPDATE SET position = excluded.position;
    END IF;
    RETURN last;
END
$fn$;
