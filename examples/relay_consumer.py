"""Another service's side of the relay: read the JetStream stream, rebuild a read model.

    eventuali relay sqlite://events.db --nats nats://127.0.0.1:4222 --stream EVENTS --create-stream
    python examples/relay_consumer.py --nats nats://127.0.0.1:4222 --stream EVENTS

This process never opens the event store: it gets every event from JetStream
(an ordered consumer from the first message), and builds, per aggregate, the
event count and last version, and per event type a count.  A real service
would keep the stream sequence it reached with its read model (or use a
durable consumer) and resume from there.  It prints the read model as JSON
once no message has come for ``--idle`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import Any


async def rebuild(nats_url: str, stream: str, idle: float = 2.0) -> dict[str, Any]:
    import nats

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        subjects = info.config.subjects or [">"]
        aggregates: dict[str, dict[str, int]] = {}
        types: Counter[str] = Counter()
        last_position = 0
        for subject in subjects:  # one ordered consumer per subject filter of the stream
            sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
            try:
                while True:
                    try:
                        msg = await sub.next_msg(timeout=idle)
                    except nats.errors.TimeoutError:
                        break
                    h = msg.headers or {}
                    envelope = json.loads(msg.data)  # the event's JSON, as the store keeps it
                    agg = aggregates.setdefault(h["Eventuali-Stream-Id"], {"events": 0, "version": 0})
                    agg["events"] += 1
                    agg["version"] = int(h["Eventuali-Version"])
                    types[envelope.get("event_type", h["Eventuali-Event-Type"])] += 1
                    last_position = max(last_position, int(h["Eventuali-Position"]))
            finally:
                await sub.unsubscribe()
        return {"aggregates": aggregates, "event_types": dict(types), "position": last_position}
    finally:
        await nc.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nats", default="nats://127.0.0.1:4222")
    p.add_argument("--stream", default="EVENTS")
    p.add_argument("--idle", type=float, default=2.0, help="stop after this many quiet seconds")
    args = p.parse_args()
    print(json.dumps(asyncio.run(rebuild(args.nats, args.stream, args.idle)), sort_keys=True))


if __name__ == "__main__":
    main()
