"""Observability: ``PerformanceMonitor`` (latency, throughput, memory, Prometheus export)
and ``PerformanceProfiler`` (cProfile + tracemalloc, bottlenecks, flame graphs).

See ``docs/observability.md``.
"""

from __future__ import annotations

from .monitor import OperationStats, PerformanceMetrics, PerformanceMonitor
from .profiler import Bottleneck, PerformanceProfiler, ProfileAnalysis, ProfileRun

__all__ = [
    "Bottleneck",
    "OperationStats",
    "PerformanceMetrics",
    "PerformanceMonitor",
    "PerformanceProfiler",
    "ProfileAnalysis",
    "ProfileRun",
]
