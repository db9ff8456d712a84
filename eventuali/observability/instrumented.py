"""Backends that time and count every call for a :class:`PerformanceMonitor`.

``monitor.instrument(store)`` swaps ``store.backend`` for one of these; each
delegates to the real backend and reports ``store.<method>`` latencies and
the events written (records appended) and read (records returned).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .monitor import PerformanceMonitor

_WRITE = "append"
_READS = ("read_stream", "read_all")
_TIMED = ("stream_version", "head", "save_snapshot", "load_snapshot", "delete_stream",
          "truncate_stream")


def _written(writes: Any) -> int:
    return sum(len(w.records) for w in writes)


class _Base:
    def __init__(self, inner: Any, monitor: PerformanceMonitor) -> None:
        self._eventuali_inner = inner
        self._monitor = monitor
        self.capabilities = inner.capabilities

    def __getattr__(self, name: str) -> Any:  # anything not timed: the real backend's
        return getattr(self._eventuali_inner, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._eventuali_inner!r})"


class InstrumentedAsyncBackend(_Base):
    """The :class:`~eventuali.protocol.AsyncBackend` face, timed."""

    async def _timed(self, name: str, *args: Any, **kwargs: Any) -> Any:
        m = self._monitor
        t0 = time.perf_counter()
        try:
            result = await getattr(self._eventuali_inner, name)(*args, **kwargs)
        except BaseException:
            m.record("store." + name, time.perf_counter() - t0, error=True, started=t0)
            raise
        m.record("store." + name, time.perf_counter() - t0, started=t0)
        return result

    async def append(self, writes, checkpoint=None):
        positions = await self._timed(_WRITE, writes, checkpoint)
        self._monitor.record_events(_written(writes), "written")
        return positions

    async def read_stream(self, *args, **kwargs):
        records = await self._timed("read_stream", *args, **kwargs)
        self._monitor.record_events(len(records), "read")
        return records

    async def read_all(self, *args, **kwargs):
        records = await self._timed("read_all", *args, **kwargs)
        self._monitor.record_events(len(records), "read")
        return records


class InstrumentedBackend(_Base):
    """The synchronous :class:`~eventuali.protocol.Backend` face, timed."""

    def _timed(self, name: str, *args: Any, **kwargs: Any) -> Any:
        m = self._monitor
        t0 = time.perf_counter()
        try:
            result = getattr(self._eventuali_inner, name)(*args, **kwargs)
        except BaseException:
            m.record("store." + name, time.perf_counter() - t0, error=True, started=t0)
            raise
        m.record("store." + name, time.perf_counter() - t0, started=t0)
        return result

    def append(self, writes, checkpoint=None):
        positions = self._timed(_WRITE, writes, checkpoint)
        self._monitor.record_events(_written(writes), "written")
        return positions

    def read_stream(self, *args, **kwargs):
        records = self._timed("read_stream", *args, **kwargs)
        self._monitor.record_events(len(records), "read")
        return records

    def read_all(self, *args, **kwargs):
        records = self._timed("read_all", *args, **kwargs)
        self._monitor.record_events(len(records), "read")
        return records

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self._eventuali_inner.close()


def _make_async(name: str):
    async def method(self: InstrumentedAsyncBackend, *args: Any, **kwargs: Any) -> Any:
        return await self._timed(name, *args, **kwargs)

    method.__name__ = name
    return method


def _make_sync(name: str):
    def method(self: InstrumentedBackend, *args: Any, **kwargs: Any) -> Any:
        return self._timed(name, *args, **kwargs)

    method.__name__ = name
    return method


for _name in _TIMED:
    setattr(InstrumentedAsyncBackend, _name, _make_async(_name))
    setattr(InstrumentedBackend, _name, _make_sync(_name))
