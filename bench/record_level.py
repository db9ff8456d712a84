"""Record-level cost of the reference engines: append and read per record, no pydantic.

Shows the backend's share of the end-to-end save/load cost, beside the floor of
raw ``sqlite3`` (``executemany`` into the same schema, ``fetchall`` of the same
rows).  One run, quick:
    python bench/record_level.py [url ...]
Defaults to memory://, sqlite://:memory: and a SQLite file in a temp dir.
Times are CPU time of this process (``time.process_time``), which is steadier
than wall time on a shared machine; with synchronous=NORMAL in WAL mode a
commit does not wait for the disk, so the two agree on an idle machine.
"""

from __future__ import annotations

import os
import sqlite3
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


def floor(path: str) -> None:
    """Raw sqlite3 on the same schema: the cost no Python engine can go below."""
    from eventuali_python.sqlite import _statements, schema_sql

    conn = sqlite3.connect(path, isolation_level=None)
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for statement in _statements(schema_sql()):
        conn.execute(statement)
    calls = workload()
    rows = [
        [(r[0], w.stream_id, w.stream_type, v, r[1], r[2], r[3], "", r[4], r[5])
         for v, r in enumerate(w.records, 1)]
        for (w,) in calls
    ]
    n = STREAMS * PER_STREAM
    t0 = clock()
    for batch in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO eventuali_events (event_id, stream_id, stream_type, version, event_type, "
            "schema_version, timestamp, tenant, metadata, payload) VALUES (?,?,?,?,?,?,?,?,?,?)",
            batch,
        )
        conn.execute("COMMIT")
    t1 = clock()
    for s in range(STREAMS):
        conn.execute(
            "SELECT * FROM eventuali_events WHERE stream_id = ? ORDER BY version", (f"order-{s}",)
        ).fetchall()
    t2 = clock()
    conn.close()
    print(
        f"{'raw sqlite3 executemany, ' + ('memory' if path == ':memory:' else 'file'):40s} "
        f"append {1e6 * (t1 - t0) / n:5.2f} µs/record   read_stream {1e6 * (t2 - t1) / n:5.2f} µs/record"
    )


clock = time.process_time


def measure(url: str) -> None:
    backend = open_backend(parse_url(url))
    calls = workload()
    n = STREAMS * PER_STREAM
    t0 = clock()
    for writes in calls:
        backend.append(writes)
    t1 = clock()
    for s in range(STREAMS):
        backend.read_stream(f"order-{s}")
    t2 = clock()
    pos, total = 1, 0
    while True:
        page = backend.read_all(pos, 1000)
        if not page:
            break
        total += len(page)
        pos = page[-1].position + 1
    t3 = clock()
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
        if not urls:
            floor(":memory:")
            floor(os.path.join(tmp, "floor.db"))
