"""The SQLite engine's non-waiting calls: what lets the async API run them on the event loop.

``ThreadedAsyncBackend`` (eventuali.asyncio_adapter) first offers each call to
``call_nowait``; this runs it on the calling thread only where it cannot wait:

- the backend's own thread lock is taken without blocking (a call of this
  store running in a worker thread means: go to the thread as well);
- SQLite's busy timeout is 0 while calls run this way (``call_waiting``,
  the thread path, restores the configured one first), so a lock held by
  another connection or process (a writer for ``BEGIN IMMEDIATE``, an exclusive
  locker for a read) fails at once instead of sleeping - the engine then
  reports ``TransientStorageError``, which becomes ``WouldBlock`` and the
  adapter reruns the call in its thread with the configured busy timeout.
  A call that fails this way has written nothing (the append rolled back or
  never began), so the rerun is safe;
- ``synchronous=full`` / ``extra`` stores never run inline: every commit
  waits for the disk there.

WAL readers never wait for writers, so in the common case a read or an
uncontended write runs without the thread hop (~0.15 ms here per call).
"""

from __future__ import annotations

from typing import Any

from eventuali.asyncio_adapter import WouldBlock
from eventuali.errors import TransientStorageError

INLINE_SYNCHRONOUS = frozenset({"normal", "off"})


def call_nowait(backend: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """``getattr(backend, name)(*args, **kwargs)`` if it needs no waiting; else raise WouldBlock."""
    if backend._synchronous not in INLINE_SYNCHRONOUS or not backend._lock.acquire(blocking=False):
        raise WouldBlock(name)
    try:
        if not backend._busy_zero:
            # Sticky until a waiting call: two PRAGMAs per call would cost ~15% of a 1-event load.
            backend._conn_or_raise().execute("PRAGMA busy_timeout = 0")
            backend._busy_zero = True
        try:
            return getattr(backend, name)(*args, **kwargs)
        except TransientStorageError as exc:  # busy: another connection holds the lock
            raise WouldBlock(name) from exc
    finally:
        backend._lock.release()


def call_waiting(backend: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """The call with the configured busy timeout (restored if ``call_nowait`` zeroed it): the thread path."""
    if backend._busy_zero:
        with backend._lock:
            if backend._busy_zero and not backend._closed:
                backend._conn.execute(f"PRAGMA busy_timeout = {backend._busy_timeout}")
            backend._busy_zero = False
    return getattr(backend, name)(*args, **kwargs)
