"""Leases, leader election and partitions inside one process, on every (engine, scheme) target.

Several streamers opened on one store stand for several processes: they
coordinate only through the store, exactly as separate processes do (the
multi-process and SIGKILL tests are in test_failover.py).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import zlib

import pytest

from eventuali import ConfigurationError, EventStore, EventStreamer, Projection, StoredProjection
from eventuali.records import StreamWrite
from eventuali.scaling import LeaseLostError, load_partitioned_read_model, partition_of
from eventuali.scaling.leases import Lease
from tests.features.domain import UserRegistered

LEASE = 1.0  # seconds: short, so that takeovers happen within the test (not so short that
# a loaded machine starves a holder past half of it)


class Applied(StoredProjection):
    """Per stream, the versions applied, in order: a duplicate or a gap shows at once."""

    name = "applied"

    def handle_user_registered(self, e):
        self.state.put(e.aggregate_id, [*self.state.get(e.aggregate_id, []), e.aggregate_version])


async def _write(store, streams: int, upto: int, start: int = 1, prefix: str = "u") -> None:
    """Versions ``start..upto`` of streams ``u0..``: one save per version."""
    for v in range(start, upto + 1):
        await store.save_events([
            UserRegistered(aggregate_id=f"{prefix}{i}", aggregate_version=v, name="n", email="e")
            for i in range(streams)
        ], stream_type="User")


async def _streamer(url: str, backend: str) -> tuple[EventStore, EventStreamer]:
    store = await EventStore.create(url, backend=backend)
    s = EventStreamer(store)
    await s.configure(lease_seconds=LEASE, batch_size=50)
    return store, s


async def _committed_past(store, position: int, timeout: float = 20.0) -> None:
    """Until every partition of ``applied`` has committed past ``position``."""
    deadline = time.monotonic() + timeout
    while min([await store.backend.get_checkpoint(f"applied#{p}") or 0 for p in range(4)]) < position:
        assert time.monotonic() < deadline, "partitions did not catch up"
        await asyncio.sleep(0.05)


async def _until(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


# --- the lease itself ---------------------------------------------------------------------

async def test_a_lease_is_held_by_one_holder_and_passes_on_release(store):
    a = Lease(store.backend, "$lease:t", "a", 30.0)
    b = Lease(store.backend, "$lease:t", "b", 30.0)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    assert await a.renew()
    await a.release()
    assert await b.try_acquire()
    assert not await a.try_acquire()
    assert (await b.view()).holder == "b"


async def test_an_unrenewed_lease_is_taken_only_after_half_a_period_unchanged(store):
    a = Lease(store.backend, "$lease:t", "a", LEASE)
    b = Lease(store.backend, "$lease:t", "b", LEASE)
    assert await a.try_acquire()
    await asyncio.sleep(LEASE)
    # b has only just seen a's version: it must see it unchanged for half a period from now.
    assert not await b.try_acquire()
    assert not a.valid()  # a gave up on its own clock already (half a period after its renewal)
    await asyncio.sleep(LEASE * 0.6)
    assert await b.try_acquire()


async def test_a_stale_holder_cannot_commit_after_losing_its_lease(store):
    a = Lease(store.backend, "$lease:t", "a", LEASE)
    b = Lease(store.backend, "$lease:t", "b", LEASE)
    assert await a.try_acquire()
    await a.fenced_append([], ("cp", 5))
    assert await store.backend.get_checkpoint("cp") == 5
    assert not await b.try_acquire()
    await asyncio.sleep(LEASE * 0.6)
    assert await b.try_acquire()
    # a wakes from a suspend its monotonic clock did not count: it believes it still
    # holds the lease; the fence in its commit refuses it, and nothing is written.
    a._renewed_at = time.monotonic()
    head = await store.backend.head()
    from eventuali.records import ANY, NewRecord

    rec = NewRecord(os.urandom(16), "X", 1, 0, b"", b"{}")
    with pytest.raises(LeaseLostError, match="taken by another process"):
        await a.fenced_append([StreamWrite("other", "T", ANY, [rec])], ("cp", 9))
    assert await store.backend.get_checkpoint("cp") == 5
    assert await store.backend.head() == head
    assert not a.held


def test_partition_of_is_stable_across_python_runs():
    ids = ["order-1", "user-42", "ü-é", "x" * 200]
    here = [partition_of(i, 8) for i in ids]
    assert here == [zlib.crc32(i.encode()) % 8 for i in ids]
    code = f"from eventuali.scaling import partition_of; print([partition_of(i, 8) for i in {ids!r}])"
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
        assert out.strip() == str(here)


# --- leader election ----------------------------------------------------------------------

async def test_one_process_runs_a_projection_the_other_stands_by_then_takes_over(store_url):
    url, backend = store_url
    st1, s1 = await _streamer(url, backend)
    st2, s2 = await _streamer(url, backend)
    p1, p2 = Applied(), Applied()
    try:
        sub1 = await s1.subscribe(p1)
        await s1.start()
        sub2 = await s2.subscribe(p2)
        await s2.start()
        assert (sub1.state, sub2.state) == ("running", "standby")
        await _write(st1, 5, 2)
        await s1.wait_until(timeout=10)
        assert p1.state.to_dict() == {f"u{i}": [1, 2] for i in range(5)}
        await s1.stop()  # releases the lease: s2 need not wait for it to expire
        await _until(lambda: sub2.state == "running")
        await _write(st1, 5, 3, start=3)
        await _until(lambda: all(len(p2.state.get(f"u{i}", [])) == 3 for i in range(5)))
        assert p2.state.to_dict() == {f"u{i}": [1, 2, 3] for i in range(5)}
    finally:
        await s1.stop()
        await s2.stop()
        await st1.close()
        await st2.close()


# --- partitions ---------------------------------------------------------------------------

async def test_partitions_are_shared_rebalanced_and_each_event_applied_once(store_url):
    url, backend = store_url
    st1, s1 = await _streamer(url, backend)
    st2, s2 = await _streamer(url, backend)
    p1, p2 = Applied(), Applied()
    try:
        g1 = await s1.subscribe(p1, partitions=4)
        await s1.start()
        assert sorted(g1.held) == [0, 1, 2, 3]  # alone: it takes every partition at once
        await _write(st1, 40, 2)
        g2 = await s2.subscribe(p2, partitions=4)
        await s2.start()
        await _until(lambda: len(g1.held) == 2 and len(g2.held) == 2)
        await _write(st1, 40, 3, start=3)
        await _committed_past(st1, await st1.head())
        # What the two workers committed, merged: every event applied once, in order.
        merged = await load_partitioned_read_model(st1, "applied", 4)
        assert merged == {f"u{i}": [1, 2, 3] for i in range(40)}
        for g in (g1, g2):  # a worker's read model holds the streams of its partitions only
            assert {partition_of(k, 4) for k in g.read_model()} <= set(g.held)
        await s2.stop()
        await _until(lambda: len(g1.held) == 4)
        await _write(st1, 40, 4, start=4)
        await _committed_past(st1, await st1.head())
        assert await load_partitioned_read_model(st1, "applied", 4) == {
            f"u{i}": [1, 2, 3, 4] for i in range(40)}
    finally:
        await s1.stop()
        await s2.stop()
        await st1.close()
        await st2.close()


async def test_a_plain_partitioned_projection_sees_each_stream_in_order(store):
    seen: dict[str, list[int]] = {}

    class Log(Projection):
        def handle_user_registered(self, e):
            seen.setdefault(e.aggregate_id, []).append(e.aggregate_version)

    s = EventStreamer(store)
    await s.configure(lease_seconds=LEASE, batch_size=7)
    g = await s.subscribe(Log(), partitions=3)
    await _write(store, 10, 4)
    last = await store.head()
    async with s:
        await g.wait_until(await store.head())
    assert seen == {f"u{i}": [1, 2, 3, 4] for i in range(10)}
    for p in range(3):
        # stop() stored every partition's checkpoint past the last event
        assert await store.backend.get_checkpoint(f"Log#{p}") >= last


async def test_bad_partition_counts_and_lease_periods_are_refused(store):
    s = EventStreamer(store)
    for bad in (0, -1, 5000, "8", 2.5, True):
        with pytest.raises(ConfigurationError, match="partitions="):
            await s.subscribe(Applied(), partitions=bad)
    for bad in (0, -3, "10", True):
        with pytest.raises(ConfigurationError, match="lease_seconds"):
            await s.configure(lease_seconds=bad)


async def test_workers_with_different_partition_counts_are_refused(store_url):
    url, backend = store_url
    st1, s1 = await _streamer(url, backend)
    st2, s2 = await _streamer(url, backend)
    try:
        await s1.subscribe(Applied(), partitions=4)
        await s1.start()
        await s1.stop()  # released, so the next worker reads the partitions it was run with
        await s2.subscribe(Applied(), partitions=8)
        with pytest.raises(ConfigurationError, match="running 4 partitions, this one runs 8"):
            await s2.start()
    finally:
        await s2.stop()
        await st1.close()
        await st2.close()
