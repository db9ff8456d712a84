"""The performance guide's "Connection Pooling" (section 1), measured.

Run it: ``python examples/44_connection_pooling_performance.py [--url URL]
[--ops N] [--workers N]`` (default: a SQLite file in a temporary folder,
300 operations, 20 concurrent workers).  Give a PostgreSQL URL
(``--url postgresql://user@host/db``) to compare pool sizes too.

What the section claims, and what this program measures:

1. Reduced latency from connection reuse: saving through one store that
   keeps its connections, against opening a store (new connections) for each
   save.
2. Throughput under load with a pool (PostgreSQL): ``--workers`` concurrent
   writers on a store with ``pool_size=1`` against the guide's URL options
   (``pool_size=20&max_overflow=30&pool_timeout=30&pool_recycle=3600``).
   SQLite has one writer at a time and no pool options: this part says so.

Every number is measured by this run on this machine; a check that does not
hold is printed with ❌.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from eventuali import Event, EventStore

GUIDE_POOL = "application_name=eventuali&pool_size=20&max_overflow=30&pool_timeout=30&pool_recycle=3600"


class Pinged(Event):
    n: int


def ok(flag: bool) -> str:
    return "✅" if flag else "❌"


def with_options(url: str, options: str) -> str:
    return url + ("&" if "?" in url else "?") + options


async def reuse(url: str, ops: int) -> None:
    print("1. Connection reuse:")
    t0 = time.perf_counter()
    for i in range(ops):
        store = await EventStore.create(url)  # new connections every time
        await store.save_events([Pinged(aggregate_id="fresh", n=i)])
        await store.close()
    fresh = (time.perf_counter() - t0) / ops
    store = await EventStore.create(url)
    try:
        t0 = time.perf_counter()
        for i in range(ops):
            await store.save_events([Pinged(aggregate_id="reused", n=i)])
        reused = (time.perf_counter() - t0) / ops
        saved = len(await store.load_events("fresh")) + len(await store.load_events("reused"))
    finally:
        await store.close()
    print(f"   ✅ A new store per save: {fresh * 1000:.3f}ms per save")
    print(f"   ✅ One store, connections reused: {reused * 1000:.3f}ms per save")
    print(f"   {ok(reused < fresh)} Reuse is {fresh / reused:.1f}x faster per save")
    print(f"   {ok(saved == 2 * ops)} All {saved:,} saves stored")


async def concurrent_throughput(url: str, ops: int, workers: int) -> tuple[float, int]:
    store = await EventStore.create(url)
    try:
        stream = f"load-{uuid.uuid4().hex[:8]}"

        async def worker(w: int) -> None:
            for i in range(w, ops, workers):
                await store.save_events([Pinged(aggregate_id=f"{stream}-{w}", n=i)])

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(workers)))
        elapsed = time.perf_counter() - t0
        stored = sum([len(await store.load_events(f"{stream}-{w}")) for w in range(workers)])
    finally:
        await store.close()
    return ops / elapsed, stored


async def pooling(url: str, ops: int, workers: int) -> None:
    print(f"\n2. Throughput under load ({workers} concurrent writers):")
    if not url.startswith(("postgresql:", "postgres:")):
        rate, stored = await concurrent_throughput(url, ops, workers)
        print(f"   {ok(stored == ops)} {ops:,} saves from {workers} writers on one store: "
              f"{rate:,.0f} saves/second")
        print("   ✅ Pool sizes: not applicable to this store (SQLite has one writer at a time and "
              "no pool options); give --url postgresql://... to compare pool_size=1 with the guide's pool")
        return
    single, stored_single = await concurrent_throughput(with_options(url, "pool_size=1&max_overflow=0"),
                                                       ops, workers)
    pooled, stored_pooled = await concurrent_throughput(with_options(url, GUIDE_POOL), ops, workers)
    print(f"   ✅ pool_size=1: {single:,.0f} saves/second")
    print(f"   ✅ pool_size=20&max_overflow=30 (the guide's URL): {pooled:,.0f} saves/second")
    print(f"   {ok(pooled > single)} Pooling gives {pooled / single:.1f}x the throughput")
    print(f"   {ok(stored_single == stored_pooled == ops)} All {stored_single + stored_pooled:,} saves stored")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="store URL (default: a SQLite file in a temporary folder)")
    parser.add_argument("--ops", type=int, default=300, help="saves per measurement")
    parser.add_argument("--workers", type=int, default=20, help="concurrent writers")
    args = parser.parse_args(argv)
    if args.ops < 1 or args.workers < 1:
        parser.error("--ops and --workers must be >= 1")
    print("=== Eventuali Connection Pooling ===\n")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite://{Path(tmp) / 'pooling.db'}"
        await reuse(url, args.ops)
        await pooling(url, args.ops, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
