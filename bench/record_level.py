"""Record-level cost of the reference engines: append and read per record, no pydantic.

Shows the backend's share of the end-to-end save/load cost.  One run, quick:
    python bench/record_level.py [url ...]
Defaults to memory://, sqlite://:memory: and a SQLite file in a temp dir.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from eventuali.ids import uuid7
from eventuali.records import NO_STREAM, NewRecord, StreamWrite
from eventuali.registry import open_backend
from eventuali.url import parse_url

STREAMS, PER_STREAM = 100, 100
PAYLOAD = b'{"customer_id":"c-1","amount":12.5,"currency":"EUR","items":["a","b"]}'


def workload() -> list[list[StreamWrite]]:
    calls = []
    ts = time.time_ns() // 1000
    for s in range(STREAMS):
        recs = [
            NewRecord(uuid7().bytes, "OrderPlaced", 1, ts, b'{"correlation_id":null}', PAYLOAD)
            for _ in range(PER_STREAM)
        ]
        calls.append([StreamWrite(f"order-{s}", "Order", NO_STREAM, recs)])
    return calls


def measure(url: str) -> None:
    backend = open_backend(parse_url(url))
    calls = workload()
    n = STREAMS * PER_STREAM
    t0 = time.perf_counter()
    for writes in calls:
        backend.append(writes)
    t1 = time.perf_counter()
    for s in range(STREAMS):
        backend.read_stream(f"order-{s}")
    t2 = time.perf_counter()
    pos, total = 1, 0
    while True:
        page = backend.read_all(pos, 1000)
        if not page:
            break
        total += len(page)
        pos = page[-1].position + 1
    t3 = time.perf_counter()
    assert total == n
    backend.close()
    print(
        f"{url:40s} append {1e6 * (t1 - t0) / n:5.2f} µs/record   read_stream "
        f"{1e6 * (t2 - t1) / n:5.2f} µs/record   read_all {1e6 * (t3 - t2) / n:5.2f} µs/record"
    )


if __name__ == "__main__":
    urls = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        for url in urls or ["memory://", "sqlite://:memory:", f"sqlite://{os.path.join(tmp, 'b.db')}"]:
            measure(url)
