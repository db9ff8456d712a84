"""Is a binary payload format faster than pydantic JSON for this project's events?

The performance guide says "Protocol Buffers for maximum speed".  This script
measures the candidate that fits eventuali's schema-less payloads without a
schema compiler - MessagePack (``msgpack``) - against what the store does
today (pydantic-core writes and parses the JSON directly, in Rust):

- encode: event -> payload bytes (JSON: ``__pydantic_serializer__.to_json``;
  msgpack: ``to_python(mode="json")`` then ``msgpack.packb``, the same values);
- decode: payload bytes -> event (JSON: ``validate_json``; msgpack:
  ``msgpack.unpackb`` then ``model_validate``);
- payload size in bytes;
- end to end: ``save_events`` of N events then ``read_all`` of them, through a
  SQLite store, with the store's codec and with a msgpack codec (a subclass
  for this measurement only).

Each measurement runs both formats side by side, interleaved, best of
``--rounds``, so a loaded machine affects both alike; the ratios are what to
read.  ``pip install msgpack`` first (not a dependency of eventuali).

    python bench/bench_payload_format.py [--events 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import msgpack

from eventuali import Event, EventStore
from eventuali.records import NewRecord, Record
from eventuali.serialization import EventCodec, to_micros


class TransactionRecorded(Event):
    """The guide's batch-processing event."""

    __event_type__ = "bench.TransactionRecorded"
    from_account: str
    to_account: str
    amount: float
    transaction_type: str
    description: str


class OrderPlaced(Event):
    """The guide's "lean" event: a list, a Decimal, a datetime."""

    __event_type__ = "bench.OrderPlaced"
    customer_id: str
    product_ids: list[str]
    total_amount: Decimal
    order_date: datetime


class MsgpackCodec(EventCodec):
    """EventCodec writing MessagePack payloads (no transforms, no upcasting: measurement only)."""

    def encode(self, event: Event) -> NewRecord:
        d = event.__dict__
        payload = msgpack.packb(event.__pydantic_serializer__.to_python(event, mode="json"))
        return NewRecord(d["event_id"].bytes, d["event_type"], d["event_version"],
                         to_micros(d["timestamp"]), b"", payload)

    def decode_many(self, records: Iterable[Record]) -> list[Event]:
        out = []
        resolve = self.events.resolve
        for r in records:
            ev = resolve(r.event_type).model_validate(msgpack.unpackb(r.payload))  # type: ignore[union-attr]
            if ev.__dict__["aggregate_version"] is None:
                ev.__dict__["aggregate_version"] = r.version
            out.append(ev)
        return out

    def decode(self, record: Record) -> Event:
        return self.decode_many([record])[0]


def make_events(n: int) -> list[Event]:
    when = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    out: list[Event] = []
    for i in range(n):
        if i % 2:
            out.append(TransactionRecorded(from_account=f"acc-{i}", to_account="central-acc",
                                           amount=random.uniform(10, 1000), transaction_type="transfer",
                                           description=f"Batch transaction {i}"))
        else:
            out.append(OrderPlaced(customer_id=f"c-{i}", product_ids=[f"p-{i}", f"p-{i + 1}"],
                                   total_amount=Decimal(f"{i}.95"), order_date=when))
        EventCodec.stamp(out[-1], f"agg-{i % 50}", "Bench", i // 50 + 1)
    return out


def best(fn: Callable[[], object], rounds: int) -> float:
    t = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


async def end_to_end(codec: EventCodec, events: list[Event], folder: Path, tag: str) -> float:
    """Seconds to save the events (one batch) and read them all back, in a fresh SQLite store."""
    for e in events:
        e.__dict__["aggregate_version"] = None  # appended at each stream's end
    store = await EventStore.create(f"sqlite://{folder / f'{tag}-{time.monotonic_ns()}.db'}", codec=codec)
    try:
        t0 = time.perf_counter()
        await store.save_events(events)
        got = await store.read_all(limit=len(events))
        elapsed = time.perf_counter() - t0
        assert len(got) == len(events)
        return elapsed
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = args.events, args.rounds
    events = make_events(n)
    json_codec, mp_codec = EventCodec(), MsgpackCodec()

    json_payloads = [e.__pydantic_serializer__.to_json(e) for e in events]
    mp_payloads = [mp_codec.encode(e).payload for e in events]
    # Same values both ways: each format loads back the event it was given.
    for e, j, m in zip(events[:50], json_payloads, mp_payloads, strict=False):
        assert type(e).model_validate_json(j) == type(e).model_validate(msgpack.unpackb(m)) == e

    results: dict[str, tuple[float, float]] = {}
    enc_json = enc_mp = dec_json = dec_mp = float("inf")
    pairs = list(zip(events, json_payloads, mp_payloads, strict=True))
    for _ in range(rounds):  # interleaved
        enc_json = min(enc_json, best(lambda: [e.__pydantic_serializer__.to_json(e) for e in events], 1))
        enc_mp = min(enc_mp, best(lambda: [msgpack.packb(e.__pydantic_serializer__.to_python(e, mode="json"))
                                           for e in events], 1))
        dec_json = min(dec_json, best(lambda: [type(e).model_validate_json(j) for e, j, _ in pairs], 1))
        dec_mp = min(dec_mp, best(lambda: [type(e).model_validate(msgpack.unpackb(m)) for e, _, m in pairs], 1))
    results["encode"] = (enc_json, enc_mp)
    results["decode"] = (dec_json, dec_mp)

    e2e_json = e2e_mp = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            e2e_json = min(e2e_json, await end_to_end(json_codec, events, Path(tmp), "json"))
            e2e_mp = min(e2e_mp, await end_to_end(mp_codec, events, Path(tmp), "msgpack"))
    results["save + read_all (SQLite)"] = (e2e_json, e2e_mp)

    size_json = sum(map(len, json_payloads)) / n
    size_mp = sum(map(len, mp_payloads)) / n
    print(f"{n:,} events (half TransactionRecorded, half OrderPlaced), best of {rounds}, interleaved\n")
    print("| step | pydantic JSON µs/event | msgpack µs/event | msgpack / JSON |")
    print("|---|---:|---:|---:|")
    for step, (j, m) in results.items():
        print(f"| {step} | {j / n * 1e6:.2f} | {m / n * 1e6:.2f} | {m / j:.2f}x |")
    print(f"| payload size | {size_json:.0f} B | {size_mp:.0f} B | {size_mp / size_json:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
