"""Write observers: who is told about events a store writes in the current context.

A ``PerformanceMonitor``'s ``@track_performance`` operation registers the
monitor here for the duration of the call; every store that appends events
inside it (in the same task, or in tasks and threads started from it) reports
how many, without the store having been instrumented.  A ``ContextVar``
keeps concurrent operations apart, and costs one lookup per save when no one
observes.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any, Protocol


class WriteObserver(Protocol):
    def events_written(self, backend: Any, count: int) -> None:
        """``count`` events were appended through ``backend``."""


_observers: ContextVar[tuple[WriteObserver, ...]] = ContextVar("eventuali_write_observers", default=())


def observe(observer: WriteObserver) -> Token:
    """Add ``observer`` for the current context; undo with :func:`unobserve` and the token."""
    current = _observers.get()
    return _observers.set(current if observer in current else (*current, observer))


def unobserve(token: Token) -> None:
    _observers.reset(token)


def written(backend: Any, writes: Any) -> None:
    """Tell the current observers that ``writes`` were appended through ``backend``."""
    observers = _observers.get()
    if observers:
        n = sum(len(w.records) for w in writes)
        for o in observers:
            o.events_written(backend, n)
