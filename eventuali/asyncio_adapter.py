"""Run a synchronous :class:`~eventuali.protocol.Backend` behind the async API.

Blocking calls go to a small per-store thread pool, so the event loop keeps
serving while SQLite commits or the C engine works (CFFI releases the GIL, so
those threads really run in parallel).  An in-memory engine finishes in
microseconds, less than a thread hop costs, so its calls run inline - except
``wait_for``, which blocks by design and always runs in a thread.

A backend that can tell whether a call would wait offers ``call_nowait(name,
*args, **kwargs)``: it runs the call on the calling thread when nothing can
make it wait (no lock held by another thread or process) and raises
:class:`WouldBlock` otherwise, having done nothing; the call then goes to the
thread pool, through the backend's ``call_waiting`` (the same call with its
normal waiting).  The SQLite engine does this with a zero busy timeout
(eventuali_python/sqlite_nowait.py), which saves the hop on every
uncontended call.  Inline calls yield to the loop every ``YIELD_EVERY`` calls
so a long run of them cannot starve other tasks.

Closing: ``aclose()`` refuses new calls at once with ``StoreClosedError``, lets
the calls already queued or running finish (their callers get their results,
not a ``CancelledError``), then closes the engine; a ``wait_for`` still
blocked then ends with ``StoreClosedError`` from the engine.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .errors import ConfigurationError, StoreClosedError
from .protocol import Backend

YIELD_EVERY = 32
"""Inline (``call_nowait``) calls in a row after which the adapter yields to the event loop."""


class WouldBlock(Exception):
    """Raised by ``call_nowait`` when the call would wait; nothing was done."""

_METHODS = (
    "append",
    "read_stream",
    "read_all",
    "stream_version",
    "head",
    "save_snapshot",
    "load_snapshot",
    "prune_snapshots",
    "get_checkpoint",
    "set_checkpoint",
    "delete_stream",
    "truncate_stream",
)


class ThreadedAsyncBackend:
    """The :class:`~eventuali.protocol.AsyncBackend` face of a sync backend."""

    def __init__(self, backend: Backend, inline: bool = False, max_workers: int = 4) -> None:
        self.sync = backend
        self.capabilities = backend.capabilities
        self._inline = inline
        self._nowait = None if inline else getattr(backend, "call_nowait", None)
        # Its partner: the call with the backend's normal waiting, for the thread path.
        self._waiting = getattr(backend, "call_waiting", None) if self._nowait else None
        self._inline_calls = 0
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="eventuali")
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        # Calls queued or running in the pool (wait_for excepted: it blocks by design
        # and ends when the engine closes), so that aclose() can let them finish.
        self._in_flight: set[asyncio.Future[Any]] = set()

    def _refuse(self) -> StoreClosedError:
        return StoreClosedError(
            f"the store {self.sync!r} is closed; open it again (EventStore.create) to use it"
        )

    async def _call(self, fn: Any, *args: Any, track: bool = True, **kwargs: Any) -> Any:
        if self._closed:
            raise self._refuse()
        loop = asyncio.get_running_loop()
        try:
            fut = loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        except RuntimeError:  # the pool shut down under a call from another thread's loop
            if self._closed:
                raise self._refuse() from None
            raise
        if track:
            self._in_flight.add(fut)
            fut.add_done_callback(self._in_flight.discard)
        return await fut

    async def wait_for(self, after_position: int, timeout: float) -> int:
        if self._waiting is not None:
            return await self._call(self._waiting, "wait_for", after_position, timeout, track=False)
        return await self._call(self.sync.wait_for, after_position, timeout, track=False)

    async def aclose(self) -> None:
        if self._closing is not None:
            await asyncio.shield(self._closing)  # a second close waits for the first
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        self._closing = loop.create_future()
        try:
            # Only this loop's unfinished calls can be awaited here; a call left by an
            # earlier event loop (asyncio.run once per script step) cannot finish anymore.
            pending = {f for f in self._in_flight if not f.done() and f.get_loop() is loop}
            if pending:
                await asyncio.wait(pending)
        finally:
            self.sync.close()
            self._executor.shutdown(wait=False)
            self._closing.set_result(None)

    def __repr__(self) -> str:
        return f"ThreadedAsyncBackend({self.sync!r})"


def _make(name: str):
    async def method(self: ThreadedAsyncBackend, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.sync, name)
        if self._closed:  # inline and nowait calls too: refused once close() has begun
            raise self._refuse()
        if self._inline:
            return fn(*args, **kwargs)
        if self._nowait is not None:
            try:
                result = self._nowait(name, *args, **kwargs)
            except WouldBlock:
                pass  # a lock is held elsewhere: wait for it in a thread, not on the loop
            else:
                self._inline_calls += 1
                if self._inline_calls >= YIELD_EVERY:
                    self._inline_calls = 0
                    await asyncio.sleep(0)
                return result
            if self._waiting is not None:
                return await self._call(self._waiting, name, *args, **kwargs)
        return await self._call(fn, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Async form of ``Backend.{name}`` (see eventuali.protocol)."
    return method


for _name in _METHODS:
    setattr(ThreadedAsyncBackend, _name, _make(_name))


def async_backend_of(store: Any, user: str) -> Any:
    """The async backend behind an ``EventStore``, or a ``SyncEventStore``'s backend run in
    threads: for the async machinery (``user`` names it in the error) that takes either."""
    from .store import EventStore, SyncEventStore

    if isinstance(store, EventStore):
        return store.backend
    if isinstance(store, SyncEventStore):
        return ThreadedAsyncBackend(store.backend)
    raise ConfigurationError(
        f"{user}(store) needs an EventStore or SyncEventStore, got {type(store).__name__}"
    )
