"""The performance guide's "Read Model Optimization" (section 4), measured.

Run it: ``python examples/08_projections.py [--url URL] [--users N]``
(default: a SQLite file in a temporary folder, 20,000 users).

The guide's ``HighPerformanceUserProjection`` is subscribed exactly as the
guide writes it - ``await streamer.subscribe(projection)``, no ``start()`` -
and this program measures what the section claims:

1. Projection processing: events per second while the projection catches up
   on the users stored before it was subscribed.
2. Queries: the average time of ``get_user`` (an in-memory lookup).
3. Real-time updates: a user saved afterwards reaches the projection (live),
   and how long that took.

Every number is measured by this run on this machine; a check that does not
hold is printed with ❌.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from eventuali import Aggregate, Event, EventStore, EventStreamer, Projection


class UserRegistered(Event):
    name: str
    email: str


class User(Aggregate):
    name: str = ""
    email: str = ""

    def apply_user_registered(self, event: UserRegistered) -> None:
        self.name, self.email = event.name, event.email


class HighPerformanceUserProjection(Projection):
    """Optimized projection for user queries (the guide's class, as written)."""

    def __init__(self):
        self.users = {}  # In-memory cache
        self.metrics = {"events_processed": 0}

    async def handle_user_registered(self, event):
        # Direct state update (no database roundtrip)
        self.users[event.aggregate_id] = {
            "name": event.name,
            "email": event.email,
            "created_at": event.timestamp,
        }
        self.metrics["events_processed"] += 1

    async def get_user(self, user_id: str):
        # Sub-millisecond lookup
        return self.users.get(user_id)


def ok(flag: bool) -> str:
    return "✅" if flag else "❌"


def registration(i: int) -> UserRegistered:
    return UserRegistered(aggregate_id=f"user-{i}", name=f"User {i}", email=f"user{i}@example.com")


async def run(store: EventStore, users: int) -> None:
    for start in range(0, users, 5000):  # stored before the projection exists
        await store.save_events([registration(i) for i in range(start, min(start + 5000, users))])

    print("1. Projection processing (catch-up):")
    streamer = EventStreamer(store)
    projection = HighPerformanceUserProjection()
    t0 = time.perf_counter()
    await streamer.subscribe(projection)  # as the guide writes it: no start()
    await streamer.wait_until(timeout=600)
    elapsed = time.perf_counter() - t0
    done = projection.metrics["events_processed"]
    print(f"   {ok(done == users)} Processed {done:,} of {users:,} stored events in {elapsed:.3f} seconds")
    print(f"   ✅ Throughput: {done / elapsed:,.0f} events/second")

    print("\n2. Query performance:")
    ids = [f"user-{random.randrange(users)}" for _ in range(10_000)]
    t0 = time.perf_counter()
    found = [await projection.get_user(i) for i in ids]
    per_query = (time.perf_counter() - t0) / len(ids)
    print(f"   {ok(all(found))} {len(ids):,} get_user() lookups, every user found")
    print(f"   {ok(per_query < 0.001)} Average query: {per_query * 1e6:.2f}µs (sub-millisecond: "
          f"{'yes' if per_query < 0.001 else 'no'})")

    print("\n3. Real-time updates:")
    user = User(id=f"user-{users}")
    user.apply(registration(users))
    t0 = time.perf_counter()
    await store.save(user)
    await streamer.wait_until(timeout=30)
    live = time.perf_counter() - t0
    got = await projection.get_user(f"user-{users}")
    print(f"   {ok(got is not None and got['name'] == f'User {users}')} A user saved after subscribe() "
          f"reached the projection in {live * 1000:.1f}ms")
    print(f"   {ok(projection.metrics['events_processed'] == users + 1)} Events processed: "
          f"{projection.metrics['events_processed']:,}")
    await streamer.stop()


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="store URL (default: a SQLite file in a temporary folder)")
    parser.add_argument("--users", type=int, default=20_000, help="users stored before subscribing")
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error("--users must be >= 1")
    print("=== Eventuali Projections ===\n")
    with tempfile.TemporaryDirectory() as tmp:
        store = await EventStore.create(args.url or f"sqlite://{Path(tmp) / 'projections.db'}")
        try:
            if await store.head() != 0:
                print("the store is not empty; give an empty one", file=sys.stderr)
                return 2
            await run(store, args.users)
        finally:
            await store.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
