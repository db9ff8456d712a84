"""The reference PostgreSQL engine (``postgresql://``) as coroutines, on psycopg 3's async pool.

This module is the one source of both PostgreSQL engines: ``tools/async_to_sync.py``
turns it into the synchronous :mod:`.postgres` (``nox -s gen``).  Write the engine
here, once; what really differs between the two sides (listener task or thread,
``wait_for``, opening and closing) lives in :mod:`.postgres_async_compat` and
:mod:`.postgres_compat`.  URL options are :mod:`.postgres_config`, the SQL and
the schema steps :mod:`.postgres_sql`, error mapping :mod:`.postgres_errors`.

Construction does no I/O; ``await backend`` (or the first call) connects and
creates the schema.  ``PythonBackend.open_async`` offers this engine so the
async ``EventStore`` never parks a thread per query.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from eventuali import record_validation as check
from eventuali.errors import StoreClosedError, StreamDeletedError, TransientStorageError
from eventuali.protocol import ReplicationState
from eventuali.records import ReadFilter, Record, Snapshot, StreamWrite

from .postgres_async_compat import POOL_NAME, AsyncEngineBase, sleep
from .postgres_config import (
    CAPABILITIES,
    DEFAULT_SCHEMA,
    VALID_OPTIONS,
    PostgresConfig,
    require_psycopg,
)
from .postgres_errors import RetryAppend, connect_error, map_append_error, map_error
from .postgres_sql import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Statements,
    append_params,
    or_max,
    read_all_query,
    record_row,
    schema_steps,
    snapshot_row,
)

__all__ = [
    "CAPABILITIES", "DEFAULT_SCHEMA", "MIGRATIONS", "SCHEMA_VERSION", "VALID_OPTIONS",
    "AsyncPostgresBackend", "PostgresConfig", "require_psycopg",
]  # fmt: skip

_REPLICATION_STATE = (
    "SELECT pg_is_in_recovery(), (CASE WHEN pg_is_in_recovery() "
    "THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::int8, "
    "(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8"
)


class AsyncPostgresBackend(AsyncEngineBase):
    """A store in one PostgreSQL schema, served through a psycopg_pool connection pool.

    See :class:`eventuali.protocol.Backend` for the contract of each method.
    """

    async def connect(self) -> AsyncPostgresBackend:
        """Create or migrate the schema if needed and open the pool (idempotent)."""
        if self._pool is not None:
            return self
        async with self._open_lock:
            if self._pool is not None:
                return self
            if self._closed:
                raise StoreClosedError(f"the store {self.cfg.where} is closed")
            import psycopg
            import psycopg_pool

            cfg = self.cfg
            try:
                conn = await psycopg.AsyncConnection.connect(cfg.conninfo, autocommit=True)
            except psycopg.Error as exc:
                raise connect_error(exc, cfg) from None
            try:
                async with conn:
                    await _run_schema_steps(conn, self.st, cfg, self._create_schema)
            except psycopg.Error as exc:
                raise map_error(exc, cfg, "creating the eventuali schema") from None
            pool = psycopg_pool.AsyncConnectionPool(
                cfg.conninfo, **cfg.pool_options, name=f"{POOL_NAME}:{cfg.schema}", open=False
            )
            await pool.open()
            self._pool = pool
            await self._opened()
        return self

    @contextlib.asynccontextmanager
    async def _conn(self, operation: str) -> AsyncIterator[Any]:
        import psycopg
        import psycopg_pool

        if self._closed:
            raise StoreClosedError(f"{operation}: the store {self.cfg.where} is closed")
        if self._pool is None:
            await self.connect()
        try:
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
            err = map_error(exc, self.cfg, operation)
            if isinstance(err, TransientStorageError) and not self._closed:
                # The server may have restarted: drop every dead idle connection now,
                # so the operations after this one get fresh ones.
                with contextlib.suppress(Exception):
                    await self._pool.check()
            raise err from None

    # --- appends -------------------------------------------------------------

    async def append(
        self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None
    ) -> list[int]:
        check.check_append(writes, checkpoint)
        if not writes and checkpoint is None:
            return []
        for attempt in range(8):
            try:
                async with self._conn("append") as conn:
                    return await self._append_in(conn, writes, checkpoint)
            except RetryAppend:
                await sleep(0.001 * attempt)
        raise TransientStorageError(
            f"append to {self.cfg.where}: streams kept being created concurrently; retry"
        )

    async def _append_in(
        self, conn: Any, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None
    ) -> list[int]:
        """The append as one statement on ``conn`` (in autocommit mode, its own transaction;
        tests call it inside a transaction they hold open on purpose)."""
        import psycopg

        params, total = append_params(writes, checkpoint, self.cfg.channel)
        try:
            cur = await conn.execute(self.st.append, params, binary=True)
            last = (await cur.fetchone())[0]
        except psycopg.DatabaseError as exc:
            err = map_append_error(exc, params)
            if err is None:
                raise
            raise err from None
        return list(range(last - total + 1, last + 1)) if total else []

    # --- reads ---------------------------------------------------------------

    async def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        check.check_read_stream(stream_id, from_version, to_version, limit)
        params = (stream_id, from_version, or_max(to_version), or_max(limit))
        async with self._conn("read_stream") as conn:
            cur = conn.cursor(binary=True, row_factory=record_row)
            await cur.execute(self.st.read_stream, params)
            return await cur.fetchall()

    async def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]:
        check.check_read_all(from_position, limit, filter)
        sql, params = read_all_query(self.st, filter)
        async with self._conn("read_all") as conn:
            cur = conn.cursor(binary=True, row_factory=record_row)
            await cur.execute(sql, (from_position, *params, or_max(limit)))
            return await cur.fetchall()

    async def stream_version(self, stream_id: str) -> int:
        check.check_stream_id(stream_id)
        async with self._conn("stream_version") as conn:
            row = await (await conn.execute(self.st.stream_version, (stream_id,))).fetchone()
        return 0 if row is None or row[1] else row[0]

    async def head(self) -> int:
        async with self._conn("head") as conn:
            return (await (await conn.execute(self.st.head)).fetchone())[0]

    # --- snapshots -----------------------------------------------------------

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        check.check_snapshot(snapshot)
        snap = Snapshot(*snapshot)
        async with self._conn("save_snapshot") as conn, conn.transaction():
            row = await (await conn.execute(self.st.stream_version, (snap.stream_id,))).fetchone()
            if row is not None and row[1]:
                raise StreamDeletedError(snap.stream_id)
            await conn.execute(self.st.save_snapshot, snap)

    async def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        check.check_stream_id(stream_id)
        check.check_optional_int(max_version, "max_version", 0)
        async with self._conn("load_snapshot") as conn:
            cur = conn.cursor(binary=True, row_factory=snapshot_row)
            await cur.execute(self.st.load_snapshot, (stream_id, or_max(max_version)))
            return await cur.fetchone()

    async def prune_snapshots(self, stream_id: str, keep: int) -> int:
        check.check_stream_id(stream_id)
        check.check_int(keep, "keep", 0)
        async with self._conn("prune_snapshots") as conn:
            return (await conn.execute(self.st.prune_snapshots, (stream_id, stream_id, keep))).rowcount

    # --- checkpoints ---------------------------------------------------------

    async def get_checkpoint(self, name: str) -> int | None:
        check.check_name(name, "checkpoint name")
        async with self._conn("get_checkpoint") as conn:
            row = await (await conn.execute(self.st.get_checkpoint, (name,))).fetchone()
        return None if row is None else row[0]

    async def set_checkpoint(self, name: str, position: int) -> None:
        check.check_checkpoint(name, position)
        async with self._conn("set_checkpoint") as conn:
            await conn.execute(self.st.set_checkpoint, (name, position))

    # --- replication (the protocol's optional "replication" capability) -------

    async def replication_state(self) -> ReplicationState:
        """Where the server behind this store stands in the WAL (see the protocol).

        ``position`` is the WAL position written (primary) or replayed
        (standby), as an int; ``replay_age_ms`` is the time since a standby
        last replayed a transaction (None on a primary, or before any replay).
        """
        async with self._conn("replication_state") as conn:
            cur = await conn.execute(_REPLICATION_STATE)
            in_recovery, lsn, age = await cur.fetchone()
        return ReplicationState(bool(in_recovery), int(lsn or 0), age)

    # --- retention -----------------------------------------------------------

    async def delete_stream(self, stream_id: str) -> int:
        check.check_stream_id(stream_id)
        async with self._conn("delete_stream") as conn, conn.transaction():
            await conn.execute(self.st.tombstone, (stream_id,))
            removed = (await conn.execute(self.st.delete_events, (stream_id,))).rowcount
            await conn.execute(self.st.delete_snapshots, (stream_id,))
        return removed

    async def truncate_stream(self, stream_id: str, before_version: int) -> int:
        check.check_stream_id(stream_id)
        check.check_int(before_version, "before_version", 1)
        async with self._conn("truncate_stream") as conn:
            return (await conn.execute(self.st.truncate, (stream_id, before_version))).rowcount

    # --- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> AsyncPostgresBackend:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cfg.where!r}, schema={self.cfg.schema!r})"


async def _run_schema_steps(conn: Any, st: Statements, cfg: PostgresConfig, create: bool) -> None:
    """Run :func:`.postgres_sql.schema_steps` on ``conn``, in one transaction."""
    from . import __version__

    async with conn.transaction():
        steps = schema_steps(st, cfg, f"python {__version__}", create)
        result = None
        while True:
            try:
                sql, params = steps.send(result)
            except StopIteration:
                return
            cur = await conn.execute(sql, params)
            result = await cur.fetchone() if cur.description is not None else None
