"""The behaviour chosen where the performance guide is vague (docs/guide-compat.md, "Behaviour we chose")."""

from __future__ import annotations

import pytest

from eventuali import Aggregate, Event, EventStore, InvalidInputError, SyncEventStore
from eventuali.observability import PerformanceMonitor


class Noted(Event):
    __event_type__ = "guide.noted"
    text: str


class Note(Aggregate):
    texts: list = []

    def apply_event(self, event):
        self.texts = [*self.texts, event.text]


@pytest.fixture
async def store(tmp_path):
    s = await EventStore.create(f"sqlite://{tmp_path / 'choices.db'}")
    yield s
    await s.close()


async def test_save_takes_bare_events_and_aggregates_in_one_atomic_append(store):
    note = Note(id="n1")
    note.apply(Noted(text="a"))
    await store.save(note, Noted(text="bare", aggregate_id="loose"), Noted(text="own stream"))
    assert await store.head() == 3
    assert not note.has_uncommitted_events()
    [loose] = await store.load_events("loose")
    assert loose.text == "bare" and loose.aggregate_version == 1
    await store.save(Noted(text="more", aggregate_id="loose"))
    assert [e.aggregate_version for e in await store.load_events("loose")] == [1, 2]
    assert (await store.load(Note, "n1")).texts == ["a"]


async def test_save_refuses_an_aggregate_and_bare_events_for_the_same_id_and_writes_nothing(store):
    note = Note(id="same")
    note.apply(Noted(text="a"))
    with pytest.raises(InvalidInputError, match="aggregate 'same' and bare events for the same id"):
        await store.save(note, Noted(text="b", aggregate_id="same"))
    assert await store.head() == 0
    assert note.has_uncommitted_events()
    with pytest.raises(InvalidInputError, match="takes aggregates or events, got dict"):
        await store.save({"text": "x"})


def test_sync_store_save_takes_bare_events_too(tmp_path):
    with SyncEventStore.create(f"sqlite://{tmp_path / 'sync.db'}") as s:
        s.save(Noted(text="x", aggregate_id="s1"), Noted(text="y", aggregate_id="s1"))
        assert [(e.text, e.aggregate_version) for e in s.load_events("s1")] == [("x", 1), ("y", 2)]


async def test_tracked_operations_count_what_they_write_once(store):
    monitor = PerformanceMonitor({"export_format": "none"})

    @monitor.track_performance
    async def write(n):
        await store.save_events([Noted(text=str(i)) for i in range(n)])

    await write(5)
    assert (await monitor.get_metrics()).events_written == 5
    monitor.instrument(store)  # the instrumented backend counts; the tracked call must not add
    await write(3)
    assert (await monitor.get_metrics()).events_written == 8
    monitor.uninstrument(store)
    with monitor.measure("block"):
        await store.save(Noted(text="in a block"))
    await store.save(Noted(text="outside any tracked operation"))
    assert (await monitor.get_metrics()).events_written == 9


async def test_tracked_operations_do_not_count_each_others_writes(store):
    import asyncio

    a = PerformanceMonitor({"export_format": "none"})
    b = PerformanceMonitor({"export_format": "none"})

    @a.track_performance
    async def write_a():
        await asyncio.sleep(0)
        await store.save_events([Noted(text="a")] * 1)

    @b.track_performance
    async def write_b():
        await asyncio.sleep(0)
        await store.save_events([Noted(text="b1"), Noted(text="b2")])

    await asyncio.gather(write_a(), write_b())
    assert (await a.get_metrics()).events_written == 1
    assert (await b.get_metrics()).events_written == 2
