-- eventuali PostgreSQL hash chain (URL option integrity=chain).
--
-- Run once, under the schema's advisory lock, when a store that holds no event
-- yet is opened with integrity=chain; the eventuali_meta row ('integrity',
-- 'chain') records it.  The entries are written by triggers, inside the
-- transaction of the statement that changes eventuali_events, whichever
-- client or engine runs it:
--   * after the INSERT of eventuali_append: one entry per record, in position
--     order.  Safe to chain there: eventuali_append updates the eventuali_head
--     row before it inserts and holds that row's lock until it commits, so
--     appends (and their chain entries) are serialized in position order, and
--     the previous append's entries are committed and visible (READ COMMITTED
--     takes a new snapshot per statement) when the next one reads the last
--     entry;
--   * after a DELETE by delete_stream or truncate_stream (their statement sets
--     eventuali.retention = 'on' for its transaction; any other DELETE is not
--     chained, so rows dropped behind the engine's back show up as missing):
--     one entry per stream
--     whose records went, kind 2 if the stream is tombstoned, else kind 3 with
--     version = one past the newest removed version.  The trigger first locks
--     the eventuali_head row, so it is serialized with appends the same way.
-- Byte layout: eventuali/integrity/chain.py (sha256() is PostgreSQL's).

CREATE TABLE IF NOT EXISTS {schema}.eventuali_chain (
    seq       bigint PRIMARY KEY,        -- 1, 2, ... in commit order
    kind      smallint NOT NULL,         -- 1 event, 2 delete_stream, 3 truncate_stream
    position  bigint NOT NULL,           -- the event's position; the head, for retention
    stream_id text COLLATE "C" NOT NULL,
    version   bigint NOT NULL,
    digest    bytea NOT NULL,            -- 32 bytes; zeros for retention entries
    hash      bytea NOT NULL             -- 32 bytes
);

-- u32 length || UTF-8 bytes
CREATE OR REPLACE FUNCTION {schema}.eventuali_chain_str(v bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT int4send(length(v)) || v $$;

CREATE OR REPLACE FUNCTION {schema}.eventuali_chain_link(
    prev bytea, kind integer, pos bigint, ver bigint, sid text, digest bytea
) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT sha256(prev || set_byte('\x00'::bytea, 0, kind) || int8send(pos) || int8send(ver)
                  || {schema}.eventuali_chain_str(convert_to(sid, 'UTF8')) || digest)
$$;

CREATE OR REPLACE FUNCTION {schema}.eventuali_chain_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    prev bytea;
    n bigint;
    d bytea;
BEGIN
    SELECT seq, hash INTO n, prev FROM {schema}.eventuali_chain ORDER BY seq DESC LIMIT 1;
    IF n IS NULL THEN
        n := 0;
        prev := decode(repeat('00', 32), 'hex');
    END IF;
    FOR r IN SELECT * FROM eventuali_new_rows ORDER BY position LOOP
        d := sha256(r.event_id || int8send(r.schema_version::bigint) || int8send(r.timestamp)
                    || {schema}.eventuali_chain_str(convert_to(r.stream_type, 'UTF8'))
                    || {schema}.eventuali_chain_str(convert_to(r.event_type, 'UTF8'))
                    || {schema}.eventuali_chain_str(convert_to(r.tenant, 'UTF8'))
                    || {schema}.eventuali_chain_str(r.metadata)
                    || {schema}.eventuali_chain_str(r.payload));
        n := n + 1;
        prev := {schema}.eventuali_chain_link(prev, 1, r.position, r.version, r.stream_id, d);
        INSERT INTO {schema}.eventuali_chain VALUES (n, 1, r.position, r.stream_id, r.version, d, prev);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION {schema}.eventuali_chain_removed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    prev bytea;
    n bigint;
    head bigint;
    zero bytea := decode(repeat('00', 32), 'hex');
BEGIN
    IF current_setting('eventuali.retention', true) IS DISTINCT FROM 'on' THEN
        RETURN NULL;
    END IF;
    SELECT position INTO head FROM {schema}.eventuali_head FOR UPDATE;  -- serialize with appends
    SELECT seq, hash INTO n, prev FROM {schema}.eventuali_chain ORDER BY seq DESC LIMIT 1;
    IF n IS NULL THEN
        n := 0;
        prev := zero;
    END IF;
    FOR r IN
        SELECT o.stream_id, max(o.version) + 1 AS bound, coalesce(bool_or(s.deleted), false) AS deleted
        FROM eventuali_old_rows o LEFT JOIN {schema}.eventuali_streams s USING (stream_id)
        GROUP BY o.stream_id ORDER BY o.stream_id
    LOOP
        n := n + 1;
        IF r.deleted THEN
            prev := {schema}.eventuali_chain_link(prev, 2, head, 0, r.stream_id, zero);
            INSERT INTO {schema}.eventuali_chain VALUES (n, 2, head, r.stream_id, 0, zero, prev);
        ELSE
            prev := {schema}.eventuali_chain_link(prev, 3, head, r.bound, r.stream_id, zero);
            INSERT INTO {schema}.eventuali_chain VALUES (n, 3, head, r.stream_id, r.bound, zero, prev);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS eventuali_chain_events ON {schema}.eventuali_events;
CREATE TRIGGER eventuali_chain_events AFTER INSERT ON {schema}.eventuali_events
    REFERENCING NEW TABLE AS eventuali_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.eventuali_chain_events();
DROP TRIGGER IF EXISTS eventuali_chain_removed ON {schema}.eventuali_events;
CREATE TRIGGER eventuali_chain_removed AFTER DELETE ON {schema}.eventuali_events
    REFERENCING OLD TABLE AS eventuali_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.eventuali_chain_removed();
