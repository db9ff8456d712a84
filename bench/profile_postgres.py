"""Profile the PostgreSQL engine's record path (no pydantic): where an append and a read spend time.

Usage: python bench/profile_postgres.py [URL] [--cprofile]
Writes 100 streams x 100 records (one append per stream) into a fresh schema,
reads them back per stream, then drops the schema.  Prints events/s; with
--cprofile, the top functions of each phase.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
import uuid

import psycopg
from eventuali_python import PythonBackend

from eventuali.ids import uuid7
from eventuali.records import NO_STREAM, NewRecord, StreamWrite
from eventuali.url import parse_url

url = next((a for a in sys.argv[1:] if a.startswith("postgresql")), "postgresql://postgres@127.0.0.1:5432/test")
schema = f"prof_{uuid.uuid4().hex[:8]}"
payload = b'{"sku":"sku-0001","quantity":3,"price":12.5}'
meta = b'{"correlation_id":null}'
writes = [
    StreamWrite(f"cart-{i}", "Cart", NO_STREAM,
                [NewRecord(uuid7().bytes, "ItemAdded", 1, 1_700_000_000_000_000 + j, meta, payload)
                 for j in range(100)])
    for i in range(100)
]  # fmt: skip
backend = PythonBackend.open(parse_url(f"{url}{'&' if '?' in url else '?'}schema={schema}"))
prof = cProfile.Profile() if "--cprofile" in sys.argv else None
try:
    t = time.perf_counter()
    if prof:
        prof.enable()
    for w in writes:
        backend.append([w])
    if prof:
        prof.disable()
    save = time.perf_counter() - t
    t = time.perf_counter()
    for w in writes:
        assert len(backend.read_stream(w.stream_id)) == 100
    load = time.perf_counter() - t
    print(f"append 100x100: {10_000 / save:,.0f} events/s ({save * 1000:.1f} ms)")
    print(f"read_stream 100x100: {10_000 / load:,.0f} events/s ({load * 1000:.1f} ms)")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
finally:
    backend.close()
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
