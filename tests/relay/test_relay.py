"""The relay against the real NATS JetStream server: order, headers, exactly once, bad input."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest

from eventuali import ConfigurationError, EventStore
from eventuali.relay import Relay
from tests.features.domain import UserRegistered, UserRenamed

from .conftest import NATS_URL, stream_messages, until

ROOT = Path(__file__).resolve().parents[2]


async def _users(store, n: int, start: int = 0) -> None:
    await store.save_events([UserRegistered(aggregate_id=f"u{i}", name=f"n{i}", email="e")
                             for i in range(start, start + n)], stream_type="User")


async def _relay_until_head(relay: Relay, store) -> None:
    await asyncio.wait_for(relay.run(until=await store.head()), 60)


async def test_every_event_is_published_once_in_order_with_its_headers(store, js_stream):
    _, js, stream, prefix = js_stream
    await _users(store, 30)
    u = (await store.read_all())[0]
    await store.save_events([UserRenamed(aggregate_id="u0", aggregate_version=2, name="x")],
                            stream_type="User")
    relay = Relay(store, nats=NATS_URL, stream=stream, subject=prefix + ".{aggregate_type}.{event_type}",
                  lease_seconds=1)
    await _relay_until_head(relay, store)
    msgs = await stream_messages(js, stream)
    records = [r for r in await store.backend.read_all(1, 1000) if r.stream_type != "$eventuali"]
    assert [int(m.headers["Eventuali-Position"]) for m in msgs] == [r.position for r in records]
    assert [m.headers["Nats-Msg-Id"] for m in msgs] == [str(uuid.UUID(bytes=r.event_id))
                                                        for r in records]
    assert [m.data for m in msgs] == [r.payload for r in records]  # the JSON envelope as stored
    first = msgs[0]
    assert first.subject == f"{prefix}.User.user_registered"
    assert first.headers["Eventuali-Stream-Id"] == "u0"
    assert first.headers["Eventuali-Version"] == "1"
    assert first.headers["Eventuali-Event-Type"] == "user_registered"
    assert json.loads(first.data)["name"] == u.event.name
    assert msgs[-1].subject == f"{prefix}.User.UserRenamed"
    assert relay.position >= records[-1].position
    assert await store.backend.get_checkpoint(relay.name) == relay.position
    # Run again: nothing new is published (the checkpoint, and the resync, hold).
    await _users(store, 5, start=30)
    relay2 = Relay(store, nats=NATS_URL, stream=stream, subject=prefix + ".{aggregate_type}.{event_type}",
                   lease_seconds=1)
    await _relay_until_head(relay2, store)
    msgs = await stream_messages(js, stream)
    assert len(msgs) == 36 and len({m.headers["Nats-Msg-Id"] for m in msgs}) == 36


async def test_a_lost_checkpoint_does_not_republish_what_the_stream_has(store, js_stream):
    _, js, stream, prefix = js_stream
    await _users(store, 10)
    relay = Relay(store, nats=NATS_URL, stream=stream, subject=prefix + ".{event_type}")
    await _relay_until_head(relay, store)
    # The checkpoint falls behind (a crash between JetStream's ack and the checkpoint):
    await store.backend.set_checkpoint(relay.name, 3)
    await _users(store, 4, start=10)
    await _relay_until_head(Relay(store, nats=NATS_URL, stream=stream, subject=prefix + ".{event_type}"),
                            store)
    ids = [m.headers["Nats-Msg-Id"] for m in await stream_messages(js, stream)]
    assert len(ids) == 14 == len(set(ids))


async def test_one_relay_publishes_at_a_time(store_url, js_stream):
    _, js, stream, prefix = js_stream
    url, backend = store_url
    s1 = await EventStore.create(url, backend=backend)
    s2 = await EventStore.create(url, backend=backend)
    stop1, stop2 = asyncio.Event(), asyncio.Event()
    kw = dict(nats=NATS_URL, stream=stream, subject=prefix + ".{event_type}", lease_seconds=1.0)
    r1, r2 = Relay(s1, **kw), Relay(s2, **kw)
    t1 = asyncio.create_task(r1.run(stop1))
    try:
        await until(lambda: _is(r1, "running"))
        t2 = asyncio.create_task(r2.run(stop2))
        await _users(s1, 20)
        head = await s1.head()
        await until(lambda: _at(r1, head))
        assert r2.state == "standby" and r2.published == 0
        stop1.set()
        await t1
        await _users(s1, 20, start=20)
        head = await s1.head()
        await until(lambda: _at(r2, head))
        ids = [m.headers["Nats-Msg-Id"] for m in await stream_messages(js, stream)]
        assert len(ids) == 40 == len(set(ids))
    finally:
        stop1.set()
        stop2.set()
        await asyncio.gather(t1, *([t2] if "t2" in locals() else []), return_exceptions=True)
        await s1.close()
        await s2.close()


async def _is(relay: Relay, state: str) -> bool:
    return relay.state == state


async def _at(relay: Relay, position: int) -> bool:
    return relay.position >= position


# --- bad input (the engine plays no part: one memory store) ----------------------------------

@pytest.fixture
async def mem_store():
    s = await EventStore.create(f"memory://relay-{uuid.uuid4().hex}", backend="python")
    yield s
    await s.close()


async def test_an_unknown_stream_is_a_clear_error_and_writes_no_checkpoint(mem_store):
    await _users(mem_store, 3)
    relay = Relay(mem_store, nats=NATS_URL, stream="NO_SUCH_STREAM_EVER")
    with pytest.raises(ConfigurationError, match="'NO_SUCH_STREAM_EVER' does not exist.*--create-stream"):
        await asyncio.wait_for(relay.run(), 30)
    assert await mem_store.backend.get_checkpoint(relay.name) is None


async def test_a_subject_outside_the_stream_is_a_clear_error(mem_store, js_stream):
    _, _, stream, _ = js_stream
    await _users(mem_store, 3)
    relay = Relay(mem_store, nats=NATS_URL, stream=stream, subject="elsewhere.{event_type}")
    with pytest.raises(ConfigurationError, match="'elsewhere.user_registered'.*not among the subjects"):
        await asyncio.wait_for(relay.run(), 30)
    assert await mem_store.backend.get_checkpoint(relay.name) is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:4222", "nats://127.0.0.1:port", "nats://", "4222"])
async def test_a_bad_nats_url_is_refused_by_name(mem_store, url):
    with pytest.raises(ConfigurationError, match="NATS URL"):
        Relay(mem_store, nats=url)


@pytest.mark.parametrize("template, field", [("events.{type}", "{type}"),
                                             ("events.{event_type!r}", "{event_type}"),
                                             ("e.{aggregate_id:>4}", "{aggregate_id}")])
async def test_a_subject_template_with_unknown_fields_is_refused(mem_store, template, field):
    with pytest.raises(ConfigurationError, match="unknown field .*the fields are .*aggregate_type"):
        Relay(mem_store, subject=template)


@pytest.mark.parametrize("stream", ["", "a.b", "has space", "x>", "a/b"])
async def test_a_bad_stream_name_is_refused(mem_store, stream):
    with pytest.raises(ConfigurationError, match="stream name"):
        Relay(mem_store, stream=stream)


async def test_the_consumer_example_rebuilds_a_read_model_in_another_process(mem_store, js_stream):
    _, _, stream, prefix = js_stream
    store = mem_store  # the engine plays no part on the consumer's side
    await _users(store, 12)
    await store.save_events([UserRenamed(aggregate_id=f"u{i}", aggregate_version=2, name="x")
                             for i in range(4)], stream_type="User")
    await _relay_until_head(Relay(store, nats=NATS_URL, stream=stream,
                                  subject=prefix + ".{aggregate_type}.{event_type}"), store)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / "relay_consumer.py"), "--nats", NATS_URL,
        "--stream", stream, "--idle", "0.5", stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    model = json.loads(out)
    assert model["event_types"] == {"user_registered": 12, "UserRenamed": 4}
    assert model["aggregates"] == {f"u{i}": {"events": 2 if i < 4 else 1, "version": 2 if i < 4 else 1}
                                   for i in range(12)}
    assert model["position"] == max(r.position for r in await store.backend.read_all(1, 1000)
                                    if r.stream_type == "User")


async def test_an_encrypted_store_publishes_ciphertext_unless_told_to_decrypt(js_stream):
    from eventuali.security import KeyManager, encrypted_codec

    _, js, stream, prefix = js_stream
    opened_stream = stream + "O"  # a second stream: one stream would drop the same ids as duplicates
    await js.add_stream(name=opened_stream, subjects=[prefix + "o.>"])
    store = await EventStore.create(f"memory://enc-{uuid.uuid4().hex}", backend="python",
                                    codec=encrypted_codec(KeyManager.generate("k1")))
    try:
        await _users(store, 3)
        await _relay_until_head(Relay(store, nats=NATS_URL, stream=stream,
                                      subject=prefix + ".{event_type}"), store)
        await _relay_until_head(Relay(store, nats=NATS_URL, stream=opened_stream,
                                      subject=prefix + "o.{event_type}", decrypt=True), store)
        sealed = [m.data for m in await stream_messages(js, stream)]
        opened = [json.loads(m.data) for m in await stream_messages(js, opened_stream)]
        assert len(sealed) == len(opened) == 3
        assert all(not d.startswith(b"{") and b"n0" not in d for d in sealed)  # ciphertext
        assert [e["name"] for e in opened] == ["n0", "n1", "n2"]
    finally:
        await js.delete_stream(opened_stream)
        await store.close()
