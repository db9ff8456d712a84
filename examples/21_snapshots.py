"""The performance guide's "Snapshot Optimization" (section 3), measured.

Run it: ``python examples/21_snapshots.py [--url URL] [--events N]``
(default: a SQLite file in a temporary folder, one account with 5,000 events).

With the guide's configuration (a snapshot every 100 events, compression,
cleanup keeping 5), an account is saved 100 events at a time, so the service
snapshots it automatically.  The program then measures what the section claims:

1. Reconstruction: loading the account from its newest snapshot against
   replaying every event (best of 5 each), and that both give the same state.
2. Storage: the bytes of the compressed snapshots against their JSON size.
3. Cleanup: how many snapshots are kept of the ones taken.

Every number is measured by this run on this machine; a check that does not
hold is printed with ❌.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from eventuali import Aggregate, Event, EventStore, SnapshotConfig, SnapshotService

SNAPSHOT_EVERY = 100
KEEP = 5


class MoneyMoved(Event):
    amount: int
    memo: str


class Account(Aggregate):
    balance: int = 0
    moves: int = 0
    recent: list[str] = []  # the last memos: state worth snapshotting (and compressing)

    def apply_money_moved(self, event: MoneyMoved) -> None:
        self.balance += event.amount
        self.moves += 1
        self.recent = [*self.recent[-199:], event.memo]


def ok(flag: bool) -> str:
    return "✅" if flag else "❌"


async def best_of(make, rounds: int = 5) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = await make()
        best = min(best, time.perf_counter() - t0)
    return best, result


async def run(store: EventStore, events: int) -> None:
    # The guide's configuration, as written.
    snapshot_config = SnapshotConfig(
        snapshot_frequency=SNAPSHOT_EVERY,  # Snapshot every 100 events
        compression_enabled=True,           # Enable compression
        cleanup_enabled=True,               # Auto-cleanup old snapshots
        max_snapshots=KEEP,                 # Keep 5 most recent
    )
    snapshot_service = SnapshotService(store, snapshot_config)
    account = Account(id="account-1")
    for i in range(events):
        account.apply(MoneyMoved(amount=i % 7 - 3, memo=f"transfer {i} to savings, reference R-{i:08d}"))
        if (i + 1) % SNAPSHOT_EVERY == 0 or i + 1 == events:
            await store.save(account)  # the service snapshots each 100th version

    print("1. Aggregate reconstruction:")
    replay_s, replayed = await best_of(lambda: store.load(Account, "account-1"))
    snap_s, from_snapshot = await best_of(lambda: snapshot_service.load_with_snapshot(Account, "account-1"))
    same = replayed == from_snapshot == account
    print(f"   ✅ Full replay of {events:,} events: {replay_s * 1000:.2f}ms")
    print(f"   ✅ From the newest snapshot: {snap_s * 1000:.2f}ms")
    print(f"   {ok(snap_s < replay_s)} Snapshot load {replay_s / snap_s:.1f}x faster than replay")
    print(f"   {ok(same)} Same state both ways (balance {account.balance}, version {account.version})")

    print("\n2. Storage:")
    ratio = snapshot_service.codec.compression_ratio
    taken = events // SNAPSHOT_EVERY
    if ratio is None:
        print("   ❌ No snapshot was taken (give --events >= 100)")
    else:
        print(f"   {ok(ratio < 1)} Compressed snapshots take {ratio * 100:.0f}% of their JSON size "
              f"({(1 - ratio) * 100:.0f}% storage reduction over {taken} snapshots)")

    print("\n3. Cleanup:")
    kept = []
    snap = await store.backend.load_snapshot("account-1")
    while snap is not None:  # walk the stored snapshots, newest first
        kept.append(snap.version)
        snap = await store.backend.load_snapshot("account-1", snap.version - 1)
    expected = min(taken, KEEP)
    print(f"   {ok(len(kept) == expected)} {len(kept)} snapshots kept of {taken} taken "
          f"(max_snapshots={KEEP}; versions {', '.join(map(str, kept)) or 'none'})")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="store URL (default: a SQLite file in a temporary folder)")
    parser.add_argument("--events", type=int, default=5_000, help="events of the account")
    args = parser.parse_args(argv)
    if args.events < SNAPSHOT_EVERY:
        parser.error(f"--events must be >= {SNAPSHOT_EVERY} (one snapshot)")
    print("=== Eventuali Snapshots ===\n")
    with tempfile.TemporaryDirectory() as tmp:
        store = await EventStore.create(args.url or f"sqlite://{Path(tmp) / 'snapshots.db'}")
        try:
            if await store.head() != 0:
                print("the store is not empty; give an empty one", file=sys.stderr)
                return 2
            await run(store, args.events)
        finally:
            await store.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
