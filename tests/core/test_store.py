"""EventStore and SyncEventStore through the public API, on memory:// and a SQLite file."""

from __future__ import annotations

import json

import pytest

from eventuali import (
    ANY,
    Event,
    EventStore,
    InvalidInputError,
    OptimisticConcurrencyError,
    SerializationError,
    SyncEventStore,
    UnknownEvent,
    upcaster,
)
from eventuali.records import NewRecord, StreamWrite

from .domain import User, UserEmailChanged, UserRegistered, registered_user


async def test_save_and_load_round_trip(store):
    u = registered_user("u-1", n_changes=3)
    await store.save(u)
    assert not u.has_uncommitted_events() and u.version == 4
    loaded = await store.load(User, "u-1")
    assert loaded is not None
    assert loaded.model_dump() == u.model_dump()
    assert loaded.version == 4 and not loaded.has_uncommitted_events()


async def test_load_of_an_unknown_aggregate_is_none(store):
    assert await store.load(User, "nobody") is None


async def test_loaded_events_are_equal_to_the_saved_ones(store):
    u = registered_user("u-2", n_changes=2)
    saved = u.get_uncommitted_events()
    await store.save(u)
    loaded = await store.load_events("u-2")
    assert loaded == saved
    assert [type(e) for e in loaded] == [UserRegistered, UserEmailChanged, UserEmailChanged]
    assert await store.load_events("u-2", from_version=2) == saved[1:]
    assert await store.load_events("u-2", from_version=2, to_version=2) == saved[1:2]


@pytest.mark.parametrize("bad", [0, -1])
async def test_from_version_below_one_is_refused(store, bad):
    with pytest.raises(InvalidInputError, match="from_version"):
        await store.load_events("u", from_version=bad)


async def test_stale_aggregate_raises_and_writes_nothing(store):
    u = registered_user("u-3")
    await store.save(u)
    a = await store.load(User, "u-3")
    b = await store.load(User, "u-3")
    a.change_email("a@x.org")
    await store.save(a)
    b.change_email("b@x.org")
    head = await store.head()
    with pytest.raises(OptimisticConcurrencyError) as info:
        await store.save(b)
    err = info.value
    assert (err.stream_id, err.expected, err.actual) == ("u-3", 1, 2)
    assert "u-3" in str(err)
    assert await store.head() == head
    assert (await store.load(User, "u-3")).email == "a@x.org"
    assert b.has_uncommitted_events()  # the caller can inspect what failed


async def test_saving_several_aggregates_is_atomic(store):
    first = registered_user("multi-1")
    await store.save(first)
    stale = User(id="multi-1")  # believes the stream is new
    stale.register("X", "x@x")
    fresh = registered_user("multi-2")
    with pytest.raises(OptimisticConcurrencyError):
        await store.save(fresh, stale)
    assert await store.load(User, "multi-2") is None
    await store.save(fresh)
    assert (await store.load(User, "multi-2")).version == 1


async def test_saving_without_uncommitted_events_is_a_noop(store):
    u = registered_user("u-4")
    await store.save(u)
    head = await store.head()
    await store.save(u)
    await store.save(User(id="never-changed"))
    assert await store.head() == head


@pytest.mark.parametrize("bad_id", ["", "x" * 256, "nul\x00byte"])
async def test_bad_aggregate_ids_are_refused_before_writing(store, bad_id):
    u = User(id=bad_id)
    u.register("a", "b@c")
    with pytest.raises(InvalidInputError, match="aggregate id"):
        await store.save(u)
    assert await store.head() == 0


async def test_non_serializable_field_is_a_clear_error_and_writes_nothing(store):
    class Opaque:
        pass

    class Weird(Event):
        model_config = {"arbitrary_types_allowed": True}
        thing: object

    class Holder(User):
        def apply_weird(self, event):
            pass

    h = Holder(id="h")
    h.register("a", "b@c")
    h.apply(Weird(thing=Opaque()))
    with pytest.raises(SerializationError, match="Weird.*cannot be serialized"):
        await store.save(h)
    assert await store.head() == 0


async def test_read_all_pages_in_global_order_with_filters(store):
    for i in range(5):
        await store.save(registered_user(f"p-{i}", n_changes=1))
    everything = await store.read_all(limit=1000)
    positions = [se.position for se in everything]
    assert len(everything) == 10 and positions == sorted(positions)
    paged, pos = [], 1
    while True:
        page = await store.read_all(pos, limit=3)
        if not page:
            break
        paged.extend(page)
        pos = page[-1].position + 1
    assert paged == everything
    changes = await store.read_all(event_types=[UserEmailChanged])
    assert {type(se.event) for se in changes} == {UserEmailChanged} and len(changes) == 5
    assert len(await store.read_all(aggregate_id_prefix="p-3")) == 2
    streamed = [se async for se in store.stream_all(batch_size=4)]
    assert streamed == everything


async def test_load_events_by_type(store):
    await store.save(registered_user("t-1"), registered_user("t-2", n_changes=1))
    events = await store.load_events_by_type("User")
    assert len(events) == 3
    assert len(await store.load_events_by_type(User, limit=2)) == 2
    assert len(await store.load_events_by_event_type(UserEmailChanged)) == 1


async def test_save_events_appends_bare_events(store):
    class TransactionRecorded(Event):
        amount: float

    positions = await store.save_events([TransactionRecorded(amount=i) for i in range(3)])
    assert len(positions) == 3
    events = [se.event for se in await store.read_all()]
    assert [e.amount for e in events] == [0, 1, 2]
    assert len({e.aggregate_id for e in events}) == 3  # one stream each


def _raw_write(stream: str, event_type: str, schema_version: int, data: dict) -> StreamWrite:
    from eventuali.ids import uuid7

    return StreamWrite(
        stream,
        "User",
        ANY,
        [NewRecord(uuid7().bytes, event_type, schema_version, 1_700_000_000_000_000, b"",
                   json.dumps(data).encode())],
    )


async def test_unknown_event_types_load_with_every_field(store):
    await store.backend.append([_raw_write("legacy", "SomethingRetired", 1,
                                           {"aggregate_id": "legacy", "weird": [1, 2], "n": 3})])
    (ev,) = await store.load_events("legacy")
    assert isinstance(ev, UnknownEvent)
    assert ev.event_type == "SomethingRetired"
    assert ev.weird == [1, 2] and ev.model_extra == {"weird": [1, 2], "n": 3}


async def test_upcasters_bring_stored_v1_data_to_the_current_class(store):
    class PriceSet(Event):
        __event_version__ = 3
        amount_cents: int
        currency: str

    @upcaster("PriceSet", from_version=1)
    def v1_to_v2(data):
        data["amount_cents"] = int(round(data.pop("amount") * 100))
        return data

    @upcaster(PriceSet, from_version=2)
    def v2_to_v3(data):
        data.setdefault("currency", "EUR")
        return data

    await store.backend.append([_raw_write("price-1", "PriceSet", 1, {"amount": 12.5})])
    (ev,) = await store.load_events("price-1")
    assert isinstance(ev, PriceSet)
    assert (ev.amount_cents, ev.currency, ev.event_version) == (1250, "EUR", 3)

    await store.backend.append([_raw_write("price-2", "PriceSet", 4, {"amount_cents": 1})])
    with pytest.raises(SerializationError, match="newer"):
        await store.load_events("price-2")


async def test_missing_upcaster_is_a_clear_error(store):
    class Renamed2(Event):
        __event_version__ = 2
        x: int

    await store.backend.append([_raw_write("r", "Renamed2", 1, {"x": 1})])
    with pytest.raises(SerializationError, match="no upcaster registered for 'Renamed2' from version 1"):
        await store.load_events("r")


def test_sync_twin_has_the_same_behaviour(sync_store):
    u = registered_user("s-1", n_changes=1)
    sync_store.save(u)
    loaded = sync_store.load(User, "s-1")
    assert loaded.model_dump() == u.model_dump()
    stale = sync_store.load(User, "s-1")
    loaded.change_email("n@x")
    sync_store.save(loaded)
    stale.change_email("m@x")
    with pytest.raises(OptimisticConcurrencyError):
        sync_store.save(stale)
    assert [type(e) for e in sync_store.load_events("s-1", from_version=2)] == [
        UserEmailChanged,
        UserEmailChanged,
    ]
    assert len(list(sync_store.stream_all(batch_size=1))) == 3
    assert len(sync_store.load_events_by_type(User)) == 3


async def test_reopening_a_sqlite_store_sees_everything(tmp_path):
    url = f"sqlite:///{tmp_path}/reopen.db"
    async with await EventStore.create(url) as s1:
        await s1.save(registered_user("r-1", n_changes=10))
    async with await EventStore.create(url) as s2:
        u = await s2.load(User, "r-1")
        assert u.version == 11
    with SyncEventStore.create(url) as s3:
        assert s3.load(User, "r-1").email == "ada9@example.com"


def _bookkeeping(n: int) -> StreamWrite:
    """Records of the library's own (stream type ``$eventuali``), as leases and change logs are."""
    import uuid

    from eventuali.projections import RESERVED_STREAM_TYPE

    recs = [NewRecord(uuid.uuid4().bytes, "$eventuali.LeaseRenewed", 1, 1, b"", b"{}") for _ in range(n)]
    return StreamWrite(f"$lease:{uuid.uuid4().hex}", RESERVED_STREAM_TYPE, ANY, recs)


async def test_read_all_pages_over_the_librarys_own_records_without_showing_them(store):
    """Users' pages hold only their events, and a short page still means the end: a page
    of bookkeeping in between is read past, not returned empty."""
    await store.save(registered_user("u-a", n_changes=1))  # positions 1-2
    await store.backend.append([_bookkeeping(5)])  # 3-7
    await store.save(registered_user("u-b", n_changes=1))  # 8-9
    await store.backend.append([_bookkeeping(3)])  # 10-12

    page = await store.read_all(1, 3)
    assert [(e.position, e.event.aggregate_id) for e in page] == [(1, "u-a"), (2, "u-a"), (8, "u-b")]
    rest = await store.read_all(page[-1].position + 1, 3)
    assert [(e.position, e.event.aggregate_id) for e in rest] == [(9, "u-b")]
    assert await store.read_all(rest[-1].position + 1, 3) == []
    assert [e.position for e in [se async for se in store.stream_all(batch_size=2)]] == [1, 2, 8, 9]
    shown = await store.read_all(aggregate_types=["$eventuali"])
    assert [e.position for e in shown] == [3, 4, 5, 6, 7, 10, 11, 12]


def test_sync_read_all_pages_over_the_librarys_own_records_without_showing_them(sync_store):
    sync_store.save(registered_user("u-a", n_changes=1))
    sync_store.backend.append([_bookkeeping(4)])
    sync_store.save(registered_user("u-b", n_changes=0))
    assert [e.position for e in sync_store.read_all(1, 2)] == [1, 2]
    assert [e.position for e in sync_store.read_all(3, 2)] == [7]
    assert [e.position for e in sync_store.stream_all(batch_size=3)] == [1, 2, 7]
    assert len(sync_store.read_all(aggregate_types=["$eventuali"])) == 4
