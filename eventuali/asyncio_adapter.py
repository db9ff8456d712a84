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
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def wait_for(self, after_position: int, timeout: float) -> int:
        if self._waiting is not None:
            return await self._call(self._waiting, "wait_for", after_position, timeout)
        return await self._call(self.sync.wait_for, after_position, timeout)

    async def aclose(self) -> None:
        self.sync.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"ThreadedAsyncBackend({self.sync!r})"


def _make(name: str):
    async def method(self: ThreadedAsyncBackend, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.sync, name)
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
