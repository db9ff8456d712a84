"""Scale-out measurements: partitioned projection workers, takeover after SIGKILL, the NATS relay.

    python bench/bench_scaling.py --postgres postgresql://postgres@127.0.0.1:5432/test \
        [--events 200000] [--nats nats://127.0.0.1:4222] [--out bench/scaling_results/scaling.json]

1. backlog: a projection (8 partitions, decoding every event) over a backlog of
   ``--events`` events on PostgreSQL, with 1 and with 2 worker processes,
   interleaved (1, 2, 1, 2) so that machine load hits both alike; wall time from
   the workers' start until every partition's checkpoint passes the head.
2. takeover: 2 workers, lease 2 s; SIGKILL one; time until every partition it held
   has a new holder.
3. relay: events/s from SQLite and from PostgreSQL into JetStream (backlog of
   ``--relay-events``); and the lag from commit to JetStream delivery under a
   steady write load (``--rate`` events/s for ``--seconds``).

Measures, never asserts.  Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scaling_worker import Ticked  # noqa: E402

from eventuali import EventStore  # noqa: E402
from eventuali.relay import Relay  # noqa: E402
from eventuali.scaling.leases import Lease  # noqa: E402

PARTITIONS = 8


async def fill(store: EventStore, n: int, streams: int = 2000) -> None:
    batch = 1000
    for start in range(0, n, batch):
        await store.save_events([Ticked(aggregate_id=f"a{(start + i) % streams}", n=1, note="x" * 40)
                                 for i in range(min(batch, n - start))], stream_type="Thing")


def spawn(url: str, name: str, lease: float) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([sys.executable, str(HERE / "scaling_worker.py"), url, name, str(PARTITIONS),
                          str(lease)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    line = p.stdout.readline().split()
    return p, line[1]


async def checkpoints(store: EventStore, name: str) -> list[int]:
    return [await store.backend.get_checkpoint(f"{name}#{p}") or 0 for p in range(PARTITIONS)]


async def backlog_run(store: EventStore, url: str, workers: int) -> float:
    name = f"counts-{uuid.uuid4().hex[:6]}"
    head = await store.head()
    t0 = time.perf_counter()
    procs = [spawn(url, name, 10.0)[0] for _ in range(workers)]
    try:
        while min(await checkpoints(store, name)) < head:
            await asyncio.sleep(0.05)
        return time.perf_counter() - t0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()


async def takeover(store: EventStore, url: str, lease: float) -> float:
    name = f"take-{uuid.uuid4().hex[:6]}"
    (a, a_id), (b, _) = spawn(url, name, lease), spawn(url, name, lease)
    try:
        views = [Lease(store.backend, f"$lease:{name}#{p}", "bench", lease) for p in range(PARTITIONS)]
        while True:  # wait until the two share the partitions
            holders = [(await v.view()).holder for v in views]
            if holders.count(a_id) == PARTITIONS // 2 and None not in holders:
                break
            await asyncio.sleep(0.1)
        mine = [p for p, h in enumerate(holders) if h == a_id]
        a.send_signal(signal.SIGKILL)
        t0 = time.perf_counter()
        a.wait()
        while True:
            hs = [await views[p].view() for p in mine]
            if all(h.holder not in (a_id, None) and not h.released for h in hs):
                return time.perf_counter() - t0
            await asyncio.sleep(0.02)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait()


async def relay_throughput(url: str, nats_url: str, n: int) -> float:
    import nats

    store = await EventStore.create(url)
    await fill(store, n)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = f"BENCH{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    try:
        relay = Relay(store, nats=nats_url, stream=stream, subject=stream.lower() + ".{event_type}")
        head = await store.head()
        t0 = time.perf_counter()
        await relay.run(until=head)
        dt = time.perf_counter() - t0
        assert (await js.stream_info(stream)).state.messages == n
        return n / dt
    finally:
        await js.delete_stream(stream)
        await nc.close()
        await store.close()


async def nats_ceiling(nats_url: str, n: int) -> float:
    """nats-py alone, on this machine now: n pipelined JetStream publishes with the relay's
    six headers and a payload of the same size, acks awaited per 1000 (the relay's batch)."""
    import nats

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = f"CEIL{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    inbox, futures = nc.new_inbox(), {}
    loop = asyncio.get_running_loop()

    async def ack(msg) -> None:
        futures.pop(msg.subject.rsplit(".", 1)[1]).set_result(None)

    await nc.subscribe(inbox + ".*", cb=ack)
    payload = Ticked(aggregate_id="a1", n=1, note="x" * 40).model_dump_json().encode()
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        batch = []
        for i in range(start, min(n, start + 1000)):
            f = futures[str(i)] = loop.create_future()
            batch.append(f)
            await nc.publish(f"{stream.lower()}.Ticked", payload, reply=f"{inbox}.{i}", headers={
                "Nats-Msg-Id": str(uuid.uuid4()), "Eventuali-Position": str(i),
                "Eventuali-Stream-Id": "a1", "Eventuali-Version": "1",
                "Eventuali-Event-Type": "Ticked", "Eventuali-Relay": "bench"})
        await asyncio.wait(batch)
    dt = time.perf_counter() - t0
    await js.delete_stream(stream)
    await nc.close()
    return n / dt


async def relay_lag(url: str, nats_url: str, rate: int, seconds: float) -> dict[str, float]:
    import nats

    store = await EventStore.create(url)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream = f"LAG{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    committed: dict[int, float] = {}
    lags: list[float] = []

    async def on_msg(msg) -> None:
        t = committed.get(int(msg.headers["Eventuali-Position"]))
        if t is not None:
            lags.append(time.perf_counter() - t)

    sub = await js.subscribe(f"{stream.lower()}.>", stream=stream, ordered_consumer=True, cb=on_msg)
    relay = Relay(store, nats=nats_url, stream=stream, subject=stream.lower() + ".{event_type}")
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    per_tick, tick = max(1, rate // 20), 0.05
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        positions = await store.save_events([Ticked(aggregate_id=f"l{i}", n=1, note="y")
                                             for i in range(per_tick)], stream_type="Thing")
        now = time.perf_counter()
        committed.update((p, now) for p in positions)
        await asyncio.sleep(max(0.0, tick - (now - t0)))
    await asyncio.sleep(2)
    stop.set()
    await task
    await sub.unsubscribe()
    await js.delete_stream(stream)
    await nc.close()
    await store.close()
    lags.sort()
    return {"events": len(committed), "delivered": len(lags),
            "p50_ms": 1000 * statistics.median(lags), "p99_ms": 1000 * lags[int(len(lags) * 0.99) - 1],
            "max_ms": 1000 * lags[-1]}


def pg_schema_url(base: str) -> str:
    return f"{base.split('?')[0]}?schema=bench_{uuid.uuid4().hex[:8]}"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--nats", default="nats://127.0.0.1:4222")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--relay-events", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "scaling_results" / "scaling.json"))
    ap.add_argument("--parts", default="backlog,takeover,relay", help="which measurements")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    out: dict = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()},
                 "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    url = pg_schema_url(args.postgres)
    store = await EventStore.create(url)
    t0 = time.perf_counter()
    await fill(store, args.events if "backlog" in parts else 1000)
    out["fill_seconds"] = time.perf_counter() - t0
    runs: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.rounds if "backlog" in parts else 0):
        for w in (1, 2):
            runs[w].append(await backlog_run(store, url, w))
            print(f"backlog {args.events} events, {w} worker(s): {runs[w][-1]:.1f} s", flush=True)
    if "backlog" in parts:
        best1, best2 = min(runs[1]), min(runs[2])
        out["backlog"] = {"events": args.events, "partitions": PARTITIONS, "runs": runs,
                          "events_per_s_1": args.events / best1, "events_per_s_2": args.events / best2,
                          "speedup": best1 / best2}
        print(f"speedup 2 vs 1 workers (best of {args.rounds}): {best1 / best2:.2f}x", flush=True)
    if "takeover" in parts:
        takes = [await takeover(store, url, 2.0) for _ in range(5)]
        out["takeover"] = {"lease_seconds": 2.0, "seconds": takes}
        print(f"takeover after SIGKILL, lease 2 s: {', '.join(f'{t:.2f}' for t in takes)} s", flush=True)
    await store.close()

    with tempfile.TemporaryDirectory() as tmp:
        if "relay" not in parts:
            Path(args.out).write_text(json.dumps(out, indent=2))
            return
        for label, rurl in (("sqlite", f"sqlite://{tmp}/relay.db"), ("postgresql", pg_schema_url(args.postgres))):
            ceiling = await nats_ceiling(args.nats, args.relay_events)  # side by side: same load
            eps = await relay_throughput(rurl, args.nats, args.relay_events)
            out.setdefault("relay", {})[label] = {"events_per_s": eps, "nats_py_alone_per_s": ceiling}
            print(f"relay {label} -> JetStream: {eps:,.0f} events/s; nats-py alone, just before: "
                  f"{ceiling:,.0f} msg/s", flush=True)
        for label, rurl in (("sqlite", f"sqlite://{tmp}/lag.db"), ("postgresql", pg_schema_url(args.postgres))):
            lag = await relay_lag(rurl, args.nats, args.rate, args.seconds)
            out.setdefault("lag", {})[label] = {"rate": args.rate, **lag}
            print(f"relay lag {label} at {args.rate}/s: {lag}", flush=True)
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
