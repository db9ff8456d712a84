"""Throughput of the features on top of the store: projections, snapshots, batch saves.

Plain script, side by side in one run (ratios matter, absolute numbers drift):

    python bench/bench_features.py [--quick] [--url sqlite|memory] [--backend NAME]

- projection catch-up: events/s through a projection with a trivial handler
  (decoded events, and ``raw = True`` records), and through a StoredProjection;
- projection live: events/s from commit to handler while writers append;
- snapshot load: a 10,000-event aggregate loaded by replay vs from a snapshot;
- batch saves: BatchProcessor vs saving events one by one;
- the cost of the snapshot hook on ``store.save`` when no SnapshotService is
  attached (it must be nil).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from eventuali import (
    Aggregate,
    Event,
    EventStore,
    EventStreamer,
    Projection,
    SnapshotConfig,
    SnapshotService,
    StoredProjection,
)
from eventuali.performance import BatchProcessor

console = Console()


class Tick(Event):
    amount: int
    note: str


class Counter(Aggregate):
    total: int = 0
    count: int = 0
    last_notes: list[str] = []
    by_bucket: dict[str, int] = {}

    def apply_tick(self, e: Tick) -> None:
        self.total += e.amount
        self.count += 1
        self.last_notes.append(e.note)
        if len(self.last_notes) > 50:
            del self.last_notes[0]
        b = f"bucket-{e.amount % 200}"
        self.by_bucket[b] = self.by_bucket.get(b, 0) + e.amount


class Trivial(Projection):
    def __init__(self):
        self.n = 0

    def handle_tick(self, e):
        self.n += 1


class TrivialRaw(Projection):
    raw = True

    def __init__(self):
        self.n = 0

    def handle_tick(self, rec):
        self.n += 1


class StoredTotals(StoredProjection):
    def handle_tick(self, e):
        key = e.aggregate_id
        self.state.put(key, self.state.get(key, 0) + e.amount)


class _PreHookStore(EventStore):
    """EventStore.save exactly as it was before the snapshot hook (the baseline)."""

    async def save(self, *aggregates: Aggregate) -> None:
        writes = self._writes_for(aggregates)
        if writes:
            await self.backend.append(writes)
            self._committed(aggregates)


def _ticks(n: int, start: int = 0) -> list[Tick]:
    return [Tick(amount=i % 997, note=f"n{i}") for i in range(start, start + n)]


class Bench:
    def __init__(self, scheme: str, backend: str | None, quick: bool) -> None:
        self.scheme, self.backend, self.quick = scheme, backend, quick
        self.tmp = tempfile.mkdtemp(prefix="eventuali-bench-")
        self.rows: list[tuple[str, str, str]] = []
        self._n = 0

    def url(self) -> str:
        self._n += 1
        if self.scheme == "memory":
            return f"memory://bench-{os.getpid()}-{self._n}"
        return f"sqlite:///{self.tmp}/bench-{self._n}.db"

    async def store(self) -> EventStore:
        return await EventStore.create(self.url(), backend=self.backend)

    def row(self, what: str, value: str, note: str = "") -> None:
        self.rows.append((what, value, note))

    async def fill(self, store: EventStore, n: int, streams: int = 100) -> None:
        per = n // streams
        bp = BatchProcessor(store, batch_size=5000, parallel_workers=1)
        events = []
        for s in range(streams):
            for e in _ticks(per, s * per):
                e.aggregate_id = f"c-{s}"
                events.append(e)
        (await bp.save_events(events)).raise_for_failures()

    async def projection_catch_up(self, progress, task) -> None:
        n = 20_000 if self.quick else 200_000
        store = await self.store()
        await self.fill(store, n)
        progress.advance(task)
        for cls, label in ((Trivial, "decoded events"), (TrivialRaw, "raw records"),
                           (StoredTotals, "StoredProjection (exactly once)")):
            streamer = EventStreamer(store)
            await streamer.configure(batch_size=2000, buffer_size=20000)
            p = cls()
            await streamer.subscribe(p)
            t0 = time.perf_counter()
            await streamer.catch_up()
            dt = time.perf_counter() - t0
            got = p.n if hasattr(p, "n") else sum(p.state.values()) and n
            assert got == n, (cls, got)
            self.row(f"projection catch-up, {label}", f"{n / dt:,.0f} events/s", f"{n:,} events")
            progress.advance(task)
        await store.close()

    async def projection_live(self, progress, task) -> None:
        n = 5_000 if self.quick else 50_000
        store = await self.store()
        streamer = EventStreamer(store)
        p = Trivial()
        await streamer.subscribe(p)
        await streamer.start()
        chunk = 100
        t0 = time.perf_counter()
        for i in range(0, n, chunk):
            evs = _ticks(chunk, i)
            for e in evs:
                e.aggregate_id = f"live-{i // 1000}"
            await store.save_events(evs)
        await streamer.wait_until(timeout=120)
        dt = time.perf_counter() - t0
        await streamer.stop()
        assert p.n == n
        self.row("projection live (writer + projection)", f"{n / dt:,.0f} events/s",
                 f"{n:,} events saved {chunk} per commit while followed")
        progress.advance(task)
        await store.close()

    async def snapshots(self, progress, task) -> None:
        n = 10_000
        store = await self.store()
        agg = Counter(id="big")
        for e in _ticks(n):
            agg.apply(e)
        await store.save(agg)
        svc = SnapshotService(store, SnapshotConfig(snapshot_frequency=0))
        snap = await svc.create_snapshot(agg)
        reps = 3 if self.quick else 10
        t0 = time.perf_counter()
        for _ in range(reps):
            replayed = await store.load(Counter, "big")
        t_replay = (time.perf_counter() - t0) / reps
        progress.advance(task)
        t0 = time.perf_counter()
        for _ in range(reps):
            fast = await svc.load_with_snapshot(Counter, "big")
        t_snap = (time.perf_counter() - t0) / reps
        assert fast == replayed
        raw = len(agg.model_dump_json())
        self.row("load 10,000-event aggregate by replay", f"{t_replay * 1e3:.1f} ms")
        self.row("load it from a snapshot", f"{t_snap * 1e3:.2f} ms",
                 f"{t_replay / t_snap:.0f}x faster")
        self.row("snapshot size", f"{len(snap.payload):,} B",
                 f"JSON {raw:,} B, compressed to {len(snap.payload) / raw:.0%}")
        progress.advance(task)
        await store.close()

    async def batch(self, progress, task) -> None:
        n = 2_000 if self.quick else 10_000
        store = await self.store()

        def events(start: int) -> list[Tick]:
            evs = _ticks(n, start)
            for i, e in enumerate(evs):
                e.aggregate_id = f"acct-{i % 100}"  # 100 aggregates, appended at their end
            return evs

        one = events(0)
        t0 = time.perf_counter()
        for e in one:
            await store.save_events([e])
        t_one = time.perf_counter() - t0
        progress.advance(task)
        bp = BatchProcessor(store=store, batch_size=1000, max_wait_time=100, parallel_workers=4)
        t0 = time.perf_counter()
        result = await bp.save_events(events(n))
        t_batch = time.perf_counter() - t0
        assert result.ok
        self.row("save one by one", f"{n / t_one:,.0f} events/s", f"{n:,} events over 100 aggregates")
        self.row("BatchProcessor", f"{n / t_batch:,.0f} events/s", f"{t_one / t_batch:.0f}x faster")
        progress.advance(task)
        await store.close()

    async def hook_cost(self, progress, task) -> None:
        """store.save with the snapshot-hook slot empty vs the same method as it was before
        the hook existed, on one backend, interleaved in rounds so noise hits both alike."""
        n = 4_000 if self.quick else 40_000
        rounds = 20
        store = await EventStore.create(f"memory://hook-{os.getpid()}", backend=self.backend)
        before = _PreHookStore(store.backend, store.url, store.codec)
        times = {"hook": 0.0, "before": 0.0}
        per = n // (2 * rounds)
        for r in range(rounds):
            for label, s in (("before", before), ("hook", store)) if r % 2 else (
                    ("hook", store), ("before", before)):
                aggs = [Counter(id=f"h-{label}-{r}-{i}") for i in range(per)]
                for a in aggs:
                    a.apply(Tick(amount=1, note=""))
                t0 = time.perf_counter()
                for a in aggs:
                    await s.save(a)
                times[label] += time.perf_counter() - t0
        k = per * rounds
        self.row("store.save, no SnapshotService", f"{times['hook'] / k * 1e6:.2f} µs/save",
                 f"vs {times['before'] / k * 1e6:.2f} µs for save() without the hook test")
        progress.advance(task)
        await store.close()

    async def run(self) -> None:
        steps = [(self.projection_catch_up, 4), (self.projection_live, 1), (self.snapshots, 2),
                 (self.batch, 2), (self.hook_cost, 1)]
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("benchmarking", total=sum(k for _, k in steps))
            for fn, _ in steps:
                await fn(progress, task)
        table = Table(title=f"eventuali features on {self.scheme} (backend {self.backend or 'auto'})")
        for col in ("measure", "result", "note"):
            table.add_column(col)
        for r in self.rows:
            table.add_row(*r)
        console.print(table)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    ap.add_argument("--url", choices=("sqlite", "memory"), default="sqlite")
    ap.add_argument("--backend", default=None, help="engine name (default: auto)")
    args = ap.parse_args(argv)
    asyncio.run(Bench(args.url, args.backend, args.quick).run())


if __name__ == "__main__":
    sys.exit(main())
