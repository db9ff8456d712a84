"""BatchProcessor through the public API, on every store."""

from __future__ import annotations

import asyncio
import random

import pytest

from eventuali import ConfigurationError, Event, OptimisticConcurrencyError
from eventuali.performance import BatchProcessor, BatchResult


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


async def test_failures_are_isolated_and_reported(store):
    events = _txs(50)
    await store.save_events([events[10]])  # events[10] is now stored: saving it again is a duplicate
    events[30].aggregate_id, events[30].aggregate_version = "fixed", 5  # stream has no version 4
    result = await BatchProcessor(store, batch_size=20, parallel_workers=1).save_events(events)
    assert [f.index for f in result.failed] == [10, 30]
    assert "Duplicate" in result.failed[0].reason
    assert isinstance(result.failed[1].error, OptimisticConcurrencyError)
    assert result.saved == 48 and result.positions[10] is None and result.positions[31] is not None
    assert len(await store.read_all(limit=1000)) == 49  # 48 + the pre-saved one
    with pytest.raises(Exception, match="2 of 50 events"):
        result.raise_for_failures()


async def test_without_isolation_a_batch_fails_as_a_whole(store):
    events = _txs(10)
    events[3] = "not an event"
    result = await BatchProcessor(store, batch_size=5, parallel_workers=1, isolate_failures=False).save_events(events)
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
