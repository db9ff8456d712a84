"""Record level, side by side: the reference engine (python) vs the native engine (c).

No pydantic: appends of NewRecord batches, read_stream of every stream, and
read_all paged like a subscriber, over the same records on both engines, for
memory:// and a SQLite file.  Prints per-record costs and the c/python ratio
(how many times faster c is).  A benchmark, not a test: run it on a quiet
machine.

    python bench/bench_records.py            # 1,000,000 records (10,000 streams x 100)
    python bench/bench_records.py --quick    # 50,000 records, a smoke run
    python bench/bench_records.py --records 200000 --batch 100 --page 1000
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time

from eventuali.ids import uuid7
from eventuali.records import NO_STREAM, NewRecord, StreamWrite
from eventuali.url import parse_url

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_format import dump, new_document, result_row  # noqa: E402

PAYLOAD = b'{"customer_id":"c-1","amount":12.5,"currency":"EUR","items":["a","b"]}'
METADATA = b'{"correlation_id":null,"user_id":"u-7"}'


def workload(n_records: int, per_stream: int, batch: int) -> list[list[StreamWrite]]:
    """Append calls: each one writes `batch` records to one stream (a typical save)."""
    ts = time.time_ns() // 1000
    calls = []
    for s in range(max(1, n_records // per_stream)):
        for first in range(0, per_stream, batch):
            recs = [
                NewRecord(uuid7().bytes, "OrderPlaced" if i % 3 else "OrderPaid", 1, ts, METADATA, PAYLOAD)
                for i in range(first, min(first + batch, per_stream))
            ]
            expected = NO_STREAM if first == 0 else first
            calls.append([StreamWrite(f"order-{s}", "Order", expected, recs, "acme")])
    return calls


def provider(name: str):
    if name == "python":
        from eventuali_python import PythonBackend

        return PythonBackend
    from eventuali_c import CBackend

    return CBackend


def run(engine: str, url: str, calls, n_streams: int, page: int) -> dict[str, float]:
    backend = provider(engine).open(parse_url(url))
    n = sum(len(w.records) for c in calls for w in c)
    gc.collect()
    t0 = time.perf_counter()
    for writes in calls:
        backend.append(writes)
    t1 = time.perf_counter()
    total = 0
    for s in range(n_streams):
        total += len(backend.read_stream(f"order-{s}"))
    t2 = time.perf_counter()
    assert total == n, (total, n)
    pos, seen = 1, 0
    while True:
        batch = backend.read_all(pos, page)
        if not batch:
            break
        seen += len(batch)
        pos = batch[-1].position + 1
    t3 = time.perf_counter()
    assert seen == n, (seen, n)
    backend.close()
    return {"append": (t1 - t0) / n, "read_stream": (t2 - t1) / n, "read_all": (t3 - t2) / n}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50,000 records: a smoke run")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-stream", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100, help="records per append call")
    parser.add_argument("--page", type=int, default=1000, help="read_all page size")
    parser.add_argument("--schemes", default="memory,sqlite")
    parser.add_argument("--json", metavar="PATH", help="also write the eventuali-bench/1 JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.records = 50_000
    calls = workload(args.records, args.per_stream, args.batch)
    n_streams = max(1, args.records // args.per_stream)
    n = sum(len(w.records) for c in calls for w in c)
    print(f"{n:,} records, {n_streams:,} streams, {args.batch} records per append, "
          f"read_all pages of {args.page}; python {sys.version.split()[0]}")
    print(f"{'scheme':<8} {'operation':<12} {'python µs/rec':>14} {'c µs/rec':>10} {'c faster':>9}")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in args.schemes.split(","):
            results = {}
            for engine in ("python", "c"):
                url = "memory://" if scheme == "memory" else f"sqlite://{os.path.join(tmp, engine + '.db')}"
                results[engine] = run(engine, url, calls, n_streams, args.page)
            for op in ("append", "read_stream", "read_all"):
                p, c = results["python"][op] * 1e6, results["c"][op] * 1e6
                print(f"{scheme:<8} {op:<12} {p:>14.3f} {c:>10.3f} {p / c:>8.1f}x")
                for engine in ("python", "c"):
                    rows.append(result_row(
                        workload=f"records_{op}", storage=scheme, contender=f"eventuali-{engine}",
                        kind="record", events=n, seconds=[results[engine][op] * n],
                    ))
    if args.json:
        doc = new_document("bench_records.py", {"records": n, "batch": args.batch,
                                                "page": args.page, "repeats": 1})
        doc["results"] = rows
        dump(doc, args.json)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
