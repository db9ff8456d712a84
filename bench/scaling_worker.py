"""One projection worker for bench_scaling.py: ``python bench/scaling_worker.py URL NAME PARTITIONS LEASE``.

Runs a partitioned projection that decodes every event (pydantic) and keeps a
per-aggregate count, until SIGTERM.  Prints ``ready <worker id>`` once started.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from eventuali import Event, EventStore, EventStreamer, Projection


class Ticked(Event):
    n: int
    note: str


class Counts(Projection):
    event_types = ["Ticked"]

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def handle_ticked(self, e: Ticked) -> None:
        self.counts[e.aggregate_id or ""] = self.counts.get(e.aggregate_id or "", 0) + e.n


async def main(url: str, name: str, partitions: str, lease: str) -> None:
    store = await EventStore.create(url)
    s = EventStreamer(store)
    await s.configure(lease_seconds=float(lease), batch_size=1000, checkpoint_interval=5000)
    await s.subscribe(Counts(), name=name, partitions=int(partitions))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await s.start()
    print("ready", s.worker_id, flush=True)
    await stop.wait()
    await s.stop()
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
