"""``eventuali relay URL --nats ... --stream ...``: the relay as a command (SIGINT/SIGTERM stop it)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from .subjects import DEFAULT_SUBJECT


def register(sub: Any) -> None:
    r = sub.add_parser("relay", help="publish every committed event to a NATS JetStream stream")
    r.set_defaults(run=run)
    r.add_argument("url", help="store URL")
    r.add_argument("--backend", default=None, help="engine name (default: EVENTUALI_BACKEND or auto)")
    r.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS server (default: %(default)s)")
    r.add_argument("--stream", default="EVENTS", help="JetStream stream (default: %(default)s)")
    r.add_argument("--subject", default=DEFAULT_SUBJECT,
                   help="subject template (default: %(default)s)")
    r.add_argument("--name", default=None, help="relay name: its checkpoint and lease "
                   "(default: relay-<stream>)")
    r.add_argument("--create-stream", action="store_true",
                   help="create the JetStream stream if it does not exist")
    r.add_argument("--batch-size", type=int, default=1000)
    r.add_argument("--lease-seconds", type=float, default=10.0)


def run(args: argparse.Namespace, console: Any) -> int:
    return asyncio.run(_run(args, console))


async def _run(args: argparse.Namespace, console: Any) -> int:
    from ..store import EventStore
    from .core import Relay

    store = await EventStore.create(args.url, backend=args.backend)
    try:
        relay = Relay(store, nats=args.nats, stream=args.stream, subject=args.subject,
                      name=args.name, batch_size=args.batch_size, lease_seconds=args.lease_seconds,
                      create_stream=args.create_stream)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        console.print(f"relaying {store!r} to {args.nats} stream {args.stream} ({args.subject})")
        await relay.run(stop)
        console.print(f"stopped at position {relay.position}; {relay.published} published")
        return 0
    finally:
        await store.close()
