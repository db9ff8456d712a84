"""``PerformanceProfiler``: where time and memory go inside a block of event work.

``async with profiler.profile_context("name"):`` (or plain ``with``) runs the
block under a CPU profiler and, for memory, tracemalloc; it also measures
wall and CPU time.  The CPU profiler is cProfile (deterministic: every call is
counted) unless ``sampling_frequency`` is given: then a sampling profiler
records the thread's stack that many times a second (see :mod:`.sampler`),
which costs far less per call.  ``await profiler.analyze()`` reports CPU use,
peak memory, the time spent idle (the event loop waiting in its selector, a
thread on a lock, sleeps) and the functions that took the most working time
of their own (bottlenecks; idle waits are never one);
``await profiler.generate_flame_graph("x.svg")`` draws the call tree.

Limits worth knowing: both profilers see the thread that entered the block,
so work an async store hands to its worker threads (SQLite commits) shows up
as idle time of the event loop, not as SQLite frames; tracemalloc slows
allocation-heavy code down noticeably, so profile with ``"cpu"`` alone when
only time matters.
"""

from __future__ import annotations

import cProfile
import pstats
import threading
import time
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .flamegraph import label, render_svg
from .sampler import StackSampler, is_idle

PROFILE_TYPES = ("cpu", "memory", "cpu_and_memory")
_DEFAULTS: dict[str, Any] = {
    "profile_type": "cpu_and_memory",
    "sampling_frequency": None,
    "flame_graph_generation": True,
    "bottleneck_detection": True,
    "top_n": 10,
    "bottleneck_threshold_percent": 5.0,
}
_MB = 1024 * 1024
MAX_SAMPLING_FREQUENCY = 10_000
_active = threading.local()  # cProfile hooks one thread; nested profiling would clobber it


@dataclass
class Bottleneck:
    """A function that took a large share of the profiled time by itself."""

    function: str
    calls: int
    """Calls (cProfile), or the samples that found it running (sampling profiler)."""
    own_time_ms: float
    """Time in the function's own code (pstats ``tottime``)."""
    cumulative_time_ms: float
    """Time including what it called (pstats ``cumtime``)."""
    percent_of_total: float
    """Share of the working time (idle waits excluded)."""
    sampled: bool = False

    def __str__(self) -> str:
        return (f"{self.function}: {self.own_time_ms:.2f} ms own "
                f"({self.percent_of_total:.1f}% of working time), {self.calls} "
                f"{'samples' if self.sampled else 'calls'}")


@dataclass
class ProfileRun:
    """One finished ``profile_context`` block."""

    name: str
    wall_seconds: float
    cpu_seconds: float
    memory_peak_bytes: int | None
    stats: dict | None = field(repr=False, default=None)
    """pstats-style ``{(file, line, func): (cc, nc, tt, ct, callers)}`` (None without CPU profiling)."""
    samples: int | None = None
    """Stack samples taken (sampling profiler); None when cProfile counted every call."""


@dataclass
class ProfileAnalysis:
    """What :meth:`PerformanceProfiler.analyze` returns."""

    name: str
    wall_time_ms: float
    cpu_time_ms: float
    cpu_usage_percent: float
    """CPU time of the process (all threads) over wall time, in percent."""
    memory_peak_mb: float | None
    """Peak of memory allocated by Python during the block (tracemalloc); None if not tracked."""
    function_calls: int | None
    """Calls counted by cProfile; None when sampling (a sampler does not count calls)."""
    bottlenecks: list[Bottleneck]
    """The functions with the largest share of working time (idle waits left out)."""
    idle_time_ms: float = 0.0
    """Time the profiled thread spent waiting (selector poll, locks, sleep), not working."""
    samples: int | None = None
    """Stack samples the sampling profiler took; None with cProfile."""


class _ProfileContext:
    def __init__(self, profiler: PerformanceProfiler, name: str) -> None:
        self._profiler = profiler
        self._name = name

    def __enter__(self) -> _ProfileContext:
        if getattr(_active, "name", None) is not None:
            raise ConfigurationError(
                f"profile_context({self._name!r}) was entered inside profile_context("
                f"{_active.name!r}); cProfile can run one profile per thread - profile the outer "
                "block, or end it first"
            )
        p = self._profiler
        _active.name = self._name
        self._cpu = p.profile_type in ("cpu", "cpu_and_memory")
        self._mem = p.profile_type in ("memory", "cpu_and_memory")
        self._started_tracemalloc = False
        if self._mem:
            if not tracemalloc.is_tracing():
                tracemalloc.start()
                self._started_tracemalloc = True
            tracemalloc.reset_peak()
            self._mem_base = tracemalloc.get_traced_memory()[0]
        frequency = p.config["sampling_frequency"]
        self._sampler = StackSampler(frequency) if self._cpu and frequency else None
        self._prof = cProfile.Profile() if self._cpu and self._sampler is None else None
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        if self._prof is not None:
            self._prof.enable()
        if self._sampler is not None:
            self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._prof is not None:
            self._prof.disable()
        if self._sampler is not None:
            self._sampler.stop()
        wall = time.perf_counter() - self._wall0
        cpu = time.process_time() - self._cpu0
        peak = None
        if self._mem:
            peak = max(0, tracemalloc.get_traced_memory()[1] - self._mem_base)
            if self._started_tracemalloc:
                tracemalloc.stop()
        _active.name = None
        stats = None
        samples = None
        if self._prof is not None:
            stats = pstats.Stats(self._prof).stats  # type: ignore[attr-defined]
        if self._sampler is not None:
            stats = self._sampler.stats()
            samples = sum(self._sampler.samples.values())
        self._profiler._runs[self._name] = ProfileRun(self._name, wall, cpu, peak, stats, samples)
        self._profiler._last = self._name

    async def __aenter__(self) -> _ProfileContext:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


class PerformanceProfiler:
    """Profiles blocks of code for CPU time (cProfile) and memory (tracemalloc).

    Config keys: ``profile_type`` (``"cpu"``, ``"memory"``,
    ``"cpu_and_memory"``), ``flame_graph_generation``,
    ``bottleneck_detection``, ``top_n`` (bottlenecks reported),
    ``bottleneck_threshold_percent`` (share of working time spent in a
    function's own code that makes a bottleneck), ``sampling_frequency``
    (samples per second, up to 10,000: use the sampling profiler instead of
    cProfile; leave it out to count every call).
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = dict(config or {})
        unknown = sorted(set(config) - set(_DEFAULTS))
        if unknown:
            raise ConfigurationError(
                f"unknown PerformanceProfiler option(s) {unknown}; valid options: {sorted(_DEFAULTS)}"
            )
        cfg = {**_DEFAULTS, **config}
        if cfg["profile_type"] not in PROFILE_TYPES:
            raise ConfigurationError(
                f"profile_type={cfg['profile_type']!r} is invalid; use one of {list(PROFILE_TYPES)}"
            )
        sf = cfg["sampling_frequency"]
        if sf is not None and (isinstance(sf, bool) or not isinstance(sf, (int, float))
                               or not 0 < sf <= MAX_SAMPLING_FREQUENCY):
            raise ConfigurationError(
                f"sampling_frequency={sf!r} is invalid; give samples per second from 1 to "
                f"{MAX_SAMPLING_FREQUENCY} (sampling profiler), or leave it out to count every "
                "call (cProfile)"
            )
        if not isinstance(cfg["top_n"], int) or cfg["top_n"] < 1:
            raise ConfigurationError(f"top_n={cfg['top_n']!r} is invalid; give a positive integer")
        self.config = cfg
        self.profile_type: str = cfg["profile_type"]
        self._runs: dict[str, ProfileRun] = {}
        self._last: str | None = None

    def profile_context(self, name: str = "profile") -> _ProfileContext:
        """Profile the block: ``async with profiler.profile_context("replay"): ...``."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"profile name {name!r} is invalid; give a non-empty string")
        return _ProfileContext(self, name)

    @property
    def runs(self) -> dict[str, ProfileRun]:
        return dict(self._runs)

    def _run(self, name: str | None) -> ProfileRun:
        key = name if name is not None else self._last
        if key is None or key not in self._runs:
            raise ConfigurationError(
                f"no finished profile named {key!r}; profiled so far: {sorted(self._runs) or 'none'}"
                " - run the code inside profiler.profile_context(name) first"
            )
        return self._runs[key]

    async def analyze(self, name: str | None = None) -> ProfileAnalysis:
        """Analysis of the named profile (default: the last one)."""
        return self.analysis(name)

    def analysis(self, name: str | None = None) -> ProfileAnalysis:
        """Synchronous form of :meth:`analyze`."""
        run = self._run(name)
        calls: int | None = 0
        idle = 0.0
        bottlenecks: list[Bottleneck] = []
        if run.stats is not None:
            working = {f: v for f, v in run.stats.items() if not is_idle(f)}
            idle = sum(v[2] for f, v in run.stats.items() if f not in working)
            total = sum(v[2] for v in working.values()) or 1e-12
            calls = sum(v[1] for v in run.stats.values()) if run.samples is None else None
            if self.config["bottleneck_detection"]:
                threshold = self.config["bottleneck_threshold_percent"]
                ranked = sorted(working.items(), key=lambda kv: -kv[1][2])
                for func, (_cc, nc, tt, ct, _callers) in ranked[: self.config["top_n"]]:
                    share = tt / total * 100
                    if share < threshold:
                        break
                    bottlenecks.append(Bottleneck(label(func), nc, tt * 1000, ct * 1000, share,
                                                  sampled=run.samples is not None))
        return ProfileAnalysis(
            name=run.name,
            wall_time_ms=run.wall_seconds * 1000,
            cpu_time_ms=run.cpu_seconds * 1000,
            cpu_usage_percent=run.cpu_seconds / run.wall_seconds * 100 if run.wall_seconds else 0.0,
            memory_peak_mb=None if run.memory_peak_bytes is None else run.memory_peak_bytes / _MB,
            function_calls=calls,
            bottlenecks=bottlenecks,
            idle_time_ms=idle * 1000,
            samples=run.samples,
        )

    async def generate_flame_graph(self, path: str | Path, name: str | None = None) -> Path:
        """Write the named (default: last) profile's flame graph as SVG to ``path``."""
        if not self.config["flame_graph_generation"]:
            raise ConfigurationError(
                "flame graphs are off for this profiler; create it with "
                "{'flame_graph_generation': True}"
            )
        run = self._run(name)
        if run.stats is None:
            raise ConfigurationError(
                f"profile {run.name!r} has no CPU data (profile_type {self.profile_type!r}); use "
                "'cpu' or 'cpu_and_memory' for a flame graph"
            )
        out = Path(path)
        out.write_text(render_svg(run.stats, title=f"eventuali profile: {run.name}"), encoding="utf-8")
        return out
