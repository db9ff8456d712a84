"""What payload encryption costs per event: single vs batch, beside the pydantic floor.

Measured, per event, on the same small event (~200 bytes of JSON):

- ``floor: model_dump_json``          pydantic alone (what any save pays)
- ``codec.encode plain``              the codec without transforms
- ``codec.encode encrypted``          the codec with ``EventEncryption`` (one AES-GCM call each)
- ``encrypt single``                  ``EventEncryption.encode`` per payload
- ``encrypt_many``                    ``EventEncryption.encrypt_many`` on the whole batch
                                      (the c engine's OpenSSL batch when installed)
- ``encrypt_many python``             the same with ``native=False`` (cryptography, one call each)
- ``decrypt single`` / ``decrypt_many``
- ``codec.decode plain`` / ``codec.decode encrypted``
- ``save+load memory plain/encrypted``  end to end through ``SyncEventStore`` on ``memory://``

Method: a warm-up pass, then ``--repeats`` timed passes of each case, interleaved
(pass r of every case before pass r+1 of any) so load bursts on a shared machine
hit all alike; ``gc.collect()`` before each pass; best and median per event are
printed, plus each case's ratio to the floor.  Nothing is asserted.

Usage: ``python bench/bench_security.py [--quick] [--events N] [--repeats R]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import uuid
from collections.abc import Callable

from eventuali import Aggregate, Event, EventCodec, SyncEventStore
from eventuali.security import EventEncryption, KeyManager
from eventuali.serialization import RecordIdentity


class TransactionRecorded(Event):
    from_account: str
    to_account: str
    amount: float
    transaction_type: str
    description: str


class Account(Aggregate):
    total: float = 0.0

    def apply_transaction_recorded(self, event: TransactionRecorded) -> None:
        self.total += event.amount


def _events(n: int) -> list[TransactionRecorded]:
    out = []
    for i in range(n):
        e = TransactionRecorded(from_account=f"acc-{i}", to_account="central-acc", amount=i * 1.5,
                                transaction_type="transfer", description=f"Batch transaction {i}")
        EventCodec.stamp(e, f"acc-{i % 100}", "Account", i // 100 + 1)
        out.append(e)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    ap.add_argument("--events", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    n = args.events or (2_000 if args.quick else 20_000)
    repeats = args.repeats or (3 if args.quick else 7)

    keys = KeyManager.generate("bench")
    enc = EventEncryption(keys)
    enc_py = EventEncryption(keys, native=False)
    plain = EventCodec()
    secret = EventCodec(transforms=[enc])
    events = _events(n)
    payloads = [e.model_dump_json().encode() for e in events]
    idents = [RecordIdentity(e.event_id.bytes, e.aggregate_id, e.aggregate_version) for e in events]
    boxed = enc.encrypt_many(payloads, idents)
    rec_plain = list(_records(plain, events))
    rec_secret = list(_records(secret, events))

    def save_load(codec: EventCodec) -> Callable[[], None]:
        def run() -> None:
            with SyncEventStore.create(f"memory://bench-{uuid.uuid4().hex}", codec=codec) as s:
                s.save_events(_events(n))
                s.read_all(limit=n)
        return run

    cases: dict[str, Callable[[], object]] = {
        "floor: model_dump_json": lambda: [e.model_dump_json() for e in events],
        "codec.encode plain": lambda: [plain.encode(e) for e in events],
        "codec.encode encrypted": lambda: [secret.encode(e) for e in events],
        "encrypt single": lambda: [enc.encode(p, i) for p, i in zip(payloads, idents, strict=True)],
        "encrypt_many": lambda: enc.encrypt_many(payloads, idents),
        "encrypt_many python": lambda: enc_py.encrypt_many(payloads, idents),
        "decrypt single": lambda: [enc.decode(b, i) for b, i in zip(boxed, idents, strict=True)],
        "decrypt_many": lambda: enc.decrypt_many(boxed, idents),
        "codec.decode plain": lambda: [plain.decode(r) for r in rec_plain],
        "codec.decode encrypted": lambda: [secret.decode(r) for r in rec_secret],
        "save+load memory plain": save_load(plain),
        "save+load memory encrypted": save_load(secret),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in cases.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / n)

    floor = min(times["floor: model_dump_json"])
    print(f"{n} events x {repeats} passes; per event (best / median), ratio to the floor (best)")
    for name, ts in times.items():
        best, med = min(ts) * 1e6, statistics.median(ts) * 1e6
        print(f"  {name:<28} {best:8.2f} us  {med:8.2f} us   x{min(ts) / floor:5.2f}"
              f"   {1 / min(ts):>12,.0f} ops/s")
    mean_size = sum(map(len, payloads)) / len(payloads)
    print(f"payload: {mean_size:.0f} bytes on average; native AES-GCM batch: "
          f"{'yes' if enc._seal is not None else 'no (c engine not installed)'}")


def _records(codec: EventCodec, events: list[TransactionRecorded]):
    from eventuali.records import Record

    for pos, e in enumerate(events, 1):
        nr = codec.encode(e)
        yield Record(pos, nr.event_id, e.aggregate_id, "Account", e.aggregate_version,
                     nr.event_type, nr.schema_version, nr.timestamp, "", nr.metadata, nr.payload)


if __name__ == "__main__":
    main()
