"""``PerformanceMonitor``: latency, throughput and memory of an application's event work.

Two sources feed it:

* ``@monitor.track_performance`` (or ``with``/``async with
  monitor.measure(name)``) times the user's own operations, and counts the
  events any store writes inside them (no instrumenting needed);
* ``monitor.instrument(store)`` wraps the store's backend so every append
  and read is timed and its events counted (written and read).

``await monitor.get_metrics()`` summarises both; with ``"export_format":
"prometheus"`` the same numbers are kept in a Prometheus registry of the
monitor's own (never the global one), exposed by :meth:`export` or
:meth:`start_http_server`.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError
from ..observers import observe, unobserve

_DEFAULTS: dict[str, Any] = {
    "collection_interval": 1000,
    "export_format": "prometheus",
    "include_histograms": True,
    "track_memory": True,
    "latency_window": 10_000,
    "namespace": "eventuali",
}
EXPORT_FORMATS = ("prometheus", "none")
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
            1.0, 2.5, 5.0, 10.0, 30.0)
_MB = 1024 * 1024


def rss_bytes() -> int:
    """The process's resident memory now (Linux ``/proc``), else its peak (``getrusage``)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024  # macOS counts bytes


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


@dataclass
class OperationStats:
    """One operation's latencies (milliseconds) over the monitor's latency window."""

    count: int
    errors: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class PerformanceMetrics:
    """What :meth:`PerformanceMonitor.get_metrics` returns."""

    events_per_second: float
    """Events written and read per second of the active window (first op start to last op end)."""
    events_written: int
    events_read: int
    operations: int
    errors: int
    p50_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    max_latency_ms: float
    mean_latency_ms: float
    memory_usage_mb: float
    """Resident memory of the process now (0.0 when ``track_memory`` is off)."""
    peak_memory_mb: float
    """Highest resident memory seen by the monitor."""
    active_seconds: float
    per_operation: dict[str, OperationStats] = field(default_factory=dict)


class _Op:
    __slots__ = ("count", "errors", "latencies")

    def __init__(self, window: int) -> None:
        self.count = 0
        self.errors = 0
        self.latencies: deque[float] = deque(maxlen=window)


class PerformanceMonitor:
    """Collects latency, throughput and memory; optionally exports them to Prometheus.

    Config keys: ``collection_interval`` (sample memory every N operations),
    ``export_format`` (``"prometheus"`` or ``"none"``), ``include_histograms``
    (a latency histogram per operation, else a summary), ``track_memory``,
    ``latency_window`` (latencies kept per operation for percentiles),
    ``namespace`` (metric name prefix).
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = dict(config or {})
        unknown = sorted(set(config) - set(_DEFAULTS))
        if unknown:
            raise ConfigurationError(
                f"unknown PerformanceMonitor option(s) {unknown}; valid options: {sorted(_DEFAULTS)}"
            )
        cfg = {**_DEFAULTS, **config}
        for key in ("collection_interval", "latency_window"):
            v = cfg[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigurationError(f"{key}={v!r} is invalid; give a positive integer")
        if cfg["export_format"] not in EXPORT_FORMATS:
            raise ConfigurationError(
                f"export_format={cfg['export_format']!r} is invalid; use 'prometheus' or 'none'"
            )
        self.config = cfg
        self._lock = threading.Lock()
        self._ops: dict[str, _Op] = {}
        self._tracked: set[str] = set()  # names timed by the user (vs store calls)
        self._events = {"written": 0, "read": 0}
        self._first_start: float | None = None
        self._last_end: float | None = None
        self._since_sample = 0
        self._memory = 0
        self._peak_memory = 0
        self.registry: Any = None
        self._p_latency: Any = None
        if cfg["export_format"] == "prometheus":
            self._init_prometheus()
        if cfg["track_memory"]:
            self._sample_memory()

    # --- prometheus ------------------------------------------------------------------------

    def _init_prometheus(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
        except ImportError:
            raise ConfigurationError(
                "export_format 'prometheus' needs prometheus-client; pip install "
                "'eventuali[monitoring]', or use export_format 'none'"
            ) from None
        ns = self.config["namespace"]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._p_ops = Counter("operations", "Operations completed", ["operation"], namespace=ns,
                              registry=r)
        self._p_errors = Counter("operation_errors", "Operations that raised", ["operation"],
                                 namespace=ns, registry=r)
        if self.config["include_histograms"]:
            self._p_latency = Histogram("operation_duration_seconds", "Operation latency",
                                        ["operation"], namespace=ns, registry=r, buckets=_BUCKETS)
        else:
            self._p_latency = Summary("operation_duration_seconds", "Operation latency",
                                      ["operation"], namespace=ns, registry=r)
        self._p_events = Counter("events", "Events passed through instrumented stores",
                                 ["direction"], namespace=ns, registry=r)
        self._p_memory = Gauge("memory_usage_bytes", "Resident memory of the process",
                               namespace=ns, registry=r)

    def export(self) -> bytes:
        """The Prometheus text exposition of this monitor's metrics."""
        if self.registry is None:
            raise ConfigurationError(
                "this monitor has export_format 'none'; create it with "
                "{'export_format': 'prometheus'} to export"
            )
        from prometheus_client import generate_latest

        if self.config["track_memory"]:
            self._sample_memory()
        return generate_latest(self.registry)

    def start_http_server(self, port: int, addr: str = "127.0.0.1"):
        """Serve ``/metrics`` for Prometheus to scrape (a daemon thread); returns the server."""
        if self.registry is None:
            raise ConfigurationError("start_http_server needs export_format 'prometheus'")
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server

    # --- recording -------------------------------------------------------------------------

    def _sample_memory(self) -> None:
        rss = rss_bytes()
        self._memory = rss
        if rss > self._peak_memory:
            self._peak_memory = rss
        if self.registry is not None:
            self._p_memory.set(rss)

    def record(self, operation: str, seconds: float, *, error: bool = False,
               started: float | None = None) -> None:
        """Record one finished operation that took ``seconds``."""
        now = time.perf_counter()
        start = started if started is not None else now - seconds
        with self._lock:
            op = self._ops.get(operation)
            if op is None:
                op = self._ops[operation] = _Op(self.config["latency_window"])
            op.count += 1
            op.latencies.append(seconds)
            if error:
                op.errors += 1
            if self._first_start is None or start < self._first_start:
                self._first_start = start
            if self._last_end is None or now > self._last_end:
                self._last_end = now
            self._since_sample += 1
            sample = self.config["track_memory"] and self._since_sample >= self.config["collection_interval"]
            if sample:
                self._since_sample = 0
        if self.registry is not None:
            self._p_ops.labels(operation).inc()
            self._p_latency.labels(operation).observe(seconds)
            if error:
                self._p_errors.labels(operation).inc()
        if sample:
            self._sample_memory()

    def record_events(self, n: int, direction: str = "written") -> None:
        """Count ``n`` events (``"written"`` or ``"read"``) seen outside an instrumented store."""
        if direction not in self._events:
            raise ConfigurationError(
                f"direction={direction!r} is invalid; use 'written' or 'read'"
            )
        with self._lock:
            self._events[direction] += n
        if self.registry is not None and n:
            self._p_events.labels(direction).inc(n)

    def track_performance(self, fn: Any = None, *, name: str | None = None) -> Any:
        """Decorator timing each call of a sync or async function (``@monitor.track_performance``).

        Also ``@monitor.track_performance(name="import")`` to choose the
        operation name (default: the function's qualified name).
        """
        if fn is None:
            return lambda f: self.track_performance(f, name=name)
        op: str = name or str(getattr(fn, "__qualname__", repr(fn)))
        self._tracked.add(op)
        record = self.record

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                token = observe(self)
                t0 = time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException:
                    record(op, time.perf_counter() - t0, error=True, started=t0)
                    raise
                finally:
                    unobserve(token)
                record(op, time.perf_counter() - t0, started=t0)
                return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = observe(self)
            t0 = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                record(op, time.perf_counter() - t0, error=True, started=t0)
                raise
            finally:
                unobserve(token)
            record(op, time.perf_counter() - t0, started=t0)
            return result

        return wrapper

    @contextmanager
    def measure(self, name: str):
        """Time a block: ``with monitor.measure("rebuild"): ...`` (works inside async code too)."""
        self._tracked.add(name)
        token = observe(self)
        t0 = time.perf_counter()
        try:
            yield
        except BaseException:
            self.record(name, time.perf_counter() - t0, error=True, started=t0)
            raise
        finally:
            unobserve(token)
        self.record(name, time.perf_counter() - t0, started=t0)

    def events_written(self, backend: Any, count: int) -> None:
        """Count events a store wrote inside a tracked operation (see :mod:`eventuali.observers`).

        A store this monitor instruments already counts its own appends.
        """
        if getattr(backend, "_monitor", None) is not self:
            self.record_events(count, "written")

    # --- stores ------------------------------------------------------------------------------

    def instrument(self, store: Any) -> Any:
        """Time and count every backend call of ``store`` (async or sync); returns the store.

        Operations are named ``store.append``, ``store.read_stream``,
        ``store.read_all``; appended records count as events written, returned
        records as events read.  Undo with :meth:`uninstrument`.
        """
        from .instrumented import InstrumentedAsyncBackend, InstrumentedBackend

        backend = store.backend
        if isinstance(backend, (InstrumentedAsyncBackend, InstrumentedBackend)):
            return store
        if inspect.iscoroutinefunction(getattr(backend, "append", None)):
            store.backend = InstrumentedAsyncBackend(backend, self)
        else:
            store.backend = InstrumentedBackend(backend, self)
        return store

    def uninstrument(self, store: Any) -> Any:
        inner = getattr(store.backend, "_eventuali_inner", None)
        if inner is not None:
            store.backend = inner
        return store

    # --- reading -----------------------------------------------------------------------------

    def _stats(self, names: list[str]) -> tuple[OperationStats, list[float]]:
        lat: list[float] = []
        count = errors = 0
        for n in names:
            op = self._ops[n]
            lat.extend(op.latencies)
            count += op.count
            errors += op.errors
        lat.sort()
        ms = [x * 1000 for x in lat]
        return OperationStats(
            count=count, errors=errors,
            mean_ms=sum(ms) / len(ms) if ms else 0.0,
            p50_ms=_percentile(ms, 50), p95_ms=_percentile(ms, 95), p99_ms=_percentile(ms, 99),
            max_ms=ms[-1] if ms else 0.0,
        ), ms

    async def get_metrics(self) -> PerformanceMetrics:
        """A summary of everything recorded so far.

        Latency percentiles cover the user's tracked operations when there are
        any, else the instrumented store calls; ``per_operation`` has each.
        """
        return self.metrics()

    def metrics(self) -> PerformanceMetrics:
        """Synchronous form of :meth:`get_metrics`."""
        if self.config["track_memory"]:
            self._sample_memory()
        with self._lock:
            names = list(self._ops)
            per_op = {n: self._stats([n])[0] for n in names}
            tracked = [n for n in names if n in self._tracked] or names
            overall, _ = self._stats(tracked)
            written, read = self._events["written"], self._events["read"]
            active = (
                self._last_end - self._first_start
                if self._first_start is not None and self._last_end is not None else 0.0
            )
        return PerformanceMetrics(
            events_per_second=(written + read) / active if active > 0 else 0.0,
            events_written=written,
            events_read=read,
            operations=sum(s.count for s in per_op.values()),
            errors=sum(s.errors for s in per_op.values()),
            p50_latency_ms=overall.p50_ms,
            p95_latency_ms=overall.p95_ms,
            p99_latency_ms=overall.p99_ms,
            max_latency_ms=overall.max_ms,
            mean_latency_ms=overall.mean_ms,
            memory_usage_mb=self._memory / _MB,
            peak_memory_mb=self._peak_memory / _MB,
            active_seconds=active,
            per_operation=per_op,
        )

    def reset(self) -> None:
        """Forget latencies, counts and the active window (Prometheus counters keep counting)."""
        with self._lock:
            self._ops.clear()
            self._events = {"written": 0, "read": 0}
            self._first_start = self._last_end = None

    def __repr__(self) -> str:
        return f"PerformanceMonitor(export_format={self.config['export_format']!r}, ops={sorted(self._ops)})"
