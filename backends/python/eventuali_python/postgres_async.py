"""The reference PostgreSQL engine as coroutines, on psycopg_pool.AsyncConnectionPool.

The async twin of :mod:`.postgres` (same SQL, checks, ordering mechanism and
errors; only the I/O differs), offered by ``PythonBackend.open_async`` so the
async ``EventStore`` never parks a thread per query.  Construction does no I/O;
``await backend`` (or the first call) connects and creates the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import AsyncIterator, Generator, Sequence
from typing import Any

from eventuali import record_validation as check
from eventuali.errors import StoreClosedError, StreamDeletedError, TransientStorageError
from eventuali.records import ReadFilter, Record, Snapshot, StoreURL, StreamWrite

from .postgres import (
    CAPABILITIES,
    PostgresConfig,
    RetryAppend,
    Statements,
    _or_max,
    _record_row,
    _snapshot_row,
    append_params,
    connect_error,
    map_append_error,
    map_error,
    read_all_query,
    require_psycopg,
    schema_steps,
)


class _AsyncListener:
    """A LISTEN connection in a task of the loop that opened the store; wakes ``wait_for``."""

    def __init__(self, cfg: PostgresConfig):
        self.cfg = cfg
        self.seen = 0
        self.generation = 0
        self.changed = asyncio.Condition()
        self.ready = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _bump(self, seen: int | None = None) -> None:
        async with self.changed:
            if seen is None:
                self.generation += 1
            else:
                self.seen = max(self.seen, seen)
            self.changed.notify_all()

    async def _run(self) -> None:
        import psycopg
        from psycopg import sql

        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.cfg.conninfo, autocommit=True)
                async with conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.cfg.channel)))
                    await self._bump()
                    self.ready.set()
                    async for note in conn.notifies():
                        await self._bump(int(note.payload or 0))
            except psycopg.Error:
                await self._bump()
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


class AsyncPostgresBackend:
    """The async PostgreSQL engine (see :class:`eventuali.protocol.AsyncBackend`)."""

    capabilities = CAPABILITIES

    def __init__(self, url: StoreURL, *, create_schema: bool = True):
        require_psycopg()
        self._create_schema = create_schema
        self.cfg = PostgresConfig.from_url(url)  # bad options fail here, before any I/O
        self.st = Statements(self.cfg.schema)
        self._pool: Any = None
        self._open_lock: asyncio.Lock | None = None
        self._closed = False
        self._listener: _AsyncListener | None = None
        self._guard: asyncio.Task | None = None

    def __await__(self) -> Generator[Any, None, AsyncPostgresBackend]:
        return self.connect().__await__()

    async def connect(self) -> AsyncPostgresBackend:
        """Create the schema if needed and open the pool (idempotent)."""
        if self._pool is not None:
            return self
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
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
                cfg.conninfo,
                **cfg.pool_options,
                name=f"eventuali-async:{cfg.schema}",
                open=False,
            )
            await pool.open()
            self._pool = pool
            self._guard = asyncio.get_running_loop().create_task(
                self._close_at_loop_shutdown(), name=f"eventuali-close-guard:{cfg.schema}")
        return self

    async def _close_at_loop_shutdown(self) -> None:
        """Close the pool when the event loop ends with the store still open.

        psycopg_pool's workers catch ``CancelledError`` (to keep the pool
        consistent) and go on reconnecting, so ``asyncio.run()`` cancelling
        every task at exit would wait for them forever.  This task is cancelled
        in the same sweep and closes the pool, which stops the workers.  Every
        acknowledged append is already committed; nothing is lost.  An unclosed
        store warns as an unclosed file does.
        """
        try:
            await asyncio.Event().wait()  # only cancellation ends this task
        except asyncio.CancelledError:
            if not self._closed:
                warnings.warn(f"unclosed store {self!r}: closed as its event loop shut down; "
                              "use 'async with' or 'await store.close()'",
                              ResourceWarning, source=self, stacklevel=1)
                self._guard = None
                await self.aclose()
            raise

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
                await asyncio.sleep(0.001 * attempt)
        raise TransientStorageError(
            f"append to {self.cfg.where}: streams kept being created concurrently; retry"
        )

    async def _append_in(
        self, conn: Any, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None
    ) -> list[int]:
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
        params = (stream_id, from_version, _or_max(to_version), _or_max(limit))
        async with self._conn("read_stream") as conn:
            cur = conn.cursor(binary=True, row_factory=_record_row)
            await cur.execute(self.st.read_stream, params)
            return await cur.fetchall()

    async def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]:
        check.check_read_all(from_position, limit, filter)
        sql, params = read_all_query(self.st, filter)
        async with self._conn("read_all") as conn:
            cur = conn.cursor(binary=True, row_factory=_record_row)
            await cur.execute(sql, (from_position, *params, _or_max(limit)))
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
            cur = conn.cursor(binary=True, row_factory=_snapshot_row)
            await cur.execute(self.st.load_snapshot, (stream_id, _or_max(max_version)))
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

    # --- live ----------------------------------------------------------------

    async def wait_for(self, after_position: int, timeout: float) -> int:
        check.check_wait(after_position, timeout)
        deadline = time.monotonic() + timeout
        if self._listener is None:
            await self.connect()
            if self._listener is None:
                self._listener = _AsyncListener(self.cfg)
        listener = self._listener
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(listener.ready.wait(), timeout)
        head = await self.head()  # LISTEN is active: later commits will notify
        while head <= after_position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            async with listener.changed:
                generation = listener.generation

                def woken(g: int = generation) -> bool:
                    return listener.seen > after_position or listener.generation != g

                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(listener.changed.wait_for(woken), remaining)
            head = await self.head()
        return head

    # --- replication facts (used by eventuali.performance.ReplicaManager) -----

    async def wal_state(self) -> tuple[bool, int, float | None]:
        """(in_recovery, lsn, replay_age_ms) of the server behind this store.

        ``lsn`` is the WAL position written (primary) or replayed (standby), as
        an int; ``replay_age_ms`` is the time since a standby last replayed a
        transaction (None on a primary, or before any replay).
        """
        async with self._conn("wal_state") as conn:
            cur = await conn.execute(
                "SELECT pg_is_in_recovery(), (CASE WHEN pg_is_in_recovery() "
                "THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::int8, "
                "(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8"
            )
            in_recovery, lsn, age = await cur.fetchone()
        return bool(in_recovery), int(lsn or 0), age

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

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        guard, self._guard = self._guard, None
        if guard is not None and guard is not asyncio.current_task():
            guard.cancel()
        if self._listener is not None:
            await self._listener.stop()
        if self._pool is not None:
            await self._pool.close()

    async def __aenter__(self) -> AsyncPostgresBackend:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncPostgresBackend({self.cfg.where!r}, schema={self.cfg.schema!r})"


async def _run_schema_steps(conn: Any, st: Statements, cfg: PostgresConfig, create: bool) -> None:
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
