"""The codec alone: events to records (encode) and records to events (decode), 100 at a time.

The pydantic part of every save and load, without an engine: compare with
``test_bench_store.py`` to see what the store adds around it.
"""

from __future__ import annotations

from bench_e2e import Cart, build_carts
from conftest import tag

from eventuali import SyncEventStore
from eventuali.serialization import EventCodec

N = 100


def stamped_events() -> list:
    (cart,) = build_carts(1, N)
    events = cart.get_uncommitted_events()
    for version, event in enumerate(events, 1):
        EventCodec.stamp(event, cart.id, "Cart", version)
    return events


def test_encode_100(benchmark) -> None:
    codec, events = EventCodec(), stamped_events()
    tag(benchmark, workload="codec_encode_100", storage="-", contender="eventuali",
        kind="eventuali", events=N)
    got = benchmark(lambda: [codec.encode(e) for e in events])
    assert len(got) == N


def test_decode_100(benchmark) -> None:
    store = SyncEventStore.create("memory://", backend="python")
    (cart,) = build_carts(1, N)
    store.save(cart)
    records = store.backend.read_stream(cart.id)
    codec = EventCodec()
    tag(benchmark, workload="codec_decode_100", storage="-", contender="eventuali",
        kind="eventuali", events=N)
    got = benchmark(codec.decode_many, records)
    assert len(got) == N and isinstance(store.load(Cart, cart.id), Cart)
    store.close()
