"""BatchProcessor through the public API, on every store."""

from __future__ import annotations

import asyncio
import random

import pytest

from eventuali import ConfigurationError, DuplicateEventError, Event, OptimisticConcurrencyError
from eventuali.performance import BatchProcessor, BatchResult, BatchSaveError


class TransactionRecorded(Event):
    __event_type__ = "features.TransactionRecorded"  # the guide's name is used by other tests too
    from_account: str
    to_account: str
    amount: float
    transaction_type: str
    description: str


def _txs(n):
    return [
        TransactionRecorded(
            from_account=f"acc-{i}", to_account="central-acc", amount=random.uniform(10, 1000),
            transaction_type="transfer", description=f"Batch transaction {i}",
        )
        for i in range(n)
    ]


async def test_guide_snippet_saves_everything(store):
    batch_processor = BatchProcessor(store=store, batch_size=1000, max_wait_time=100, parallel_workers=4)
    events = _txs(2500)
    result = await batch_processor.save_events(events)
    assert isinstance(result, BatchResult) and result.ok
    assert result.saved == 2500 and None not in result.positions
    assert len(set(result.positions)) == 2500
    stored = await store.read_all(limit=5000)
    assert len(stored) == 2500
    by_pos = {se.position: se.event for se in stored}
    for ev, pos in zip(events, result.positions, strict=True):
        assert by_pos[pos].description == ev.description


async def test_events_of_one_aggregate_stay_in_order_across_batches_and_workers(store):
    events = []
    for i in range(300):
        e = _txs(1)[0]
        e.aggregate_id = f"agg-{i % 3}"
        e.description = str(i)
        events.append(e)
    result = await BatchProcessor(store, batch_size=7, parallel_workers=3).save_events(events)
    assert result.ok and result.batches >= 300 // 7
    for k in range(3):
        descs = [e.description for e in await store.load_events(f"agg-{k}")]
        assert descs == [str(i) for i in range(300) if i % 3 == k]


async def test_guide_call_raises_naming_what_failed_and_what_was_saved(store):
    """The guide ignores save_events' return value: a failure must not pass unnoticed."""
    events = _txs(30)
    await store.save_events([events[7]])  # saving it again is a duplicate event id
    batch_processor = BatchProcessor(store=store, batch_size=10, max_wait_time=100, parallel_workers=4)
    with pytest.raises(BatchSaveError) as info:
        await batch_processor.save_events(events)
    err = info.value
    message = str(err)
    assert message.startswith("1 of 30 events were not saved: #7 (TransactionRecorded, "
                              f"event_id={events[7].event_id}): DuplicateEventError")
    assert "Saved (29, they stay stored): #0-6, #8-29." in message
    assert "on_failure='collect'" in message
    assert [f.index for f in err.result.failed] == [7] and err.result.saved == 29
    assert err.result.saved_indices == [i for i in range(30) if i != 7]
    assert isinstance(err.__cause__, DuplicateEventError)
    stored = {se.event.description for se in await store.read_all(limit=100)}
    assert stored == {e.description for e in events}  # the 29 + the one saved before


async def test_buffered_failures_raise_at_flush_unless_collected(store):
    events = _txs(12)
    await store.save_events([events[3]])
    async with BatchProcessor(store, batch_size=5, max_wait_time=10_000) as bp:
        await bp.add_many(events[:6])  # one full batch (#3 fails), one event buffered
        with pytest.raises(BatchSaveError, match=r"1 of 6 events were not saved: #3 .*Saved \(5,"):
            await bp.flush()
        await bp.add_many(events[6:])
        result = await bp.flush(on_failure="collect")
        assert result.ok and result.saved == 6
    assert len(await store.read_all(limit=100)) == 12


async def test_collecting_is_an_explicit_option_and_checked(store):
    with pytest.raises(ConfigurationError, match="on_failure='ignore' is invalid; use 'raise'"):
        BatchProcessor(store, on_failure="ignore")
    events = _txs(4)
    await store.save_events([events[0]])
    result = await BatchProcessor(store, on_failure="collect").save_events(events)
    assert [f.index for f in result.failed] == [0] and result.saved == 3
    with pytest.raises(BatchSaveError):
        result.raise_for_failures()


async def test_failures_are_isolated_and_reported(store):
    events = _txs(50)
    await store.save_events([events[10]])  # events[10] is now stored: saving it again is a duplicate
    events[30].aggregate_id, events[30].aggregate_version = "fixed", 5  # stream has no version 4
    bp = BatchProcessor(store, batch_size=20, parallel_workers=1)
    result = await bp.save_events(events, on_failure="collect")
    assert [f.index for f in result.failed] == [10, 30]
    assert "Duplicate" in result.failed[0].reason
    assert isinstance(result.failed[1].error, OptimisticConcurrencyError)
    assert result.saved == 48 and result.positions[10] is None and result.positions[31] is not None
    assert len(await store.read_all(limit=1000)) == 49  # 48 + the pre-saved one
    with pytest.raises(BatchSaveError, match="2 of 50 events"):
        result.raise_for_failures()


async def test_without_isolation_a_batch_fails_as_a_whole(store):
    events = _txs(10)
    events[3] = "not an event"
    bp = BatchProcessor(store, batch_size=5, parallel_workers=1, isolate_failures=False, on_failure="collect")
    result = await bp.save_events(events)
    assert sorted(f.index for f in result.failed) == [0, 1, 2, 3, 4]
    assert "item #3" in result.failed[0].reason
    assert len(await store.read_all()) == 5  # atomic per batch: the other batch is stored


async def test_add_flushes_by_size_and_by_time(store):
    bp = BatchProcessor(store, batch_size=10, max_wait_time=30)
    for e in _txs(25):
        await bp.add(e)
    assert bp.pending == 5  # two full batches went at once
    assert len(await store.read_all()) == 20
    for _ in range(200):  # the timer (30 ms) flushes the rest
        if bp.pending == 0 and len(await store.read_all()) == 25:
            break
        await asyncio.sleep(0.025)
    assert bp.pending == 0 and len(await store.read_all()) == 25
    result = await bp.flush()
    assert result.saved == 25 and result.ok


def test_sync_store(sync_store):
    async def run():
        return await BatchProcessor(sync_store, batch_size=100).save_events(_txs(250))

    assert asyncio.run(run()).saved == 250
    assert len(sync_store.read_all(limit=1000)) == 250


def test_bad_configuration(sync_store):
    for kwargs, word in (({"batch_size": 0}, "batch_size"), ({"parallel_workers": 0}, "parallel_workers"),
                         ({"max_wait_time": -1}, "max_wait_time")):
        with pytest.raises(ConfigurationError, match=word):
            BatchProcessor(sync_store, **kwargs)
    with pytest.raises(ConfigurationError, match="EventStore"):
        BatchProcessor(object())
