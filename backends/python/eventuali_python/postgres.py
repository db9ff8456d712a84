"""The reference PostgreSQL engine (``postgresql://``), synchronous, on psycopg 3 + psycopg_pool.

This module also holds what the async twin (:mod:`.postgres_async`) shares with
it: URL options, SQL text, schema creation steps, append parameters and error
mapping (input checks are :mod:`eventuali.record_validation`, shared by every
engine).  Only the I/O differs between the two.

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

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from eventuali import record_validation as check
from eventuali.errors import (
    ConfigurationError,
    DuplicateEventError,
    NotAnEventualiStoreError,
    OptimisticConcurrencyError,
    SchemaVersionError,
    StorageError,
    StoreClosedError,
    StreamDeletedError,
    TransientStorageError,
)
from eventuali.records import (
    ReadFilter,
    Record,
    Snapshot,
    StoreURL,
    StreamWrite,
)
from eventuali.url import integrity_option

from .postgres_chain import PostgresChain, chain_steps

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

CAPABILITIES = frozenset(
    {"persistent", "multi_process", "snapshots", "checkpoints", "delete", "truncate", "wait_for"}
)

_INSTALL_HINT = 'pip install "eventuali[postgresql]"'

# --------------------------------------------------------------------------
# URL options
# --------------------------------------------------------------------------

DEFAULT_SCHEMA = "eventuali"
_OPTION_DEFAULTS: dict[str, str] = {
    "application_name": "eventuali",
    "pool_size": "2",  # connections kept open (psycopg_pool min_size)
    "max_overflow": "8",  # extra connections under load (max_size = pool_size + max_overflow)
    "pool_timeout": "30",  # seconds to wait for a free connection
    "pool_recycle": "3600",  # seconds before a connection is replaced (max_lifetime)
    "connect_timeout": "10",  # seconds; bounded so an unreachable host fails fast
    "schema": DEFAULT_SCHEMA,
}
# libpq settings passed through unchanged (TLS is the one a production URL needs).
_LIBPQ_PASSTHROUGH = ("sslmode", "sslrootcert", "sslcert", "sslkey", "target_session_attrs")
# Server setting per connection.  "off" trades durability for speed: a server crash
# (not a client crash) may lose the last fraction of a second of acknowledged
# appends - never half of one.  Left to the server's default unless given.
_SYNC_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")
# Per-session server settings a URL may carry (the guide's DATABASE_CONFIG "server_settings"),
# sent as "-c name=value" at connect; the server checks the values.
_SESSION_SETTINGS = ("jit", "work_mem", "maintenance_work_mem", "statement_timeout",
                     "lock_timeout", "idle_in_transaction_session_timeout")
# Settings only a server start can change: named so the error says where they go.
_SERVER_START_SETTINGS = ("shared_preload_libraries", "shared_buffers", "max_connections",
                          "wal_level", "max_wal_senders")
_SETTING_VALUE_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
VALID_OPTIONS = (
    tuple(sorted(_OPTION_DEFAULTS)) + _LIBPQ_PASSTHROUGH
    + ("synchronous_commit", "command_timeout", "integrity")
    + _SESSION_SETTINGS
)
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class PostgresConfig:
    """The settings of one ``postgresql://`` URL, checked."""

    url: StoreURL
    conninfo: str
    schema: str
    min_size: int
    max_size: int
    pool_timeout: float
    max_lifetime: float
    connect_timeout: int
    integrity: str | None = None
    """``integrity=chain``: start a hash chain (see postgres_chain)."""

    @property
    def pool_options(self) -> dict:
        """The guide's pool settings as psycopg_pool arguments (sync and async pools alike)."""
        return {
            "kwargs": {"autocommit": True},
            "min_size": self.min_size,
            "max_size": self.max_size,
            "timeout": self.pool_timeout,
            "max_lifetime": self.max_lifetime,
        }

    @property
    def where(self) -> str:
        """The URL without its password, for messages."""
        return self.url.redacted()

    @property
    def lock_key(self) -> int:
        """Advisory-lock key of this store's schema (signed 64-bit)."""
        digest = hashlib.blake2b(f"eventuali:{self.schema}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    @property
    def channel(self) -> str:
        """LISTEN/NOTIFY channel of this store (an identifier, at most 63 bytes)."""
        return f"eventuali_{self.schema}"[:63]

    @classmethod
    def from_url(cls, url: StoreURL) -> PostgresConfig:
        start_only = sorted(set(url.options) & set(_SERVER_START_SETTINGS))
        if start_only:
            raise ConfigurationError(
                f"option {start_only[0]!r} in store URL {url.redacted()!r} is a PostgreSQL "
                "server-start setting, which a connection cannot change; set it in "
                "postgresql.conf (or ALTER SYSTEM) and restart the server, and remove it from the URL"
            )
        unknown = sorted(set(url.options) - set(VALID_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"in store URL {url.redacted()!r}; valid options for postgresql:// are "
                f"{', '.join(VALID_OPTIONS)}"
            )
        opts = {**_OPTION_DEFAULTS, **url.options}

        def number(name: str, kind: type, minimum: float) -> Any:
            raw = opts[name]
            try:
                value = kind(raw)
            except ValueError:
                value = None
            if value is None or value < minimum:
                raise ConfigurationError(
                    f"option {name}={raw!r} in store URL {url.redacted()!r} must be "
                    f"{'an integer' if kind is int else 'a number'} >= {minimum}; "
                    f"the default is {_OPTION_DEFAULTS[name]}"
                )
            return value

        pool_size = number("pool_size", int, 1)
        max_overflow = number("max_overflow", int, 0)
        pool_timeout = number("pool_timeout", float, 0.001)
        pool_recycle = number("pool_recycle", float, 1)
        connect_timeout = number("connect_timeout", int, 1)
        schema = opts["schema"]
        if not _IDENT_RE.match(schema):
            raise ConfigurationError(
                f"option schema={schema!r} in store URL {url.redacted()!r} is not a plain "
                "PostgreSQL identifier; use letters, digits and '_' (at most 63, not starting "
                f"with a digit), e.g. schema={DEFAULT_SCHEMA}"
            )
        from psycopg.conninfo import make_conninfo

        params: dict[str, Any] = {
            "host": url.host,
            "port": url.port,
            "user": url.user,
            "password": url.password,
            "dbname": url.database,
            "application_name": opts["application_name"],
            "connect_timeout": connect_timeout,
        }
        params.update({k: url.options[k] for k in _LIBPQ_PASSTHROUGH if k in url.options})
        # eventuali_append relies on READ COMMITTED: after waiting for a stream row
        # lock, its next statement reads the version the other writer committed.  A
        # server or role default of REPEATABLE READ/SERIALIZABLE would turn every
        # such wait into a serialization failure, so the store pins its own sessions.
        server_options = ["-c default_transaction_isolation=read\\ committed"]
        if "synchronous_commit" in url.options:
            sc = url.options["synchronous_commit"]
            if sc not in _SYNC_COMMIT:
                raise ConfigurationError(
                    f"option synchronous_commit={sc!r} in store URL {url.redacted()!r} is not one "
                    f"of {', '.join(_SYNC_COMMIT)}"
                )
            server_options.append(f"-c synchronous_commit={sc}")
        if "command_timeout" in url.options:
            # asyncpg's name for a per-statement limit, in seconds: statement_timeout.
            seconds = url.options["command_timeout"]
            try:
                ms = round(float(seconds) * 1000)
            except ValueError:
                ms = -1
            if ms < 0:
                raise ConfigurationError(
                    f"option command_timeout={seconds!r} in store URL {url.redacted()!r} must be "
                    "a number of seconds >= 0 (0 = no limit)"
                )
            server_options.append(f"-c statement_timeout={ms}")
        for name in _SESSION_SETTINGS:
            if name in url.options:
                value = url.options[name]
                if not _SETTING_VALUE_RE.match(value):
                    raise ConfigurationError(
                        f"option {name}={value!r} in store URL {url.redacted()!r} is not a plain "
                        "setting value; use letters, digits and . _ + - (e.g. 256MB, off, 30s)"
                    )
                server_options.append(f"-c {name}={value}")
        params["options"] = " ".join(server_options)
        conninfo = make_conninfo("", **{k: v for k, v in params.items() if v is not None})
        return cls(
            url=url,
            conninfo=conninfo,
            schema=schema,
            min_size=pool_size,
            max_size=pool_size + max_overflow,
            pool_timeout=pool_timeout,
            max_lifetime=pool_recycle,
            connect_timeout=connect_timeout,
            integrity=integrity_option(url),
        )


def require_psycopg() -> None:
    """Raise ConfigurationError with the install command when psycopg 3 / psycopg_pool are missing."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            f"postgresql:// needs psycopg 3 and psycopg_pool, which are not installed ({exc}); "
            f"install them with: {_INSTALL_HINT}"
        ) from None
    from .postgres_arrays import register

    register()


# --------------------------------------------------------------------------
# SQL
# --------------------------------------------------------------------------

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


class RetryAppend(Exception):
    """A concurrent writer created one of our streams first: redo the append from the start."""


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

_DUP_ID_RE = re.compile(r"\(event_id\)=\(\\x([0-9a-fA-F]{32})\)")


def map_append_error(exc: Exception, params: tuple) -> Exception | None:
    """The eventuali error for a database error raised by ``eventuali_append``, or None.

    A concurrent writer that created one of our new streams first (a unique
    violation on (stream_id, version)) or a deadlock means: run the append
    again, it will see the other writer's result and decide properly.
    """
    import psycopg

    diag: Any = getattr(exc, "diag", None)
    state = getattr(diag, "sqlstate", None)
    if state == "EV409":
        expected, actual = (int(x) for x in (diag.message_detail or "0 0").split())
        return OptimisticConcurrencyError(diag.message_primary, expected, actual)
    if state == "EV410":
        return StreamDeletedError(diag.message_primary)
    if isinstance(exc, psycopg.errors.DeadlockDetected):
        return RetryAppend()
    if isinstance(exc, psycopg.errors.UniqueViolation):
        constraint = diag.constraint_name or ""
        if constraint in ("eventuali_events_stream", "eventuali_streams_pkey"):
            return RetryAppend()
        if constraint == "eventuali_events_event_id":
            m = _DUP_ID_RE.search(diag.message_detail or "")
            return DuplicateEventError(bytes.fromhex(m.group(1)) if m else b"")
    return None


def map_error(exc: BaseException, cfg: PostgresConfig, operation: str) -> Exception:
    """Turn a psycopg / psycopg_pool exception into the eventuali error the protocol promises."""
    import psycopg
    import psycopg_pool

    if isinstance(exc, psycopg_pool.PoolTimeout):
        return TransientStorageError(
            f"{operation}: no database connection to {cfg.where} became free within "
            f"{cfg.pool_timeout:g}s (pool of {cfg.max_size}); the server may be down or "
            "overloaded; retry, or raise pool_size/max_overflow/pool_timeout in the URL"
        )
    if isinstance(exc, psycopg_pool.PoolClosed):
        return StoreClosedError(f"{operation}: the store {cfg.where} is closed")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return StorageError(
            f"{operation}: permission denied on {cfg.where} (schema {cfg.schema!r}): "
            f"{exc.diag.message_primary or exc}; grant the user the privilege, or use a "
            "schema it owns (URL option schema=…)"
        )
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return TransientStorageError(
            f"{operation} on {cfg.where} was cut off: {str(exc).strip()}; nothing half-done is "
            "visible - it is safe to retry"
        )
    if isinstance(exc, psycopg.Error):
        return StorageError(f"{operation} on {cfg.where} failed: {str(exc).strip()}")
    return exc  # type: ignore[return-value]


def connect_error(exc: BaseException, cfg: PostgresConfig) -> Exception:
    """A clear error for a failure to open the first connection of a store."""
    import psycopg

    text = str(exc).strip()
    url = cfg.url
    if isinstance(exc, psycopg.OperationalError) and (
        "password authentication failed" in text
        or "authentication failed" in text
        or "role" in text
        and "does not exist" in text
        or "no password supplied" in text
    ):
        return ConfigurationError(
            f"cannot log in to {cfg.where} as user {url.user!r}: {text}; check the user name and "
            "password in the URL"
        )
    if isinstance(exc, psycopg.OperationalError) and "database" in text and "does not exist" in text:
        return ConfigurationError(
            f"database {url.database!r} named in {cfg.where} does not exist: create it "
            f"(createdb {url.database}) or fix the URL"
        )
    if isinstance(exc, psycopg.OperationalError) and (
        "invalid value for parameter" in text
        or "requires a Boolean value" in text
        or "requires an integer value" in text
        or "unrecognized configuration parameter" in text
    ):
        # A session setting from the URL (work_mem=, jit=, ...) the server refuses.
        return ConfigurationError(
            f"the server refused a setting in {cfg.where}: {text.splitlines()[-1].strip()}; fix "
            f"that option's value in the URL (valid names: {', '.join(_SESSION_SETTINGS)})"
        )
    if isinstance(exc, psycopg.OperationalError):
        return TransientStorageError(
            f"cannot connect to {cfg.where} (host {url.host or 'local socket'!r}, port "
            f"{url.port or 5432}) within connect_timeout={cfg.connect_timeout}s: {text}; check that "
            "the server runs and is reachable, then retry"
        )
    return map_error(exc, cfg, "opening the store")


# --------------------------------------------------------------------------
# Schema creation
# --------------------------------------------------------------------------


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


def _record_row(cursor: Any):
    """psycopg row factory that builds Records without running Python code per field."""
    new = tuple.__new__

    def make(values: Sequence[Any]) -> Record:
        return new(Record, values)

    return make


def _snapshot_row(cursor: Any):
    new = tuple.__new__

    def make(values: Sequence[Any]) -> Snapshot:
        return new(Snapshot, values)

    return make


def _or_max(value: int | None) -> int:
    return _BIGINT_MAX if value is None else value


# --------------------------------------------------------------------------
# The synchronous engine
# --------------------------------------------------------------------------


class _Listener:
    """One LISTEN connection per backend, in a daemon thread, waking ``wait_for`` callers.

    Notifications carry the committed head position.  After a reconnect the
    generation changes so that waiters re-read head() instead of trusting a
    notification they may have missed while disconnected.
    """

    def __init__(self, cfg: PostgresConfig):
        self.cfg = cfg
        self.cond = threading.Condition()
        self.seen = 0
        self.generation = 0
        self.ready = threading.Event()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="eventuali-pg-listen", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psycopg
        from psycopg import sql

        while not self.stopped:
            try:
                with psycopg.connect(self.cfg.conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.cfg.channel)))
                    with self.cond:
                        self.generation += 1
                        self.cond.notify_all()
                    self.ready.set()
                    while not self.stopped:
                        for note in conn.notifies(timeout=0.25):
                            with self.cond:
                                self.seen = max(self.seen, int(note.payload or 0))
                                self.cond.notify_all()
            except psycopg.Error:
                with self.cond:
                    self.generation += 1
                    self.cond.notify_all()
                time.sleep(0.2)

    def stop(self) -> None:
        self.stopped = True
        self.thread.join(timeout=2)


class PostgresBackend(PostgresChain):
    """A store in one PostgreSQL schema, served through a psycopg_pool.ConnectionPool.

    Thread-safe: every call borrows a pooled connection for its duration.
    """

    capabilities = CAPABILITIES

    def __init__(self, cfg: PostgresConfig, pool: Any):
        self.cfg = cfg
        self.st = Statements(cfg.schema)
        self._pool = pool
        self._closed = False
        self._listener: _Listener | None = None
        self._listener_lock = threading.Lock()

    # --- opening -------------------------------------------------------------

    @classmethod
    def open(cls, url: StoreURL) -> PostgresBackend:
        require_psycopg()
        import psycopg
        import psycopg_pool

        cfg = PostgresConfig.from_url(url)
        st = Statements(cfg.schema)
        try:
            conn = psycopg.connect(cfg.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise connect_error(exc, cfg) from None
        try:
            with conn:
                run_schema_steps_sync(conn, st, cfg)
        except psycopg.Error as exc:
            raise map_error(exc, cfg, "creating the eventuali schema") from None
        pool = psycopg_pool.ConnectionPool(
            cfg.conninfo,
            **cfg.pool_options,
            name=f"eventuali:{cfg.schema}",
            open=True,
        )
        backend = cls(cfg, pool)
        with backend._conn("open") as c:
            if backend._chained(c):
                backend.capabilities = CAPABILITIES | {"integrity"}
        return backend

    # --- plumbing ------------------------------------------------------------

    @contextlib.contextmanager
    def _conn(self, operation: str) -> Iterator[Any]:
        import psycopg
        import psycopg_pool

        if self._closed:
            raise StoreClosedError(f"{operation}: the store {self.cfg.where} is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            err = map_error(exc, self.cfg, operation)
            if isinstance(err, TransientStorageError) and not self._closed:
                # The server may have restarted: drop every dead idle connection now,
                # so the operations after this one get fresh ones.
                with contextlib.suppress(Exception):
                    self._pool.check()
            raise err from None

    # --- appends -------------------------------------------------------------

    def append(
        self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None
    ) -> list[int]:
        check.check_append(writes, checkpoint)
        if not writes and checkpoint is None:
            return []
        for attempt in range(8):
            try:
                with self._conn("append") as conn:
                    return self._append_in(conn, writes, checkpoint)
            except RetryAppend:
                time.sleep(0.001 * attempt)
        raise TransientStorageError(
            f"append to {self.cfg.where}: streams kept being created concurrently; retry"
        )

    def _append_in(self, conn: Any, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None) -> list[int]:
        """The append as one statement on ``conn`` (in autocommit mode, its own transaction;
        tests call it inside a transaction they hold open on purpose)."""
        import psycopg

        params, total = append_params(writes, checkpoint, self.cfg.channel)
        try:
            last = conn.execute(self.st.append, params, binary=True).fetchone()[0]
        except psycopg.DatabaseError as exc:
            err = map_append_error(exc, params)
            if err is None:
                raise
            raise err from None
        return list(range(last - total + 1, last + 1)) if total else []

    # --- reads ---------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        check.check_read_stream(stream_id, from_version, to_version, limit)
        params = (stream_id, from_version, _or_max(to_version), _or_max(limit))
        with self._conn("read_stream") as conn:
            cur = conn.cursor(binary=True, row_factory=_record_row)
            return cur.execute(self.st.read_stream, params).fetchall()

    def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]:
        check.check_read_all(from_position, limit, filter)
        sql, params = read_all_query(self.st, filter)
        with self._conn("read_all") as conn:
            cur = conn.cursor(binary=True, row_factory=_record_row)
            return cur.execute(sql, (from_position, *params, _or_max(limit))).fetchall()

    def stream_version(self, stream_id: str) -> int:
        check.check_stream_id(stream_id)
        with self._conn("stream_version") as conn:
            row = conn.execute(self.st.stream_version, (stream_id,)).fetchone()
        return 0 if row is None or row[1] else row[0]

    def head(self) -> int:
        with self._conn("head") as conn:
            return conn.execute(self.st.head).fetchone()[0]

    # --- snapshots -----------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        check.check_snapshot(snapshot)
        snap = Snapshot(*snapshot)
        with self._conn("save_snapshot") as conn, conn.transaction():
            row = conn.execute(self.st.stream_version, (snap.stream_id,)).fetchone()
            if row is not None and row[1]:
                raise StreamDeletedError(snap.stream_id)
            conn.execute(self.st.save_snapshot, snap)

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        check.check_stream_id(stream_id)
        check.check_optional_int(max_version, "max_version", 0)
        with self._conn("load_snapshot") as conn:
            cur = conn.cursor(binary=True, row_factory=_snapshot_row)
            return cur.execute(self.st.load_snapshot, (stream_id, _or_max(max_version))).fetchone()

    def prune_snapshots(self, stream_id: str, keep: int) -> int:
        check.check_stream_id(stream_id)
        check.check_int(keep, "keep", 0)
        with self._conn("prune_snapshots") as conn:
            return conn.execute(self.st.prune_snapshots, (stream_id, stream_id, keep)).rowcount

    # --- checkpoints ---------------------------------------------------------

    def get_checkpoint(self, name: str) -> int | None:
        check.check_name(name, "checkpoint name")
        with self._conn("get_checkpoint") as conn:
            row = conn.execute(self.st.get_checkpoint, (name,)).fetchone()
        return None if row is None else row[0]

    def set_checkpoint(self, name: str, position: int) -> None:
        check.check_checkpoint(name, position)
        with self._conn("set_checkpoint") as conn:
            conn.execute(self.st.set_checkpoint, (name, position))

    # --- live ----------------------------------------------------------------

    def _ensure_listener(self, timeout: float) -> _Listener:
        with self._listener_lock:
            if self._listener is None:
                self._listener = _Listener(self.cfg)
        self._listener.ready.wait(timeout)
        return self._listener

    def wait_for(self, after_position: int, timeout: float) -> int:
        check.check_wait(after_position, timeout)
        deadline = time.monotonic() + timeout
        listener = self._ensure_listener(timeout)
        # LISTEN is active (or the timeout passed): a commit after this head()
        # shows up as a notification, so the wait below cannot miss it.
        head = self.head()
        while head <= after_position:
            with listener.cond:
                generation = listener.generation
                while listener.seen <= after_position and listener.generation == generation:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    listener.cond.wait(remaining)
            head = self.head()
            if time.monotonic() >= deadline:
                break
        return head

    # --- retention -----------------------------------------------------------

    def delete_stream(self, stream_id: str) -> int:
        check.check_stream_id(stream_id)
        with self._conn("delete_stream") as conn, conn.transaction():
            conn.execute(self.st.tombstone, (stream_id,))
            removed = conn.execute(self.st.delete_events, (stream_id,)).rowcount
            conn.execute(self.st.delete_snapshots, (stream_id,))
        return removed

    def truncate_stream(self, stream_id: str, before_version: int) -> int:
        check.check_stream_id(stream_id)
        check.check_int(before_version, "before_version", 1)
        with self._conn("truncate_stream") as conn:
            return conn.execute(self.st.truncate, (stream_id, before_version)).rowcount

    # --- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.stop()
        self._pool.close()

    def __enter__(self) -> PostgresBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresBackend({self.cfg.where!r}, schema={self.cfg.schema!r})"


def run_schema_steps_sync(conn: Any, st: Statements, cfg: PostgresConfig) -> None:
    from . import __version__

    with conn.transaction():
        steps = schema_steps(st, cfg, f"python {__version__}")
        result = None
        while True:
            try:
                sql, params = steps.send(result)
            except StopIteration:
                return
            cur = conn.execute(sql, params)
            result = cur.fetchone() if cur.description is not None else None
