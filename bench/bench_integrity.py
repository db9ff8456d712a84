"""What ``integrity=chain`` costs: checking a chain per engine, and appending with and without it.

- ``verify <engine>``: ``eventuali.integrity.verify`` of one SQLite file holding
  ``--events`` chained events (default 1,000,000; 200-byte payloads, 100 per
  stream), written once by the c engine (the python engine verifies the same
  file); events checked per second, and the c/python ratio.
- ``append <engine> <plain|chain>``: appending batches of 100 events to a new
  ``memory://`` store, with and without the chain, per event.

Method: CPU time of this process (``time.process_time``, so that other
processes on a loaded machine disturb less than wall-clock time), a warm-up pass, then ``--repeats`` timed passes, the cases interleaved
(pass r of every case before pass r+1 of any) so load bursts on a shared
machine hit all alike; the best pass is reported (and the median).  Nothing is
asserted.  Usage: ``python bench/bench_integrity.py [--events N] [--repeats R]``
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

from eventuali import integrity, registry
from eventuali.records import ANY, NewRecord, StreamWrite
from eventuali.url import parse_url

PAYLOAD = b'{"amount": 12.5, "currency": "EUR", "from": "acct-000001", "to": "acct-000002", ' + b"x" * 120 + b"}"


def batches(events: int, per_batch: int = 1000) -> list[list[StreamWrite]]:
    out = []
    n = 0
    while n < events:
        writes = []
        for s in range(per_batch // 100):
            records = [
                NewRecord(uuid.uuid4().bytes, "MoneyMoved", 1, 1_700_000_000_000_000 + n + i, b"{}", PAYLOAD)
                for i in range(100)
            ]
            writes.append(StreamWrite(f"acct-{(n // 100) + s}", "Account", ANY, records))
        n += per_batch
        out.append(writes)
    return out


def build_file(path: str, events: int) -> None:
    backend = registry.load("c").open(parse_url(f"sqlite://{path}?integrity=chain&synchronous=off"))
    for writes in batches(events):
        backend.append(writes)
    backend.close()


def timed(cases: dict[str, Callable[[], int]], repeats: int) -> dict[str, list[float]]:
    per_item: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in cases.items():
            gc.collect()
            start = time.process_time()  # CPU time: less sensitive to other processes' load
            items = fn()
            per_item[name].append((time.process_time() - start) / items)
    return per_item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--append-events", type=int, default=20_000)
    args = parser.parse_args()
    engines = {name: registry.load(name) for name in ("python", "c")}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "chained.db")
        start = time.perf_counter()
        build_file(path, args.events)
        print(f"built {args.events:,} chained events with the c engine in {time.perf_counter() - start:.1f} s")
        opened = {name: e.open(parse_url(f"sqlite://{path}")) for name, e in engines.items()}

        def verify(name: str) -> Callable[[], int]:
            def run() -> int:
                problems = integrity.verify(opened[name])
                assert not problems, problems[:3]
                return args.events
            return run

        append_batches = batches(args.append_events, 100)

        def append(name: str, option: str) -> Callable[[], int]:
            def run() -> int:
                backend = engines[name].open(parse_url("memory://" + option))
                for writes in append_batches:
                    backend.append([w._replace(records=[r._replace(event_id=uuid.uuid4().bytes) for r in w.records])
                                    for w in writes])
                backend.close()
                return args.append_events
            return run

        verify_results = timed({f"verify {n}": verify(n) for n in engines}, args.repeats)
        append_results = timed(
            {f"append {n} {o or 'plain'}": append(n, o) for n in engines for o in ("", "?integrity=chain")},
            args.repeats,
        )
        for b in opened.values():
            b.close()
    print(f"{'case':28} {'best':>12} {'median':>12}")
    for name, values in {**verify_results, **append_results}.items():
        unit = "events/s" if name.startswith("verify") else "us/event"
        best, median = min(values), statistics.median(values)
        if unit == "events/s":
            print(f"{name:28} {1 / best:12,.0f} {1 / median:12,.0f} {unit}")
        else:
            print(f"{name:28} {best * 1e6:12.2f} {median * 1e6:12.2f} {unit}")
    ratio = min(verify_results["verify python"]) / min(verify_results["verify c"])
    print(f"verify c/python rate ratio (best passes): {ratio:.1f}x")


if __name__ == "__main__":
    main()
