"""The async API's cost against its sync twin on SQLite, with and without the inline path.

Side by side in one run, interleaved round by round, per engine: the same saves
and loads through ``SyncEventStore``, through the async ``EventStore`` as
shipped (uncontended SQLite calls of the python engine run on the event loop,
see eventuali/asyncio_adapter.py), and through the async ``EventStore`` with
every call forced through the thread pool (what every call paid before).
Workloads: 20 aggregates x 100 events (save, load) and 300 x 1 event (the small
call where a per-call cost shows).  Prints async / sync ratios of medians for
wall time and for this process's CPU time (all threads), which a loaded
machine disturbs much less than wall time.

    python bench/bench_async_sync.py [--engines python,c] [--rounds 9]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_e2e import Cart, build_carts  # noqa: E402

from eventuali import EventStore, SyncEventStore  # noqa: E402

VARIANTS = ("sync", "async", "async, thread hop forced")
OPS = ("save 20x100", "save 300x1", "load 20x100", "load 300x1")


def timed(res: dict, key: tuple, fn) -> None:
    w, c = time.perf_counter(), time.process_time()
    fn()
    res[key + ("wall",)].append(time.perf_counter() - w)
    res[key + ("cpu",)].append(time.process_time() - c)


def one_round(engine: str, variant: str, loop: asyncio.AbstractEventLoop, res: dict) -> None:
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite://{d}/events.db"
        many, singles = build_carts(20, 100), build_carts(300, 1, first=20)
        work = {"save 20x100": many, "save 300x1": singles}
        if variant == "sync":
            store = SyncEventStore.create(url, backend=engine)
            for op, carts in work.items():
                timed(res, (engine, variant, op), lambda c=carts: [store.save(x) for x in c])
            for op, carts in (("load 20x100", many), ("load 300x1", singles)):
                timed(res, (engine, variant, op),
                      lambda c=carts: [store.load(Cart, x.id) for x in c])
            store.close()
            return
        astore = loop.run_until_complete(EventStore.create(url, backend=engine))
        if variant != "async" and hasattr(astore.backend, "_nowait"):
            astore.backend._nowait = None  # bench only: every call takes the thread hop

        async def saves(carts):
            for x in carts:
                await astore.save(x)

        async def loads(carts):
            for x in carts:
                await astore.load(Cart, x.id)

        for op, carts in work.items():
            timed(res, (engine, variant, op),
                  lambda c=carts: loop.run_until_complete(saves(c)))
        for op, carts in (("load 20x100", many), ("load 300x1", singles)):
            timed(res, (engine, variant, op), lambda c=carts: loop.run_until_complete(loads(c)))
        loop.run_until_complete(astore.close())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", default="python,c")
    p.add_argument("--rounds", type=int, default=9)
    args = p.parse_args()
    loop = asyncio.new_event_loop()
    res: dict = defaultdict(list)
    engines = args.engines.split(",")
    for r in range(args.rounds + 1):  # round 0 warms up and is dropped
        for engine in engines:
            for variant in VARIANTS:
                one_round(engine, variant, loop, res if r else defaultdict(list))
    print(f"median of {args.rounds} interleaved rounds; ratio = async / sync (1.00 = as fast)")
    print("| engine | operation | sync ms (wall / cpu) | async / sync (wall / cpu) | "
          "thread hop forced / sync (wall / cpu) |")
    print("|---|---|---:|---:|---:|")
    for engine in engines:
        for op in OPS:
            med = {(v, k): statistics.median(res[(engine, v, op, k)])
                   for v in VARIANTS for k in ("wall", "cpu")}
            sync = f"{med['sync', 'wall'] * 1e3:.1f} / {med['sync', 'cpu'] * 1e3:.1f}"
            cells = [f"{med[v, 'wall'] / med['sync', 'wall']:.2f} / "
                     f"{med[v, 'cpu'] / med['sync', 'cpu']:.2f}" for v in VARIANTS[1:]]
            print(f"| {engine} | {op} | {sync} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
