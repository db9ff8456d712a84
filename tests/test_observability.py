"""Monitoring and profiling through the public API: real timings, counts, export, SVG."""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventuali import Aggregate, ConfigurationError, Event, EventStore, SyncEventStore
from eventuali.observability import PerformanceMonitor, PerformanceProfiler


class ObsTransactionRecorded(Event):
    from_account: str = "a"
    to_account: str = "central-acc"
    amount: float = 1.0
    transaction_type: str = "transfer"
    description: str = ""


class Account(Aggregate):
    total: float = 0.0

    def apply_obs_transaction_recorded(self, event: ObsTransactionRecorded) -> None:
        self.total += event.amount


@pytest.fixture(params=["memory", "sqlite"])
def url(request, tmp_path):
    if request.param == "memory":
        return f"memory://obs-{uuid.uuid4().hex}"
    return f"sqlite://{tmp_path / 'obs.db'}"


def _families(text: bytes) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


async def test_the_monitoring_guide_snippet(url):
    store = await EventStore.create(url)
    monitor = PerformanceMonitor({
        "collection_interval": 1000,
        "export_format": "prometheus",
        "include_histograms": True,
        "track_memory": True,
    })
    monitor.instrument(store)

    @monitor.track_performance
    async def high_throughput_operation():
        events = []
        for i in range(2000):
            event = ObsTransactionRecorded(from_account=f"acc-{i}", amount=random.uniform(10, 1000))
            events.append(event)
        await store.save_batch(events)
        return len(events)

    assert await high_throughput_operation() == 2000
    metrics = await monitor.get_metrics()
    assert metrics.events_written == 2000
    assert metrics.events_per_second > 0
    op = metrics.per_operation["test_the_monitoring_guide_snippet.<locals>.high_throughput_operation"]
    assert op.count == 1
    # One tracked call: every percentile is its latency, and it covers the append inside it.
    assert metrics.p95_latency_ms == op.max_ms > 0
    assert metrics.p95_latency_ms >= metrics.per_operation["store.append"].max_ms
    assert metrics.memory_usage_mb > 1
    print(f"Throughput: {metrics.events_per_second}")
    print(f"P95 Latency: {metrics.p95_latency_ms}ms")
    print(f"Memory Usage: {metrics.memory_usage_mb}MB")
    await store.close()


async def test_latencies_and_percentiles_are_measured():
    monitor = PerformanceMonitor({"export_format": "none", "track_memory": False})

    @monitor.track_performance(name="sleepy")
    async def sleepy(s):
        await asyncio.sleep(s)

    @monitor.track_performance
    def fast():
        return 1

    for _ in range(19):
        await sleepy(0.001)
    await sleepy(0.06)
    fast()
    m = await monitor.get_metrics()
    assert m.per_operation["sleepy"].count == 20
    assert m.per_operation["sleepy"].max_ms >= 60
    assert m.p50_latency_ms < 30 <= m.max_latency_ms  # p50 is a short call, max the long one
    assert m.per_operation["test_latencies_and_percentiles_are_measured.<locals>.fast"].count == 1
    assert m.memory_usage_mb == 0.0


async def test_errors_are_counted_and_reraised():
    monitor = PerformanceMonitor({"export_format": "none"})

    @monitor.track_performance
    async def boom():
        raise KeyError("x")

    with pytest.raises(KeyError):
        await boom()
    with pytest.raises(ValueError), monitor.measure("block"):
        raise ValueError
    m = await monitor.get_metrics()
    assert m.errors == 2 and m.operations == 2


def test_sync_store_instrumentation_counts_reads_and_writes(tmp_path):
    monitor = PerformanceMonitor({"export_format": "none"})
    store = monitor.instrument(SyncEventStore.create(f"sqlite://{tmp_path / 's.db'}"))
    acc = Account(id="a")
    for _ in range(5):
        acc.apply(ObsTransactionRecorded(amount=2))
    store.save(acc)
    assert store.load(Account, "a").total == 10
    assert len(store.read_all()) == 5
    m = monitor.metrics()
    assert (m.events_written, m.events_read) == (5, 10)
    assert m.per_operation["store.append"].count == 1
    assert m.per_operation["store.read_stream"].count == 1
    monitor.uninstrument(store)
    store.load(Account, "a")
    assert monitor.metrics().events_read == 10
    store.close()


async def test_prometheus_exposition_and_http_scrape(url):
    monitor = PerformanceMonitor({"export_format": "prometheus", "include_histograms": True})
    other = PerformanceMonitor({"export_format": "prometheus"})  # registries do not mix
    store = monitor.instrument(await EventStore.create(url))
    acc = Account(id="p")
    acc.apply(ObsTransactionRecorded(amount=1))
    acc.apply(ObsTransactionRecorded(amount=1))
    await store.save(acc)
    await store.load(Account, "p")
    fams = _families(monitor.export())
    events = {s.labels["direction"]: s.value for s in fams["eventuali_events"].samples
              if s.name == "eventuali_events_total"}
    assert events == {"written": 2.0, "read": 2.0}
    buckets = [s for s in fams["eventuali_operation_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["operation"] == "store.append"]
    assert buckets and buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 1.0
    assert fams["eventuali_memory_usage_bytes"].samples[0].value > 0
    assert "eventuali_events" not in {f for f in _families(other.export())
                                      if _families(other.export())[f].samples}
    server = monitor.start_http_server(0)
    try:
        port = server.server_address[1]
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert 'eventuali_events_total{direction="written"} 2.0' in body.decode()
    finally:
        server.shutdown()
        server.server_close()
    await store.close()


def test_summary_instead_of_histogram():
    monitor = PerformanceMonitor({"include_histograms": False})
    with monitor.measure("x"):
        pass
    text = monitor.export().decode()
    assert 'eventuali_operation_duration_seconds_count{operation="x"} 1.0' in text
    assert "_bucket" not in text


def test_monitor_config_errors():
    with pytest.raises(ConfigurationError, match="export_format='json' is invalid"):
        PerformanceMonitor({"export_format": "json"})
    with pytest.raises(ConfigurationError, match="collection_interval=0 is invalid"):
        PerformanceMonitor({"collection_interval": 0})
    with pytest.raises(ConfigurationError, match=r"unknown PerformanceMonitor option\(s\) \['colour'\]"):
        PerformanceMonitor({"colour": "red"})
    with pytest.raises(ConfigurationError, match="export_format 'none'"):
        PerformanceMonitor({"export_format": "none"}).export()


def _hot_loop(n):
    return sum(i * i for i in range(n))


async def test_the_profiling_guide_snippet(url, tmp_path):
    store = await EventStore.create(url)
    profiler = PerformanceProfiler({
        "profile_type": "cpu_and_memory",
        "sampling_frequency": 1000,
        "flame_graph_generation": True,
        "bottleneck_detection": True,
    })
    async with profiler.profile_context("event_processing"):
        for i in range(100):
            event = ObsTransactionRecorded(amount=i)
            await store.save_events([event])
        keep = [bytearray(1024) for _ in range(2048)]  # ~2 MB held at the peak
        _hot_loop(300_000)
        del keep

    analysis = await profiler.analyze()
    assert analysis.name == "event_processing"
    assert 0 < analysis.cpu_usage_percent <= 250  # two cores at most, plus clock slack
    assert analysis.memory_peak_mb >= 2.0
    # sampling_frequency is honoured: a sampling profiler, which counts samples, not calls.
    assert analysis.samples > 0 and analysis.function_calls is None
    names = [b.function for b in analysis.bottlenecks]
    assert any("<genexpr>" in n or "_hot_loop" in n for n in names), names
    assert all(b.percent_of_total >= 5.0 for b in analysis.bottlenecks)
    print(f"CPU Usage: {analysis.cpu_usage_percent}%")
    print(f"Memory Peak: {analysis.memory_peak_mb}MB")
    print(f"Bottlenecks: {analysis.bottlenecks}")

    out = await profiler.generate_flame_graph(tmp_path / "profile_results.svg")
    svg = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag == ns + "svg"
    titles = [t.text for t in svg.iter(ns + "title")]
    assert any("_hot_loop" in t for t in titles), titles[:20]
    assert len(list(svg.iter(ns + "rect"))) > 10
    await store.close()


def test_flame_graph_widths_follow_time(tmp_path):
    profiler = PerformanceProfiler({"profile_type": "cpu"})

    def slow():
        time.sleep(0)
        return _hot_loop(400_000)

    def quick():
        return _hot_loop(40_000)

    with profiler.profile_context("widths"):
        slow()
        quick()
    out = profiler.runs["widths"]
    assert out.memory_peak_bytes is None
    path = tmp_path / "w.svg"
    asyncio.run(profiler.generate_flame_graph(path))
    ns = "{http://www.w3.org/2000/svg}"
    widths = {}
    for g in ET.parse(path).getroot().iter(ns + "g"):
        title = g.find(ns + "title").text
        for fn in ("slow", "quick"):
            if title.startswith(fn + " ("):
                widths[fn] = float(g.find(ns + "rect").get("width"))
    assert widths["slow"] > 4 * widths["quick"] > 0


async def test_profiler_errors_are_clear(tmp_path):
    with pytest.raises(ConfigurationError, match="profile_type='gpu' is invalid"):
        PerformanceProfiler({"profile_type": "gpu"})
    p = PerformanceProfiler({"profile_type": "memory"})
    with pytest.raises(ConfigurationError, match="no finished profile named None"):
        await p.analyze()
    async with p.profile_context("outer"):
        with pytest.raises(ConfigurationError, match="inside profile_context\\('outer'\\)"):
            async with p.profile_context("inner"):
                pass
    with pytest.raises(ConfigurationError, match="has no CPU data"):
        await p.generate_flame_graph(tmp_path / "x.svg")
    assert (await p.analyze("outer")).bottlenecks == []
