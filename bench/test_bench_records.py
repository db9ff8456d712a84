"""Record level, per engine and storage, no pydantic: append, read_stream, read_all.

The engine's own cost of a save (one append of 100 records to a new stream)
and of a load (read_stream of a 100-record stream), and a page of read_all.
``bench/bench_records.py`` is the one-shot side-by-side of the same at scale.
"""

from __future__ import annotations

import itertools
import time

from conftest import tag

from eventuali.ids import uuid7
from eventuali.records import NO_STREAM, NewRecord, StreamWrite
from eventuali.registry import open_backend
from eventuali.url import parse_url

PAYLOAD = b'{"customer_id":"c-1","amount":12.5,"currency":"EUR","items":["a","b"]}'
METADATA = b'{"user_id":"u-7"}'
PER_CALL = 100


def records(n: int) -> list[NewRecord]:
    ts = time.time_ns() // 1000
    return [NewRecord(uuid7().bytes, "OrderPlaced", 1, ts, METADATA, PAYLOAD) for _ in range(n)]


def opened(engine: str, url: str):
    return open_backend(parse_url(url), engine)


def test_append_100(benchmark, engine: str, storage: str, url: str) -> None:
    backend = opened(engine, url)
    names = (f"order-{i}" for i in itertools.count())

    def setup():
        return ([StreamWrite(next(names), "Order", NO_STREAM, records(PER_CALL))],), {}

    tag(benchmark, workload="records_append_100", storage=storage,
        contender=f"eventuali-{engine}", kind="record", events=PER_CALL)
    benchmark.pedantic(backend.append, setup=setup, rounds=50, warmup_rounds=2)
    backend.close()


def test_read_stream_100(benchmark, engine: str, storage: str, url: str) -> None:
    backend = opened(engine, url)
    backend.append([StreamWrite("order-0", "Order", NO_STREAM, records(PER_CALL))])
    tag(benchmark, workload="records_read_stream_100", storage=storage,
        contender=f"eventuali-{engine}", kind="record", events=PER_CALL)
    got = benchmark(backend.read_stream, "order-0")
    assert len(got) == PER_CALL
    backend.close()


def test_read_all_1000(benchmark, engine: str, storage: str, url: str) -> None:
    backend = opened(engine, url)
    for s in range(10):
        backend.append([StreamWrite(f"order-{s}", "Order", NO_STREAM, records(PER_CALL))])
    tag(benchmark, workload="records_read_all_1000", storage=storage,
        contender=f"eventuali-{engine}", kind="record", events=10 * PER_CALL)
    got = benchmark(backend.read_all, 1, 1000)
    assert len(got) == 10 * PER_CALL
    backend.close()
