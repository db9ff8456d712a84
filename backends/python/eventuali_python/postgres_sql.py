"""The SQL of the PostgreSQL engines: statements, schema creation and migrations, append parameters.

Written once for the sync and async engines (:mod:`.postgres`, :mod:`.postgres_async`):
both run the same statements and the same schema steps; only the I/O differs.

An append is one call of the server-side function ``eventuali_append`` (see
eventuali/schema/postgresql.sql): one round trip, one transaction, columns
sent as binary arrays.

Global order without gaps
-------------------------
A position from a plain sequence (``bigserial``) is handed out when a row is
inserted, not when its transaction commits: writer A takes 101, writer B takes
102 and commits first, a reader pages past 102 and never sees 101.  Readers
that try to spot holes cannot tell "not committed yet" from "rolled back", and
filtering by ``pg_snapshot_xmin`` still skips when a newer transaction draws a
lower sequence value (the failure reported against SQLStreamStore forks).

So positions come from one counter row, ``eventuali_head``, which an append
updates as its last step before inserting its events and keeps locked until it
commits - the approach of Commanded's EventStore (its ``$all`` stream row) and,
with a table lock, of the ``eventsourcing`` package.  Writers therefore hand
out positions in commit order: the transaction that holds n commits (and is
visible, since PostgreSQL marks a transaction committed before it releases its
locks) before the next one can take n+1.  A reader needs no filter at all,
positions are contiguous except where records were deleted, and ``head()`` is
the committed counter.  The price is that commits of *appends* are serialized
(checks on stream versions still run in parallel, before the counter is
taken); batching records per append is the lever, as with SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from eventuali import record_validation as check
from eventuali.errors import NotAnEventualiStoreError, SchemaVersionError, StorageError
from eventuali.records import ReadFilter, Record, Snapshot, StreamWrite

from .postgres_chain import chain_steps
from .postgres_config import PostgresConfig

SCHEMA_VERSION = 2
"""Version of eventuali/schema/postgresql.sql this engine writes."""

MIGRATIONS: dict[int, list[str]] = {
    # 2: stream ids compare byte-wise (see the schema file's header).  Changing only the
    # collation of a text column rewrites no table; the indexes on it are rebuilt.
    1: [
        f'ALTER TABLE {{schema}}.{table} ALTER COLUMN stream_id TYPE text COLLATE "C"'
        for table in ("eventuali_streams", "eventuali_events", "eventuali_snapshots")
    ],
}
"""from-version -> statements that bring a store to from-version + 1 ({schema} is substituted).
After the last one the script's functions are created again (they are code, not data)."""

_COLUMNS = (
    "position, event_id, stream_id, stream_type, version, event_type, "
    "schema_version, timestamp, tenant, metadata, payload"
)


class Statements:
    """The SQL of one store, with its schema name quoted in."""

    def __init__(self, schema: str):
        s = '"' + schema + '"'  # checked as a plain identifier in PostgresConfig
        self.schema = s
        self.script = (
            resources.files("eventuali").joinpath("schema/postgresql.sql").read_text("utf-8")
        ).replace("{schema}", s)
        # The functions, alone: run again after migrations.
        self.functions = self.script[self.script.index("\n-- Functions\n") :]
        # A catalog query, not to_regclass(): the relation cache is not refreshed by
        # taking an advisory lock, so to_regclass could miss a table another
        # process created while we waited for the lock.
        self.meta_exists = (
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables "
            f"WHERE schemaname = '{schema}' AND tablename = 'eventuali_meta')"
        )
        self.other_tables = (
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = %s"
        )
        self.read_meta = f"SELECT value FROM {s}.eventuali_meta WHERE key = 'schema_version'"
        self.write_meta = (
            f"INSERT INTO {s}.eventuali_meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        self.append = (
            # %b: binary parameters (no text escaping of every array element).
            f"SELECT {s}.eventuali_append(%b::text[], %b::text[], %b::text[], %b::int8[], "
            "%b::int4[], %b::int4[], %b::int4[], %b::bytea[], %b::text[], %b::int4[], %b::int8[], "
            "%b::bytea[], %b::bytea[], %b::text, %b::int8, %b::text)"
        )
        self.read_stream = (
            f"SELECT {_COLUMNS} FROM {s}.eventuali_events WHERE stream_id = %s "
            "AND version >= %s AND version <= %s ORDER BY version LIMIT %s"
        )
        self.read_all = f"SELECT {_COLUMNS} FROM {s}.eventuali_events WHERE position >= %s"
        self.stream_version = (
            f"SELECT version, deleted FROM {s}.eventuali_streams WHERE stream_id = %s"
        )
        self.head = f"SELECT position FROM {s}.eventuali_head"
        self.save_snapshot = (
            f"INSERT INTO {s}.eventuali_snapshots (stream_id, version, schema_version, timestamp, "
            "payload) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stream_id, version) DO UPDATE SET "
            "schema_version = excluded.schema_version, timestamp = excluded.timestamp, "
            "payload = excluded.payload"
        )
        self.load_snapshot = (
            f"SELECT stream_id, version, schema_version, timestamp, payload FROM "
            f"{s}.eventuali_snapshots WHERE stream_id = %s AND version <= %s "
            "ORDER BY version DESC LIMIT 1"
        )
        self.prune_snapshots = (
            f"DELETE FROM {s}.eventuali_snapshots WHERE stream_id = %s AND version NOT IN "
            f"(SELECT version FROM {s}.eventuali_snapshots WHERE stream_id = %s "
            "ORDER BY version DESC LIMIT %s)"
        )
        self.get_checkpoint = f"SELECT position FROM {s}.eventuali_checkpoints WHERE name = %s"
        self.set_checkpoint = (
            f"INSERT INTO {s}.eventuali_checkpoints (name, position) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
        )
        self.tombstone = (
            f"INSERT INTO {s}.eventuali_streams (stream_id, stream_type, version, deleted) "
            "VALUES (%s, '', 0, true) ON CONFLICT (stream_id) DO UPDATE SET deleted = true"
        )
        # eventuali.retention marks the engine's own deletions for the hash chain's
        # trigger (postgresql_chain.sql), which ignores any other DELETE.
        retention = "WITH r AS (SELECT set_config('eventuali.retention', 'on', true)) "
        self.delete_events = (
            f"{retention}DELETE FROM {s}.eventuali_events WHERE stream_id = %s "
            "AND EXISTS (SELECT FROM r)"
        )
        self.delete_snapshots = f"DELETE FROM {s}.eventuali_snapshots WHERE stream_id = %s"
        self.truncate = (
            f"{retention}DELETE FROM {s}.eventuali_events WHERE stream_id = %s AND version < %s "
            "AND EXISTS (SELECT FROM r)"
        )


def read_all_query(st: Statements, filter: ReadFilter | None) -> tuple[str, list[Any]]:
    """The WHERE clauses of read_all for ``filter`` (position and limit are appended by callers)."""
    clauses: list[str] = []
    params: list[Any] = []
    if filter is not None:
        if filter.event_types is not None:
            clauses.append("event_type = ANY(%s)")
            params.append(sorted(filter.event_types))
        if filter.stream_types is not None:
            clauses.append("stream_type = ANY(%s)")
            params.append(sorted(filter.stream_types))
        if filter.stream_id_prefix is not None:
            # starts_with() rather than LIKE: no escaping of % and _ in user ids.
            clauses.append("starts_with(stream_id, %s)")
            params.append(filter.stream_id_prefix)
        if filter.tenant is not None:
            clauses.append("tenant = %s")
            params.append(filter.tenant)
    sql = st.read_all + "".join(" AND " + c for c in clauses) + " ORDER BY position LIMIT %s"
    return sql, params


# --------------------------------------------------------------------------
# Append planning (shared by the sync and async engines)
# --------------------------------------------------------------------------

_BIGINT_MAX = check.INT64_MAX


def append_params(
    writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None, channel: str
) -> tuple[tuple, int]:
    """Parameters of one ``eventuali_append`` call (columns as arrays), and the record count.

    Versions, stream checks and positions are the server's business (see the
    function in eventuali/schema/postgresql.sql): one round trip per append.
    """
    from .postgres_arrays import (
        bytea_array,
        int4_array,
        int8_array,
        offsets_array,
        repeat_array,
        text_array,
    )

    w_ids = [w[0] for w in writes]
    w_types = [w[1] for w in writes]
    w_expected = [w[2] for w in writes]
    w_tenants = [w[4] if len(w) > 4 else "" for w in writes]
    w_counts = [len(w[3]) for w in writes]
    # Records column-wise: one zip per write (the common append has one write).
    columns: list[Sequence[Any]] = [(), (), (), (), (), ()]
    filled = [w[3] for w in writes if w[3]]
    if len(filled) == 1:
        columns = list(zip(*filled[0], strict=True))
    elif filled:
        merged: list[list[Any]] = [[], [], [], [], [], []]
        for records in filled:
            for into, column in zip(merged, zip(*records, strict=True), strict=True):
                into.extend(column)
        columns = list(merged)
    ids, etypes, svs, tss, metas, payloads = columns
    name, position = checkpoint if checkpoint is not None else (None, None)
    params = (
        text_array(w_ids), text_array(w_types), text_array(w_tenants), int8_array(w_expected),
        int4_array(w_counts), repeat_array(w_counts), offsets_array(w_counts), bytea_array(ids),
        text_array(etypes), int4_array(svs), int8_array(tss), bytea_array(metas),
        bytea_array(payloads), name, position, channel,
    )  # fmt: skip
    return params, len(ids)


def schema_steps(st: Statements, cfg: PostgresConfig, engine: str, create: bool = True):
    """The base schema's steps, then the hash chain's (postgres_chain.chain_steps)."""
    yield from _base_steps(st, cfg, engine, create)
    yield from chain_steps(st, cfg, create)


def _base_steps(st: Statements, cfg: PostgresConfig, engine: str, create: bool = True):
    """Generator of (sql, params) steps that create or migrate the schema.

    Written once for both engines: the caller runs each step in one transaction
    and sends back its first row.  Steps run under an advisory transaction lock
    so several processes opening the same store at once create it exactly once.
    """
    (exists,) = yield (st.meta_exists, None)
    if exists:
        (version,) = yield (st.read_meta, None)
        version = int(version)
        if version == SCHEMA_VERSION:
            return
    if create:  # a hot standby is read-only whatever the caller asked: say so, clearly
        (standby,) = yield ("SELECT pg_is_in_recovery()", None)
        create = not standby
    if not create:  # a read-only server (hot standby): it can only use what the primary made
        raise StorageError(
            f"{cfg.where} has no eventuali schema {cfg.schema!r} at version {SCHEMA_VERSION} and "
            "this connection may not create it (a replica that has not replayed it yet?); "
            "open the store on the primary first"
        )
    yield ("SELECT pg_advisory_xact_lock(%s)", (cfg.lock_key,))
    (exists,) = yield (st.meta_exists, None)
    if not exists:
        (others,) = yield (st.other_tables, (cfg.schema,))
        if others:
            raise NotAnEventualiStoreError(
                f"schema {cfg.schema!r} of {cfg.where} already holds {others} table(s) but no "
                "eventuali_meta table, so it was not created by eventuali; use another schema "
                "(URL option schema=…)"
            )
        yield (st.script, None)
        yield (st.write_meta, ("schema_version", str(SCHEMA_VERSION)))
        yield (st.write_meta, ("created_by", engine))
        return
    (version,) = yield (st.read_meta, None)
    version = int(version)
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"schema {cfg.schema!r} of {cfg.where} has eventuali schema version {version}, newer "
            f"than this engine's {SCHEMA_VERSION}; upgrade eventuali"
        )
    while version < SCHEMA_VERSION:
        for stmt in MIGRATIONS[version]:
            yield (stmt.replace("{schema}", st.schema), None)
        version += 1
        yield (st.write_meta, ("schema_version", str(version)))
    yield (st.functions, None)


def record_row(cursor: Any):
    """psycopg row factory that builds Records without running Python code per field."""
    new = tuple.__new__

    def make(values: Sequence[Any]) -> Record:
        return new(Record, values)

    return make


def snapshot_row(cursor: Any):
    new = tuple.__new__

    def make(values: Sequence[Any]) -> Snapshot:
        return new(Snapshot, values)

    return make


def or_max(value: int | None) -> int:
    return _BIGINT_MAX if value is None else value

