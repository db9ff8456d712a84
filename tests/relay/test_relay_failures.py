"""The relay killed at random moments, and NATS away for a while: every event once, in order."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventuali import EventStore
from eventuali.relay import Relay
from tests.features.domain import UserRegistered, UserRenamed

from .conftest import NATS_URL, need_nats_port, stream_messages, until

ROOT = Path(__file__).resolve().parents[2]


async def _write(store, batch: int, n: int) -> None:
    """Two event types on 20 streams: two subjects, each with its own order to keep."""
    await store.save_events([
        (UserRegistered(aggregate_id=f"b{batch}-{i}", name="n", email="e") if i % 2 else
         UserRenamed(aggregate_id=f"b{batch}-{i}", name="r"))
        for i in range(n)], stream_type="User")


def _assert_exactly_once_in_order(msgs, records) -> None:
    events = [r for r in records if r.stream_type != "$eventuali"]
    got = [int(m.headers["Eventuali-Position"]) for m in msgs]
    assert got == [r.position for r in events]  # every event once, in global (so per subject) order


def _relay_cli(url: str, backend: str, stream: str, prefix: str, err: Path) -> subprocess.Popen:
    with open(err, "a") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "eventuali", "relay", url, "--backend", backend, "--nats", NATS_URL,
             "--stream", stream, "--subject", prefix + ".{aggregate_type}.{event_type}",
             "--lease-seconds", "0.5", "--batch-size", "50"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=f)


@pytest.mark.slow
async def test_a_relay_killed_at_random_moments_publishes_every_event_exactly_once(
        shared_url, js_stream, tmp_path):
    _, js, stream, prefix = js_stream
    url, backend = shared_url
    store = await EventStore.create(url, backend=backend)
    err = tmp_path / "relay.err"
    rng = random.Random()
    relay = _relay_cli(url, backend, stream, prefix, err)
    try:
        for batch in range(6):
            for _ in range(5):
                await _write(store, batch * 5 + _, 40)
            await asyncio.sleep(rng.uniform(0.05, 0.8))
            relay.send_signal(signal.SIGKILL)  # mid-publish, mid-checkpoint, wherever it is
            relay.wait()
            relay = _relay_cli(url, backend, stream, prefix, err)
        records = await store.backend.read_all(1, 100_000)
        n = sum(r.stream_type != "$eventuali" for r in records)

        async def all_there() -> bool:
            info = await js.stream_info(stream)
            assert info.state.messages <= n, "a duplicate reached the stream"
            return info.state.messages == n

        await until(all_there, 60)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(30) == 0, err.read_text()
        _assert_exactly_once_in_order(await stream_messages(js, stream), records)
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()
        await store.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the relay reports the outage as it goes
async def test_the_relay_waits_while_nats_is_away_and_loses_nothing(private_nats):
    import nats

    # The engine plays no part in waiting for NATS (the kill test covers every shared store).
    store = await EventStore.create(f"memory://outage-{time.monotonic_ns()}", backend="python")
    relay = Relay(store, nats=private_nats.url, stream="OUTAGE", subject="out.{event_type}",
                  create_stream=True, ack_timeout=1.0, lease_seconds=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await _write(store, 0, 50)
        head = await store.head()
        await until(lambda: _at(relay, head))
        private_nats.stop()
        for b in range(1, 4):  # commits go on while NATS is away
            await _write(store, b, 50)
        await asyncio.sleep(1.5)
        assert not task.done()  # waiting, not failed
        assert relay.position < await store.head()
        private_nats.start()  # same port, same JetStream folder
        head = await store.head()
        await until(lambda: _at(relay, head), 60)
        nc = await nats.connect(private_nats.url)
        try:
            msgs = await stream_messages(nc.jetstream(), "OUTAGE")
        finally:
            await nc.close()
        _assert_exactly_once_in_order(msgs, await store.backend.read_all(1, 100_000))
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await store.close()


async def _at(relay: Relay, position: int) -> bool:
    return relay.position >= position


def test_the_cli_refuses_bad_input_with_a_clear_message(tmp_path, capsys):
    from eventuali.cli import main

    need_nats_port()  # the last case reaches the server (a relay waits while NATS is away)
    url = f"sqlite://{tmp_path / 'x.db'}"
    for args, expected in (
        (["--nats", "http://x:1"], "NATS URL 'http://x:1' is not a NATS server address"),
        (["--subject", "e.{nope}"], "unknown field {nope}"),
        (["--stream", "a.b"], "JetStream stream name 'a.b' is invalid"),
        (["--stream", "NO_SUCH_STREAM_EVER", "--nats", NATS_URL], "does not exist"),
    ):
        assert main(["relay", url, *args]) == 2, args
        captured = capsys.readouterr()
        out = " ".join((captured.out + captured.err).split())
        assert expected in out, (args, out)
