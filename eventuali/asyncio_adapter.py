"""Run a synchronous :class:`~eventuali.protocol.Backend` behind the async API.

Blocking calls go to a small per-store thread pool, so the event loop keeps
serving while SQLite commits or the C engine works (CFFI releases the GIL, so
those threads really run in parallel).  An in-memory engine finishes in
microseconds, less than a thread hop costs, so its calls run inline - except
``wait_for``, which blocks by design and always runs in a thread.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .protocol import Backend

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
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="eventuali")

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def wait_for(self, after_position: int, timeout: float) -> int:
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
        return await self._call(fn, *args, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Async form of ``Backend.{name}`` (see eventuali.protocol)."
    return method


for _name in _METHODS:
    setattr(ThreadedAsyncBackend, _name, _make(_name))
