"""A projection worker process for the failover tests: ``python -m tests.scaling.worker URL BACKEND SINK``.

Runs two partitioned projections until SIGTERM (clean stop) or SIGKILL:
``applied`` (a StoredProjection: per stream, the versions applied, in order)
and ``sink`` (a plain projection that appends ``stream version`` lines to
SINK: an external system that sees every delivery, duplicates included).
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
import time

from eventuali import EventStore, EventStreamer, Projection, StoredProjection

PARTITIONS = 4
LEASE_SECONDS = 1.0
BATCH = 20
CHECKPOINT_INTERVAL = 40
SLOW = 0.001  # seconds per event: workers are mid-batch most of the time


class Applied(StoredProjection):
    name = "applied"
    raw = True
    event_types = ["Tick"]

    def handle_any(self, r):
        time.sleep(SLOW)
        self.state.put(r.stream_id, [*self.state.get(r.stream_id, []), r.version])


class Sink(Projection):
    name = "sink"
    raw = True
    event_types = ["Tick"]

    def __init__(self, path: str = "") -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if path else -1

    def handle_any(self, r):
        time.sleep(SLOW)
        os.write(self.fd, f"{r.stream_id} {r.version}\n".encode())  # one write: whole lines


def _dump_tasks() -> None:
    for t in asyncio.all_tasks():
        t.print_stack(file=sys.stderr)
    sys.stderr.flush()


async def main(url: str, backend: str, sink: str) -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a hung worker can be asked where
    store = await EventStore.create(url, backend=backend)
    streamer = EventStreamer(store)
    await streamer.configure(lease_seconds=LEASE_SECONDS, batch_size=BATCH,
                             checkpoint_interval=CHECKPOINT_INTERVAL)
    await streamer.subscribe(Applied(), partitions=PARTITIONS)
    await streamer.subscribe(Sink(sink), partitions=PARTITIONS)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGUSR2, _dump_tasks)
    await streamer.start()
    print("started", flush=True)
    await done.wait()
    print("stopping", file=sys.stderr, flush=True)
    await streamer.stop()
    print("stopped", file=sys.stderr, flush=True)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
