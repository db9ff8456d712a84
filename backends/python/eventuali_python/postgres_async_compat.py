"""What only the async PostgreSQL engine has: its listener task, ``wait_for``, opening and closing.

:mod:`.postgres_async` (the one source of both engines) builds on
:class:`AsyncEngineBase`; the generated sync engine builds on
:class:`.postgres_compat.EngineBase` instead, which offers the same names.
Code here differs between the two sides for a reason (a task against a thread,
asyncio's conditions, the close guard for a store left open at loop shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from asyncio import sleep
from collections.abc import Generator
from typing import Any

from eventuali import record_validation as check
from eventuali.records import StoreURL

from .postgres_config import CAPABILITIES, PostgresConfig, require_psycopg
from .postgres_sql import Statements

__all__ = ["POOL_NAME", "AsyncEngineBase", "sleep"]

POOL_NAME = "eventuali-async"
"""Prefix of the connection pool's name (psycopg_pool logs it)."""


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


class AsyncEngineBase:
    """Construction without I/O, ``await backend``, the listener, the close guard, ``aclose``."""

    capabilities = CAPABILITIES
    _pool: Any

    def __init__(self, url: StoreURL, *, create_schema: bool = True):
        require_psycopg()
        self._create_schema = create_schema
        self.cfg = PostgresConfig.from_url(url)  # bad options fail here, before any I/O
        self.st = Statements(self.cfg.schema)
        self._pool = None
        self._open_lock = asyncio.Lock()  # binds to the loop of its first use, not of __init__
        self._closed = False
        self._listener: _AsyncListener | None = None
        self._guard: asyncio.Task | None = None

    async def connect(self) -> Any:  # the engine's (the same code on both sides)
        raise NotImplementedError

    def __await__(self) -> Generator[Any, None, Any]:
        return self.connect().__await__()

    async def _opened(self) -> None:
        """Called once, under the open lock, when the pool is open: start the close guard."""
        self._guard = asyncio.get_running_loop().create_task(
            self._close_at_loop_shutdown(), name=f"eventuali-close-guard:{self.cfg.schema}")

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

    async def head(self) -> int:  # the engine's
        raise NotImplementedError

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
