"""What only the sync PostgreSQL engine has: its listener thread, ``wait_for``, ``open`` and ``close``.

The generated :mod:`.postgres` builds on :class:`EngineBase`, the sync side of
:class:`.postgres_async_compat.AsyncEngineBase` (same names; tools/async_to_sync.py
maps one to the other).  Only what really differs between the two lives here.
"""

from __future__ import annotations

import threading
import time
from time import sleep
from typing import Any

from eventuali import record_validation as check
from eventuali.records import StoreURL

from .postgres_chain import PostgresChain
from .postgres_config import CAPABILITIES, PostgresConfig, require_psycopg
from .postgres_sql import Statements

__all__ = ["POOL_NAME", "EngineBase", "sleep"]

POOL_NAME = "eventuali"
"""Prefix of the connection pool's name (psycopg_pool logs it)."""


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


class EngineBase(PostgresChain):
    """``open`` (connects at once), the chain methods, the listener thread, ``close``.

    Thread-safe: every call borrows a pooled connection for its duration.
    """

    capabilities = CAPABILITIES
    _pool: Any

    def __init__(self, url: StoreURL, *, create_schema: bool = True):
        require_psycopg()
        self._create_schema = create_schema
        self.cfg = PostgresConfig.from_url(url)
        self.st = Statements(self.cfg.schema)
        self._pool = None
        self._open_lock = threading.Lock()
        self._closed = False
        self._listener: _Listener | None = None
        self._listener_lock = threading.Lock()

    @classmethod
    def open(cls, url: StoreURL) -> Any:
        """Open the store at ``url`` now: connect, create or migrate the schema, open the pool."""
        return cls(url).connect()

    def connect(self) -> Any:  # the engine's (generated from the async source)
        raise NotImplementedError

    def head(self) -> int:  # the engine's
        raise NotImplementedError

    def _opened(self) -> None:
        """Called once, under the open lock, when the pool is open: is the store chained?"""
        with self._conn("open") as conn:
            if self._chained(conn):
                self.capabilities = CAPABILITIES | {"integrity"}

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

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.stop()
        if self._pool is not None:
            self._pool.close()
