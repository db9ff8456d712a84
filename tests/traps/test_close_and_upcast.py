"""Errors that say what happened: a closed async store, a failing upcaster (every engine)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from eventuali import Event, EventCodec, EventStore, SerializationError, StoreClosedError
from eventuali.asyncio_adapter import ThreadedAsyncBackend
from eventuali.event import EventRegistry


class TrapPing(Event):
    n: int = 0


# --- async close -----------------------------------------------------------------------


@pytest.fixture
async def open_async(target):
    backend, url = target
    opened: list[EventStore] = []

    async def open_() -> EventStore:
        store = await EventStore.create(url, backend=backend)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


async def test_every_call_after_close_raises_store_closed(open_async):
    store = await open_async()
    await store.save_events([TrapPing(aggregate_id="p")])
    await store.close()
    await store.close()  # idempotent
    calls = [
        lambda: store.save_events([TrapPing(aggregate_id="p")]),
        lambda: store.load_events("p"),
        lambda: store.read_all(),
        lambda: store.stream_version("p"),
        lambda: store.head(),
    ]
    for call in calls:
        with pytest.raises(StoreClosedError):
            await call()


async def test_close_lets_queued_work_finish_and_refuses_the_rest(open_async):
    store = await open_async()
    queued = [asyncio.ensure_future(store.save_events([TrapPing(aggregate_id=f"q{i}", n=i)]))
              for i in range(40)]
    await asyncio.sleep(0)  # every save is now queued on the store
    closing = asyncio.ensure_future(store.close())
    await asyncio.sleep(0)
    late = asyncio.ensure_future(store.save_events([TrapPing(aggregate_id="late")]))
    results = await asyncio.gather(*queued, late, return_exceptions=True)
    await closing
    # Each queued call either finished or was refused cleanly: no CancelledError,
    # no RuntimeError from a shut-down pool.
    refused = [r for r in results if not isinstance(r, list)]
    assert all(isinstance(r, StoreClosedError) for r in refused), refused
    assert isinstance(results[-1], StoreClosedError)
    acknowledged = [i for i, r in enumerate(results[:-1]) if isinstance(r, list)]
    if isinstance(store.backend, ThreadedAsyncBackend):
        assert acknowledged == list(range(40))  # the threaded adapter waits for queued work
    reopened = await open_async()
    stored = await reopened.read_all()
    assert sorted(se.event.n for se in stored) == acknowledged
    assert await reopened.stream_version("late") == 0


# --- upcasters -------------------------------------------------------------------------


class TrapShippedV1(Event):
    __abstract_event__: ClassVar[bool] = True  # written under the v1 layout, not registered
    __event_type__: ClassVar[str] = "TrapShipped"
    weight: int = 0


class TrapShippedV2(Event):
    __abstract_event__: ClassVar[bool] = True
    __event_type__: ClassVar[str] = "TrapShipped"
    __event_version__: ClassVar[int] = 2
    grams: int


def upcast_raises(data: dict[str, Any]) -> dict[str, Any]:
    data["grams"] = data["kilograms"] * 1000  # no such key: KeyError
    return data


def upcast_forgets_return(data: dict[str, Any]) -> dict[str, Any]:
    data["grams"] = data["weight"] * 1000  # changes the dict in place, returns None


def upcast_works(data: dict[str, Any]) -> dict[str, Any]:
    data["grams"] = data.pop("weight") * 1000
    return data


@pytest.mark.parametrize("upcaster, says", [
    (upcast_raises, "raised KeyError: 'kilograms'"),
    (upcast_forgets_return, "returned NoneType"),
])
def test_a_failing_upcaster_is_named_in_a_serialization_error(target, upcaster, says):
    from eventuali import SyncEventStore

    backend, url = target
    writer = SyncEventStore.create(url, backend=backend)
    try:
        writer.save_events([TrapShippedV1(aggregate_id="parcel", weight=2)])
    finally:
        writer.close()
    events = EventRegistry()
    events.register(TrapShippedV2)
    events.register_upcaster("TrapShipped", 1, upcaster)
    reader = SyncEventStore.create(url, backend=backend, codec=EventCodec(events=events))
    try:
        for load in (lambda: reader.load_events("parcel"), lambda: reader.read_all()):
            with pytest.raises(SerializationError) as err:
                load()
            message = str(err.value)
            assert f"upcaster {__name__}.{upcaster.__name__}" in message
            assert "'TrapShipped' from schema version 1 to 2" in message and says in message
            assert "stream 'parcel'" in message
        # Fixed upcaster: the same stored event loads (nothing was lost).
        events._upcasters[("TrapShipped", 1)] = upcast_works
        [loaded] = reader.load_events("parcel")
        assert isinstance(loaded, TrapShippedV2) and loaded.grams == 2000
    finally:
        reader.close()
