"""Projections and the EventStreamer through the public API, on every store."""

from __future__ import annotations

import asyncio
import json
import warnings
import zlib

import pytest

from eventuali import (
    ConfigurationError,
    EventStore,
    EventStreamer,
    Projection,
    StoredProjection,
)

from .domain import Account, Deposited, User, UserRegistered, UserRenamed, Withdrawn


class HighPerformanceUserProjection(Projection):
    """The guide's snippet, as written."""

    def __init__(self):
        self.users = {}  # In-memory cache
        self.metrics = {"events_processed": 0}

    async def handle_user_registered(self, event):
        self.users[event.aggregate_id] = {
            "name": event.name,
            "email": event.email,
            "created_at": event.timestamp,
        }
        self.metrics["events_processed"] += 1

    async def get_user(self, user_id: str):
        return self.users.get(user_id)


class Counter(Projection):
    """A sync-handler projection counting every event it sees, in order."""

    def __init__(self):
        self.seen = []

    def handle_any(self, event):
        self.seen.append((event.aggregate_id, event.aggregate_version))


class Balances(StoredProjection):
    def handle_deposited(self, e):
        self.state.put(e.aggregate_id, self.state.get(e.aggregate_id, 0) + e.amount)

    def handle_withdrawn(self, e):
        self.state.put(e.aggregate_id, self.state.get(e.aggregate_id, 0) - e.amount)


async def _users(store, n, start=0):
    for i in range(start, start + n):
        u = User(id=f"u{i}")
        u.apply(UserRegistered(name=f"n{i}", email=f"{i}@x"))
        await store.save(u)


async def test_guide_snippet_catch_up_then_live(store):
    await _users(store, 5)
    streamer = EventStreamer(store)
    projection = HighPerformanceUserProjection()
    await streamer.subscribe(projection)
    await streamer.start()
    await streamer.wait_until()
    assert len(projection.users) == 5
    await _users(store, 3, start=5)  # live: no polling, woken by the commit
    await streamer.wait_until(timeout=5)
    assert (await projection.get_user("u7"))["name"] == "n7"
    assert projection.metrics["events_processed"] == 8
    await streamer.stop()


async def test_guide_snippet_as_written_delivers_without_start(store):
    """The guide's section 4 subscribes and never calls start(): catch-up and live both arrive."""
    await _users(store, 4)
    streamer = EventStreamer(store)
    projection = HighPerformanceUserProjection()
    sub = await streamer.subscribe(projection)
    await _users(store, 2, start=4)  # saved after subscribe: followed live
    await streamer.wait_until(timeout=10)
    assert sub.state == "running"
    assert sorted(projection.users) == [f"u{i}" for i in range(6)]
    await _users(store, 1, start=6)
    await streamer.wait_until(timeout=10)
    assert (await projection.get_user("u6"))["email"] == "6@x"
    assert projection.metrics["events_processed"] == 7
    await streamer.stop()
    assert sub.state == "stopped"


async def test_catch_up_right_after_subscribe_keeps_control_with_the_caller(store):
    await _users(store, 3)
    streamer = EventStreamer(store)
    counter = Counter()
    sub = await streamer.subscribe(counter)
    await streamer.catch_up()
    assert len(counter.seen) == 3 and sub.state != "running"
    await _users(store, 2, start=3)
    await asyncio.sleep(0.3)  # room for a start that must not happen
    assert len(counter.seen) == 3 and sub.state != "running"
    await streamer.catch_up()
    assert len(counter.seen) == 5


async def test_catch_up_after_an_automatic_start_waits_for_the_running_subscription(store):
    streamer = EventStreamer(store)
    counter = Counter()
    sub = await streamer.subscribe(counter)
    await streamer.wait_until(timeout=10)  # lets the pending automatic start run
    assert sub.state == "running"
    await _users(store, 5)
    await streamer.catch_up()
    assert sub.state == "running"
    assert [aid for aid, _ in counter.seen] == [f"u{i}" for i in range(5)]
    await streamer.stop()


async def test_guide_scalability_snippet_several_projections(store):
    streamer = EventStreamer(store)
    await streamer.configure(buffer_size=100, batch_size=10, max_consumers=2, checkpoint_interval=50)
    projections = [HighPerformanceUserProjection(), Counter(), Balances()]
    for projection in projections:
        await streamer.subscribe(projection)
    await _users(store, 30)
    acc = Account(id="a1")
    acc.apply(Deposited(amount=10))
    acc.apply(Withdrawn(amount=3))
    await store.save(acc)
    await streamer.start()
    await streamer.wait_until(timeout=5)
    await streamer.stop()
    assert len(projections[0].users) == 30
    assert len(projections[1].seen) == 32
    assert projections[2].state["a1"] == 7


async def _restart(store, url, backend, codec=None):
    """A new store on the same URL; the old one is closed first where the data outlives
    it (an in-memory store lives only while some handle is open)."""
    persistent = "persistent" in store.backend.capabilities
    if persistent:
        await store.close()
    new = await EventStore.create(url, backend=backend, codec=codec)
    if not persistent:
        await store.close()
    return new


async def test_checkpoint_persists_and_restart_resumes(store_url):
    url, backend = store_url
    store = await EventStore.create(url, backend=backend)
    await _users(store, 10)
    p1 = Counter()
    s1 = EventStreamer(store)
    await s1.subscribe(p1)
    await s1.catch_up()
    assert len(p1.seen) == 10
    store = await _restart(store, url, backend)
    await _users(store, 4, start=10)
    p2 = Counter()
    s2 = EventStreamer(store)
    await s2.subscribe(p2)
    await s2.catch_up()
    assert [a for a, _ in p2.seen] == [f"u{i}" for i in range(10, 14)]  # only the new ones
    assert len(await store.read_all()) == 14
    await store.close()


async def test_filters_by_event_and_aggregate_type(store):
    await _users(store, 3)
    u = await store.load(User, "u1")
    u.apply(UserRenamed(name="z"))
    await store.save(u)
    acc = Account(id="a")
    acc.apply(Deposited(amount=1))
    await store.save(acc)
    by_event, by_agg = Counter(), Counter()
    s = EventStreamer(store)
    await s.subscribe(by_event, name="by-event", event_types=[UserRenamed])
    await s.subscribe(by_agg, name="by-agg", aggregate_types=[Account])
    await s.catch_up()
    assert by_event.seen == [("u1", 2)]
    assert by_agg.seen == [("a", 1)]


async def test_stored_projection_is_exactly_once_across_restarts(store_url):
    url, backend = store_url
    store = await EventStore.create(url, backend=backend)
    acc = Account(id="a1")
    for i in range(1, 21):
        acc.apply(Deposited(amount=i))
        await store.save(acc)
    s = EventStreamer(store)
    await s.configure(batch_size=7)
    p = Balances()
    await s.subscribe(p)
    await s.catch_up()
    assert p.state["a1"] == 210
    # the read model is in the store: a fresh instance sees it without replaying
    p2 = Balances()
    s2 = EventStreamer(store)
    await s2.subscribe(p2)
    await s2.catch_up()
    assert p2.state["a1"] == 210
    acc.apply(Withdrawn(amount=10))
    await store.save(acc)
    await s2.catch_up()
    assert p2.state["a1"] == 200
    store = await _restart(store, url, backend)
    s3, p3 = EventStreamer(store), Balances()
    await s3.subscribe(p3)
    await s3.catch_up()
    assert p3.state.to_dict() == {"a1": 200}
    await store.close()


async def test_stored_projection_crash_between_batches_never_double_counts(store):
    acc = Account(id="a1")
    for _ in range(30):
        acc.apply(Deposited(amount=1))
    await store.save(acc)

    class Crash(BaseException):
        """Stands for the process dying: not an Exception, so no policy handles it."""

    class Crashy(Balances):
        name = "Balances"
        left = 12

        def handle_deposited(self, e):
            Crashy.left -= 1
            if Crashy.left < 0:
                raise Crash  # mid-batch
            super().handle_deposited(e)

    s = EventStreamer(store)
    await s.configure(batch_size=5)
    await s.subscribe(Crashy())
    with pytest.raises(Crash):
        await s.catch_up()
    s2, p = EventStreamer(store), Balances()
    await s2.subscribe(p)
    await s2.catch_up()
    assert p.state["a1"] == 30  # batches 1-2 committed with their checkpoint, the rest replayed


async def test_failing_handler_is_retried_then_parked(store):
    await _users(store, 5)

    class Flaky(Projection):
        max_retries = 2

        def __init__(self):
            self.ok, self.calls = [], 0

        def handle_user_registered(self, e):
            self.calls += 1
            if e.aggregate_id == "u2":
                raise ValueError("bad user")
            self.ok.append(e.aggregate_id)

    s = EventStreamer(store)
    await s.configure(retry_backoff=0.001)
    p = Flaky()
    sub = await s.subscribe(p)
    await s.catch_up()
    assert p.ok == ["u0", "u1", "u3", "u4"]
    assert p.calls == 4 + 3  # u2: first try + 2 retries
    parked = await s.parked_events(p)
    assert [(x.stream_id, x.attempts) for x in parked] == [("u2", 3)]
    assert "bad user" in parked[0].error and sub.parked == 1
    # parked events are persistent and the checkpoint moved past them
    s2, p2 = EventStreamer(store), Flaky()
    await s2.subscribe(p2)
    await s2.catch_up()
    assert p2.calls == 0 and len(await s2.parked_events("Flaky")) == 1


async def test_stop_policy_stops_before_the_failing_event(store):
    await _users(store, 5)

    class Strict(Projection):
        on_error = "stop"
        max_retries = 0

        def __init__(self):
            self.ok = []

        def handle_user_registered(self, e):
            if e.aggregate_id == "u3":
                raise RuntimeError("boom")
            self.ok.append(e.aggregate_id)

    s = EventStreamer(store)
    p = Strict()
    sub = await s.subscribe(p)
    await s.start()
    await s.wait_until(timeout=5)
    assert sub.state == "failed" and "boom" in str(sub.error)
    assert p.ok == ["u0", "u1", "u2"]
    await s.stop()
    u3_position = (await store.read_all())[3].position
    assert await store.backend.get_checkpoint("Strict") == u3_position - 1
    assert await s.parked_events(p) == []


async def test_stored_projection_failure_rolls_back_handler_changes(store):
    acc = Account(id="a1")
    for amount in (1, 2, 3):
        acc.apply(Deposited(amount=amount))
    await store.save(acc)

    class Partial(StoredProjection):
        max_retries = 0

        def handle_deposited(self, e):
            self.state.put("sum", self.state.get("sum", 0) + e.amount)
            if e.amount == 2:
                raise ValueError("half-done")

    s, p = EventStreamer(store), Partial()
    await s.subscribe(p)
    await s.catch_up()
    assert p.state["sum"] == 4  # the failing event's change was rolled back, then parked
    assert len(await s.parked_events(p)) == 1


async def test_rebuild_from_zero_is_one_call(store):
    acc = Account(id="a1")
    acc.apply(Deposited(amount=5))
    await store.save(acc)
    s = EventStreamer(store)
    stored, plain = Balances(), Counter()
    await s.subscribe(stored)
    await s.subscribe(plain)
    await s.catch_up()
    stored.state.put("junk", 1)  # drift that only a rebuild repairs
    await s.rebuild(stored)
    await s.rebuild(plain)
    assert stored.state.to_dict() == {"a1": 5}
    assert plain.seen == [("a1", 1)]
    s2, again = EventStreamer(store), Balances()
    await s2.subscribe(again)
    await s2.catch_up()
    assert again.state.to_dict() == {"a1": 5}


async def test_backpressure_bounds_the_buffer(store):
    acc = Account(id="a1")
    for _ in range(200):
        acc.apply(Deposited(amount=1))
    await store.save(acc)
    gate = asyncio.Event()
    in_flight = []

    class Slow(Projection):
        async def handle_deposited(self, e):
            await gate.wait()

    s = EventStreamer(store)
    await s.configure(buffer_size=20, batch_size=10)
    sub = await s.subscribe(Slow())
    await s.start()
    for _ in range(500):  # until the reader has filled the buffer (it then has to wait)
        if sub.queued_batches >= 2:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # a reader that ignored the bound would now be further ahead
    in_flight.append(sub.queued_batches)
    gate.set()
    await s.wait_until(timeout=5)
    await s.stop()
    assert in_flight[0] == 2  # full, and no more: buffer_size // batch_size batches waiting
    assert sub.processed == 200


async def test_sync_store_works_with_the_streamer(sync_store):
    u = User(id="s1")
    u.apply(UserRegistered(name="a", email="b"))
    sync_store.save(u)
    s, p = EventStreamer(sync_store), HighPerformanceUserProjection()
    await s.subscribe(p)
    await s.catch_up()
    assert p.users["s1"]["name"] == "a"


async def test_bad_use_is_refused(store):
    s = EventStreamer(store)
    await s.subscribe(Counter())
    with pytest.raises(ConfigurationError, match="already subscribed"):
        await s.subscribe(Counter())
    with pytest.raises(ConfigurationError, match="Projection"):
        await s.subscribe(object())
    with pytest.raises(ConfigurationError, match="batch_size"):
        await s.configure(batch_size=0)
    with pytest.raises(ConfigurationError, match="failure policy"):
        await s.configure(on_error="ignore")
    with pytest.raises(ConfigurationError, match="EventStore"):
        EventStreamer("sqlite://x.db")


async def test_stop_mid_batch_keeps_a_stored_projection_exact(store):
    acc = Account(id="a1")
    for _ in range(40):
        acc.apply(Deposited(amount=1))
    await store.save(acc)

    entered = asyncio.Event()

    class SlowBalances(Balances):
        name = "Balances"

        async def handle_deposited(self, e):
            entered.set()
            await asyncio.sleep(0.005)
            super().handle_deposited(e)

    s = EventStreamer(store)
    await s.configure(batch_size=10)
    sub = await s.subscribe(SlowBalances())
    await s.start()
    await asyncio.wait_for(entered.wait(), 10)
    await asyncio.sleep(0.012)  # inside the first batch
    await s.stop()
    assert sub.position % 10 == 0 and sub.position > 0  # stopped on a batch boundary
    s2, p = EventStreamer(store), Balances()
    await s2.subscribe(p)
    await s2.catch_up()
    assert p.state["a1"] == 40


async def test_subscribe_while_running_and_before_checkpoint_hook(store):
    await _users(store, 3)
    flushed = []

    class External(Projection):
        def __init__(self):
            self.buffer = []

        def handle_user_registered(self, e):
            self.buffer.append(e.aggregate_id)

        async def before_checkpoint(self, position):
            flushed.append((position, list(self.buffer)))

    s = EventStreamer(store)
    await s.start()
    p = External()
    await s.subscribe(p)  # joins the running streamer at once
    await s.wait_until(timeout=5)
    await s.stop()
    assert p.buffer == ["u0", "u1", "u2"]
    # the sink was flushed with every handled event before the checkpoint that covers them
    position, seen = flushed[-1]
    assert position == await store.backend.get_checkpoint("External") and seen == p.buffer
    await s.unsubscribe(p)
    assert s.subscriptions == {}


async def test_stored_read_model_compacts_and_reloads(store):
    class Compacting(Balances):
        name = "Balances"
        compact_every = 3

    acc = Account(id="a1")
    for i in range(1, 51):
        acc.apply(Deposited(amount=i))
        await store.save(acc)
    s = EventStreamer(store)
    await s.configure(batch_size=4)
    p = Compacting()
    await s.subscribe(p)
    await s.catch_up()
    assert p.state["a1"] == 1275
    log = "$projection:Balances"
    snap = await store.backend.load_snapshot(log)
    assert snap is not None and snap.version >= 12
    if "truncate" in store.backend.capabilities:
        assert len(await store.backend.read_stream(log)) < 3  # older log records went
    s2, p2 = EventStreamer(store), Balances()
    await s2.subscribe(p2)
    await s2.catch_up()
    assert p2.state.to_dict() == {"a1": 1275}


async def test_unreadable_read_model_snapshot_triggers_a_rebuild(store):
    class Compacting(Balances):
        name = "Balances"
        compact_every = 2

    acc = Account(id="a1")
    for i in range(1, 21):
        acc.apply(Deposited(amount=i))
        await store.save(acc)
    s = EventStreamer(store)
    await s.configure(batch_size=3)
    await s.subscribe(Compacting())
    await s.catch_up()
    log = "$projection:Balances"
    snap = await store.backend.load_snapshot(log)
    await store.backend.save_snapshot(snap._replace(payload=b"not zlib"))
    s2, p2 = EventStreamer(store), Balances()
    await s2.subscribe(p2)
    with pytest.warns(RuntimeWarning):
        await s2.catch_up()
    assert p2.state.to_dict() == {"a1": 210}


class Directory(StoredProjection):
    """A read model holding what the events carry: what encryption must keep out of the store."""

    compact_every = 2

    def handle_user_registered(self, e):
        self.state.put(e.aggregate_id, {"name": e.name, "email": e.email})


DIRECTORY_LOG = "$projection:Directory"


async def _secret_users(store, n, start=0):
    for i in range(start, start + n):
        u = User(id=f"u{i}")
        u.apply(UserRegistered(name=f"Secret Name {i}", email=f"secret.person.{i}@example.org"))
        await store.save(u)


async def _directory(store):
    """Run a Directory over the store, one event per batch (so it compacts every 2 events)."""
    s, p = EventStreamer(store), Directory()
    await s.configure(batch_size=1)
    sub = await s.subscribe(p)
    await s.catch_up()
    return p, sub


def _readable(payload: bytes) -> bytes:
    """What anyone reading the store sees of a read-model snapshot: its bytes, and the
    JSON inside when they are the plain (zlib) format."""
    try:
        return payload + zlib.decompress(payload)
    except zlib.error:
        return payload


async def test_read_model_snapshot_of_a_plain_store_is_unchanged_and_loads_once_encrypted(store_url):
    from eventuali.security import KeyManager, encrypted_codec

    url, backend = store_url
    store = await EventStore.create(url, backend=backend)
    await _secret_users(store, 4)
    p, _ = await _directory(store)
    snap = await store.backend.load_snapshot(DIRECTORY_LOG)
    # Without payload transforms the snapshot is what it always was: zlib'd JSON, no marker.
    assert snap is not None and snap.version == 4
    assert json.loads(zlib.decompress(snap.payload)) == p.state.to_dict()
    # Encryption turned on later (strict=False: the store holds clear records from
    # before): the projection resumes from that old snapshot...
    store = await _restart(store, url, backend,
                           codec=encrypted_codec(KeyManager.generate("k1"), strict=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p2, sub = await _directory(store)
    assert p2.state.to_dict() == p.state.to_dict() and sub.processed == 0
    # ...and the snapshots it writes from then on are encrypted.
    await _secret_users(store, 2, start=4)
    p3, sub = await _directory(store)
    assert sub.processed == 2 and len(p3.state) == 6
    snap = await store.backend.load_snapshot(DIRECTORY_LOG)
    assert snap is not None and snap.version == 6 and snap.payload[:3] == b"\xffSP"
    await store.close()


async def test_read_model_snapshot_of_an_encrypted_store_is_encrypted(store_url):
    """A store that encrypts its events must not write the read model in clear text."""
    from eventuali.security import KeyManager, encrypted_codec

    url, backend = store_url
    keys = KeyManager.generate("k1")
    store = await EventStore.create(url, backend=backend, codec=encrypted_codec(keys))
    await _secret_users(store, 4)
    p, _ = await _directory(store)
    assert p.state["u3"] == {"name": "Secret Name 3", "email": "secret.person.3@example.org"}
    snap = await store.backend.load_snapshot(DIRECTORY_LOG)  # as it lies in the store
    assert snap is not None and snap.version == 4
    seen = _readable(snap.payload)
    assert b"Secret Name" not in seen and b"secret.person" not in seen
    # Restarted on the same store with the key: resumes from the snapshot, nothing replayed.
    store = await _restart(store, url, backend, codec=encrypted_codec(keys))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a snapshot that did not load would warn
        p2, sub = await _directory(store)
    assert p2.state.to_dict() == p.state.to_dict() and sub.processed == 0
    await _secret_users(store, 1, start=4)
    p3, sub = await _directory(store)
    assert sub.processed == 1 and p3.state["u4"]["name"] == "Secret Name 4" and len(p3.state) == 5
    await store.close()


@pytest.mark.parametrize("reopened_with", ["missing key", "wrong key"])
async def test_read_model_snapshot_that_does_not_decrypt_is_refused_and_rebuilt(store_url, reopened_with):
    from eventuali.security import KeyManager, encrypted_codec

    url, backend = store_url
    events_key = KeyManager.generate_key()
    keys = KeyManager({"events": events_key})
    store = await EventStore.create(url, backend=backend, codec=encrypted_codec(keys))
    await _secret_users(store, 4)
    keys.rotate("snapshots")  # the events stay readable with "events"; the snapshot is not
    p, _ = await _directory(store)
    expected = p.state.to_dict()
    assert len(expected) == 4
    assert (await store.backend.load_snapshot(DIRECTORY_LOG)).payload[:3] == b"\xffSP"
    held = {"events": events_key}
    if reopened_with == "wrong key":
        held["snapshots"] = KeyManager.generate_key()  # the right id, other bytes
    store = await _restart(store, url, backend,
                           codec=encrypted_codec(KeyManager(held, current="events")))
    with pytest.warns(RuntimeWarning) as warned:
        p2, _ = await _directory(store)
    # Refused with a warning (then, where the log was truncated, also the rebuild's own).
    assert any("read-model snapshot of 'Directory' is unreadable" in str(w.message) for w in warned)
    assert p2.state.to_dict() == expected  # rebuilt from the log, never a wrong state
    await store.close()


class DirectoryLog(Directory):
    """A Directory that never compacts: its whole read model stays in its change log."""

    compact_every = 10_000


DIRECTORY_CHANGES = "$projection:DirectoryLog"


async def _directory_log(store):
    s, p = EventStreamer(store), DirectoryLog()
    await s.configure(batch_size=1)
    sub = await s.subscribe(p)
    await s.catch_up()
    return p, sub


async def test_change_log_of_an_encrypted_store_is_encrypted(store_url):
    """The read model's changes are what the events hold: they are encrypted like them."""
    from eventuali.security import KeyManager, encrypted_codec

    url, backend = store_url
    keys = KeyManager.generate("k1")
    store = await EventStore.create(url, backend=backend, codec=encrypted_codec(keys))
    await _secret_users(store, 3)
    p, _ = await _directory_log(store)
    assert p.state["u2"] == {"name": "Secret Name 2", "email": "secret.person.2@example.org"}
    log = await store.backend.read_stream(DIRECTORY_CHANGES)  # as it lies in the store
    assert len(log) == 3
    for r in log:
        assert r.payload[:1] != b"{"
        assert b"Secret Name" not in r.payload and b"secret.person" not in r.payload
    # Restarted with the key: the read model comes back from the log, nothing replayed.
    store = await _restart(store, url, backend, codec=encrypted_codec(keys))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p2, sub = await _directory_log(store)
    assert p2.state.to_dict() == p.state.to_dict() and sub.processed == 0
    await store.close()


async def test_change_log_written_in_clear_text_still_loads_once_encrypted(store_url):
    from eventuali.security import KeyManager, encrypted_codec

    url, backend = store_url
    store = await EventStore.create(url, backend=backend)
    await _secret_users(store, 2)
    p, _ = await _directory_log(store)
    # Without payload transforms the records are what they always were: plain JSON.
    log = await store.backend.read_stream(DIRECTORY_CHANGES)
    assert [json.loads(r.payload)["set"] for r in log] == [
        {"u0": p.state["u0"]}, {"u1": p.state["u1"]}
    ]
    keys = KeyManager.generate("k1")
    store = await _restart(store, url, backend, codec=encrypted_codec(keys))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p2, sub = await _directory_log(store)
    assert p2.state.to_dict() == p.state.to_dict() and sub.processed == 0
    await _secret_users(store, 2, start=2)
    p3, sub = await _directory_log(store)  # a log of old plain and new encrypted records
    assert sub.processed == 2 and len(p3.state) == 4
    log = await store.backend.read_stream(DIRECTORY_CHANGES)
    assert [r.payload[:1] == b"{" for r in log] == [True, True, False, False]
    store = await _restart(store, url, backend, codec=encrypted_codec(keys))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p4, sub = await _directory_log(store)
    assert p4.state.to_dict() == p3.state.to_dict() and sub.processed == 0
    await store.close()


@pytest.mark.parametrize("reopened_with", ["missing key", "wrong key"])
async def test_change_log_that_does_not_decrypt_is_rebuilt_from_the_events(store_url, reopened_with):
    from eventuali.security import KeyManager, encrypted_codec

    url, backend = store_url
    events_key = KeyManager.generate_key()
    keys = KeyManager({"events": events_key})
    store = await EventStore.create(url, backend=backend, codec=encrypted_codec(keys))
    await _secret_users(store, 3)
    keys.rotate("log")  # the events stay readable with "events"; the change log is not
    p, _ = await _directory_log(store)
    expected = p.state.to_dict()
    assert len(expected) == 3
    held = {"events": events_key}
    if reopened_with == "wrong key":
        held["log"] = KeyManager.generate_key()  # the right id, other bytes
    codec = encrypted_codec(KeyManager(held, current="events"))
    store = await _restart(store, url, backend, codec=codec)
    with pytest.warns(RuntimeWarning) as warned:
        p2, sub = await _directory_log(store)
    messages = [str(w.message) for w in warned]
    assert any("change log of projection 'DirectoryLog' is unreadable at version 1" in m
               for m in messages)
    assert any("rebuilding it from the first event" in m for m in messages)
    assert p2.state.to_dict() == expected and sub.processed == 3  # rebuilt, never a wrong state
    # The rebuild's reset record supersedes the unreadable ones: the next start does not
    # rebuild again.
    store = await _restart(store, url, backend, codec=codec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p3, sub = await _directory_log(store)
    assert p3.state.to_dict() == expected and sub.processed == 0
    await store.close()


async def test_parked_events_of_an_encrypted_store_are_encrypted(store_url):
    """Parked records carry stream ids and the handler's error text (often a value)."""
    from eventuali.security import KeyManager, encrypted_codec

    url, backend = store_url
    keys = KeyManager.generate("k1")
    store = await EventStore.create(url, backend=backend, codec=encrypted_codec(keys))
    await _secret_users(store, 3)

    class Picky(StoredProjection):
        max_retries = 0

        def handle_user_registered(self, e):
            if e.aggregate_id == "u1":
                raise ValueError(f"cannot file {e.email}")
            self.state.put(e.aggregate_id, e.name)

    s, p = EventStreamer(store), Picky()
    await s.subscribe(p)
    await s.catch_up()
    parked = await s.parked_events(p)
    assert [(x.stream_id, x.error) for x in parked] == [
        ("u1", "ValueError: cannot file secret.person.1@example.org")
    ]
    raw = await store.backend.read_stream("$parked:Picky")  # as it lies in the store
    assert len(raw) == 1 and raw[0].payload[:1] != b"{"
    assert b"secret.person" not in raw[0].payload and b'"u1"' not in raw[0].payload
    # Resolving it (the resolution record is encrypted too) and reading it back after a restart.
    Picky.handle_user_registered = lambda self, e: self.state.put(e.aggregate_id, e.name)
    assert await s.retry_parked(p) == []
    store = await _restart(store, url, backend, codec=encrypted_codec(keys))
    s2 = EventStreamer(store)
    assert await s2.parked_events("Picky") == []
    raw = await store.backend.read_stream("$parked:Picky")
    assert len(raw) == 2 and all(r.payload[:1] != b"{" for r in raw)
    await store.close()


async def test_a_tenant_scoped_store_streams_its_tenant_only(store):
    store.tenant = "t1"
    await _users(store, 2)
    store.tenant = "t2"
    await _users(store, 3, start=2)
    store.tenant = "t1"
    s, p = EventStreamer(store), Counter()
    await s.subscribe(p)
    await s.catch_up()
    assert [a for a, _ in p.seen] == ["u0", "u1"]


async def test_live_follow_under_concurrent_writers_sees_every_event_once_in_order(store):
    class Positions(Projection):
        raw = True

        def __init__(self):
            self.positions = []

        def handle_deposited(self, rec):
            self.positions.append(rec.position)

    s, p = EventStreamer(store), Positions()
    await s.configure(batch_size=16)
    await s.subscribe(p)
    await s.start()

    async def writer(k):
        acc = Account(id=f"w{k}")
        for _ in range(25):
            acc.apply(Deposited(amount=1))
            await store.save(acc)

    await asyncio.gather(*(writer(k) for k in range(4)))
    await s.wait_until(timeout=10)
    await s.stop()
    assert len(p.positions) == 100
    assert p.positions == sorted(set(p.positions))


async def test_a_failing_store_fails_the_subscription_visibly(store):
    await _users(store, 2)
    s, p = EventStreamer(store), Counter()
    sub = await s.subscribe(p)

    async def broken(*args, **kwargs):
        raise ConnectionError("database went away")

    s.backend = type("Broken", (), {"read_all": broken, "head": store.backend.head,
                                    "wait_for": store.backend.wait_for,
                                    "get_checkpoint": store.backend.get_checkpoint,
                                    # the projection's lease (leader election) still works
                                    "stream_version": store.backend.stream_version,
                                    "read_stream": store.backend.read_stream,
                                    "append": store.backend.append,
                                    "capabilities": store.backend.capabilities})()
    with pytest.warns(RuntimeWarning, match="database went away"):
        await s.start()
        await s.wait_until(timeout=5)
    assert sub.state == "failed" and isinstance(sub.error, ConnectionError)
    await s.stop()


async def test_retry_parked_resolves_what_now_succeeds(store):
    acc = Account(id="a1")
    for amount in (1, 2, 3, 4):
        acc.apply(Deposited(amount=amount))
    await store.save(acc)
    broken = {2, 3}

    class Picky(StoredProjection):
        max_retries = 0

        def handle_deposited(self, e):
            if e.amount in broken:
                raise ValueError(f"cannot take {e.amount}")
            self.state.put("sum", self.state.get("sum", 0) + e.amount)

    s, p = EventStreamer(store), Picky()
    await s.subscribe(p)
    await s.catch_up()
    assert p.state["sum"] == 5 and len(await s.parked_events(p)) == 2
    broken.discard(2)  # the cause of one failure is fixed
    still = await s.retry_parked(p)
    assert [x.version for x in still] == [3]
    assert p.state["sum"] == 7
    assert [x.version for x in await s.parked_events(p)] == [3]
    s2, p2 = EventStreamer(store), Picky()  # the resolution and its change are both stored
    await s2.subscribe(p2)
    await s2.catch_up()
    assert p2.state["sum"] == 7 and [x.version for x in await s2.parked_events(p2)] == [3]
    await s.start()
    with pytest.raises(ConfigurationError, match="stop the streamer"):
        await s.retry_parked(p)
    await s.stop()
