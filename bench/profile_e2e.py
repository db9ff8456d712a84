"""Where the end-to-end time goes: cProfile of eventuali's 100×100 save and load on a SQLite file.

Usage: ``python bench/profile_e2e.py [--api async|sync] [--backend python] [--top 25]``,
or ``python bench/profile_e2e.py --stages [--meter callgrind|time] [--engines python,c]``
for the per-stage table of docs/performance.md (see bench/stage_split.py).
Prints the time split by layer (eventuali core, the engine, pydantic, sqlite3,
asyncio/threads, other) and the top functions by own time, for the save and
the load of the bench's 100 aggregates × 100 events.  Profiling slows Python
code more than C code, so the split is a guide to where to look, not a
measurement; bench_e2e.py gives the unprofiled numbers.

cProfile sees only the calling thread.  With ``--api async`` a SQLite store
runs the engine in a worker thread, so the engine and sqlite3 show up as
"asyncio / threads" (waiting); ``--api sync`` (the default) shows the same
code path without the thread hop, layer by layer.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_e2e import Cart, build_carts  # noqa: E402

from eventuali import EventStore, SyncEventStore  # noqa: E402


def layer(func: tuple[str, int, str]) -> str:
    path, _, name = func
    p = path.replace("\\", "/")
    if "eventuali_python" in p or "eventuali_c" in p:
        return "engine (eventuali_python / eventuali_c)"
    if "/eventuali/" in p:
        return "eventuali core"
    if "pydantic" in p or "pydantic" in name:
        return "pydantic"
    if "sqlite3" in name or "sqlite3" in p:
        return "sqlite3"
    if any(k in p for k in ("asyncio", "threading", "concurrent", "queue.py", "selectors")) or \
            "acquire" in name or "wait" in name or "select" in name:
        return "asyncio / threads"
    if "uuid" in p or "uuid" in name:
        return "uuid"
    return "other"


def split(stats: pstats.Stats) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        out[layer(func)] += tt
    return dict(out)


def report(title: str, prof: cProfile.Profile, events: int, top: int) -> None:
    stats = pstats.Stats(prof)
    parts = split(stats)
    total = sum(parts.values())
    print(f"\n== {title}: {total * 1e6 / events:.1f} µs/event under the profiler ==")
    for name, t in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {name:42s} {t * 1e6 / events:7.2f} µs/event  {100 * t / total:5.1f}%")
    print()
    stats.sort_stats("tottime").print_stats(top)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--api", choices=("async", "sync"), default="sync")
    p.add_argument("--backend", default="python")
    p.add_argument("--aggregates", type=int, default=100)
    p.add_argument("--events-per-aggregate", type=int, default=100)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--stages", action="store_true",
                   help="per-stage cost table (create, encode, engine call, commit, ...) instead")
    p.add_argument("--meter", choices=("callgrind", "time"), default="callgrind",
                   help="--stages: instruction counts under callgrind (default) or wall time")
    p.add_argument("--engines", default="python,c", help="--stages: engines to split")
    args = p.parse_args()
    if args.stages:
        import stage_split

        engines = args.engines.split(",")
        totals = stage_split.measure(engines, args.aggregates, args.events_per_aggregate,
                                     args.meter)
        unit = "Ir" if args.meter == "callgrind" else "µs"
        print(f"{args.aggregates} aggregates x {args.events_per_aggregate} events, SQLite file, "
              f"meter {args.meter} ({unit} per event)\n")
        print(stage_split.table(totals, engines, args.aggregates * args.events_per_aggregate, unit))
        return 0
    n = args.aggregates * args.events_per_aggregate
    with tempfile.TemporaryDirectory(prefix="eventuali-profile-") as d:
        url = f"sqlite://{d}/events.db"  # d is absolute: sqlite:///abs/path.db
        carts = build_carts(args.aggregates, args.events_per_aggregate)
        ids = [c.id for c in carts]
        save_prof, load_prof = cProfile.Profile(), cProfile.Profile()
        if args.api == "sync":
            store = SyncEventStore.create(url, backend=args.backend)
            save_prof.enable()
            for c in carts:
                store.save(c)
            save_prof.disable()
            store.close()
            store = SyncEventStore.create(url, backend=args.backend)
            load_prof.enable()
            for i in ids:
                store.load(Cart, i)
            load_prof.disable()
            store.close()
        else:
            async def run() -> None:
                store = await EventStore.create(url, backend=args.backend)
                save_prof.enable()
                for c in carts:
                    await store.save(c)
                save_prof.disable()
                await store.close()
                store = await EventStore.create(url, backend=args.backend)
                load_prof.enable()
                for i in ids:
                    await store.load(Cart, i)
                load_prof.disable()
                await store.close()

            asyncio.run(run())
    report(f"save {args.aggregates}×{args.events_per_aggregate} ({args.api}, {args.backend})",
           save_prof, n, args.top)
    report(f"load {args.aggregates}×{args.events_per_aggregate} ({args.api}, {args.backend})",
           load_prof, n, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
