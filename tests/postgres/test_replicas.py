"""ReplicaManager against real hot standbys that the tests start themselves.

A private primary (initdb on a free port) and two streaming standbys
(``pg_basebackup -R -c fast``), all in one temporary folder that is removed at
the end.  Replay is paused on a standby to make it lag; one standby is stopped
immediately ("dies") in the last test.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from eventuali import Aggregate, Event
from eventuali.errors import ConfigurationError
from eventuali.performance import ReplicaManager, SyncReplicaManager

from . import cluster as clusters
from .conftest import need_clusters

pytestmark = pytest.mark.postgres


class ItemAdded(Event):
    sku: str
    qty: int


class Basket(Aggregate):
    items: dict[str, int] = {}

    def apply_item_added(self, event: ItemAdded) -> None:
        self.items = {**self.items, event.sku: self.items.get(event.sku, 0) + event.qty}


@pytest.fixture(scope="module")
def servers():
    need_clusters()
    primary = clusters.Cluster.create()
    try:
        primary.start()
        standbys = [primary.standby().start(), primary.standby().start()]
        for s in standbys:
            assert s.execute("SELECT pg_is_in_recovery()") == [(True,)]
        yield primary, standbys
    finally:
        primary.destroy()


def settings(primary, standbys, schema, **extra):
    return {
        "primary": primary.url(schema=schema, pool_size="1"),
        "replicas": [s.url(schema=schema, pool_size="1", connect_timeout="2") for s in standbys],
        "read_preference": "round_robin",
        "replica_lag_tolerance": 100,
        **extra,
    }


def events(aggregate_id: str, n: int, start: int = 1) -> list[ItemAdded]:
    return [
        ItemAdded(aggregate_id=aggregate_id, aggregate_version=start + i, sku=f"sku{i}", qty=1)
        for i in range(n)
    ]


async def wait_caught_up(primary, standbys) -> None:
    (lsn,) = primary.execute("SELECT pg_current_wal_lsn()::text")[0]
    deadline = time.monotonic() + 20
    for s in standbys:
        while not s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0]:
            assert time.monotonic() < deadline, "standby did not catch up"
            await asyncio.sleep(0.02)


def test_settings_are_checked():
    with pytest.raises(ConfigurationError, match="read_preference"):
        ReplicaManager({"primary": "postgresql://h/db", "read_preference": "random"})
    with pytest.raises(ConfigurationError, match="replica_lag"):
        ReplicaManager({"primary": "postgresql://h/db", "replica_lag"
                        "_tolerance": -1})  # fmt: skip
    with pytest.raises(ConfigurationError, match="'replica'"):
        ReplicaManager({"primary": "postgresql://h/db", "replica": []})
    with pytest.raises(ConfigurationError, match="sqlite"):
        ReplicaManager({"primary": "sqlite://x.db"})


async def test_writes_go_to_the_primary_and_reads_round_robin_over_replicas(servers):
    primary, standbys = servers
    schema = f"rm_{uuid.uuid4().hex[:8]}"
    async with ReplicaManager(settings(primary, standbys, schema)) as manager:
        await manager.save_events(events("basket-1", 5))
        await wait_caught_up(primary, standbys)
        for _ in range(10):
            loaded = await manager.load_events("basket-1")
            assert [e.aggregate_version for e in loaded] == [1, 2, 3, 4, 5]
            assert all(isinstance(e, ItemAdded) for e in loaded)
        reads = [s.reads for s in manager.status()]
        assert reads == [5, 5], manager.status()
        assert manager.primary_reads == 0
        basket = await manager.load(Basket, "basket-1")
        assert basket.version == 5 and len(basket.items) == 5
        page = await manager.read_all()
        assert [se.position for se in page] == [1, 2, 3, 4, 5]
        # The standbys hold the data: it was replicated, not written there by us.
        rows = standbys[0].execute(f'SELECT count(*) FROM "{schema}".eventuali_events')
        assert rows == [(5,)]


async def test_least_connections_prefers_the_idle_replica(servers):
    primary, standbys = servers
    schema = f"rm_{uuid.uuid4().hex[:8]}"
    cfg = settings(primary, standbys, schema, read_preference="least_connections")
    async with ReplicaManager(cfg) as manager:
        await manager.save_events(events("b", 3))
        await wait_caught_up(primary, standbys)
        await manager.load_events("b")  # opens the replica connections
        busy, idle = manager.backend.replicas
        before = (busy.reads, idle.reads)
        busy.in_flight += 3  # three reads of ours still running there
        try:
            for _ in range(4):
                assert len(await manager.load_events("b")) == 3
        finally:
            busy.in_flight -= 3
        assert (busy.reads - before[0], idle.reads - before[1]) == (0, 4)
        results = await asyncio.gather(*(manager.load_events("b") for _ in range(12)))
        assert all(len(r) == 3 for r in results)
        assert busy.reads > before[0] and idle.reads > before[1] + 4


async def test_a_lagging_replica_is_skipped_until_it_catches_up(servers):
    primary, standbys = servers
    schema = f"rm_{uuid.uuid4().hex[:8]}"
    lagging, fresh = standbys
    async with ReplicaManager(settings(primary, standbys, schema)) as writer, ReplicaManager(
        settings(primary, standbys, schema, read_your_writes=False)
    ) as reader:
        await writer.save_events(events("b", 2))
        await wait_caught_up(primary, standbys)
        assert len(await reader.load_events("b")) == 2
        lagging.execute("SELECT pg_wal_replay_pause()")
        try:
            await writer.save_events(events("b", 3, start=3))
            await asyncio.sleep(0.4)  # the paused standby is now > 100 ms behind
            lag_before = reader.backend.replicas[0].reads
            for _ in range(6):
                assert len(await reader.load_events("b")) == 5  # never the stale copy
            assert reader.backend.replicas[0].reads == lag_before
            status = reader.status()
            assert status[0].healthy is False and status[0].lag_ms > 100
            assert status[1].healthy is True and status[1].lag_ms <= 100
            # The stale copy really is stale: the check above is what kept it away.
            assert lagging.execute(f'SELECT count(*) FROM "{schema}".eventuali_events') == [(2,)]
        finally:
            lagging.execute("SELECT pg_wal_replay_resume()")
        await wait_caught_up(primary, standbys)
        await asyncio.sleep(reader.check_interval + 0.05)
        for _ in range(4):
            assert len(await reader.load_events("b")) == 5
        assert reader.backend.replicas[0].reads > lag_before


async def test_reads_see_the_callers_own_writes(servers):
    primary, standbys = servers
    schema = f"rm_{uuid.uuid4().hex[:8]}"
    paused = standbys[0]
    # A tolerance so large that lag alone would never exclude the paused standby.
    loose = dict(replica_lag_tolerance=600_000, health_check_interval=600)
    async with ReplicaManager(settings(primary, [paused], schema, **loose)) as manager, ReplicaManager(
        settings(primary, [paused], schema, read_your_writes=False, **loose)
    ) as careless:
        await manager.save_events(events("b", 1))
        await wait_caught_up(primary, [paused])
        assert len(await careless.load_events("b")) == 1
        paused.execute("SELECT pg_wal_replay_pause()")
        try:
            await manager.save_events(events("b", 1, start=2))
            for _ in range(3):
                assert len(await manager.load_events("b")) == 2  # own write: served by the primary
            assert manager.primary_reads >= 3
            # Without read-your-writes the paused standby answers, with the old data.
            assert len(await careless.load_events("b")) == 1
        finally:
            paused.execute("SELECT pg_wal_replay_resume()")
        await wait_caught_up(primary, [paused])
        served = manager.backend.replicas[0].reads
        assert len(await manager.load_events("b")) == 2
        assert manager.backend.replicas[0].reads == served + 1  # caught up: the replica serves again


def test_sync_form_routes_the_same_way(servers):
    primary, standbys = servers
    schema = f"rm_{uuid.uuid4().hex[:8]}"
    with SyncReplicaManager(settings(primary, standbys, schema)) as manager:
        basket = Basket(id="sync-basket")
        basket.apply(ItemAdded(sku="a", qty=2))
        basket.apply(ItemAdded(sku="b", qty=1))
        manager.save(basket)
        loaded = manager.load(Basket, "sync-basket")  # read-your-writes: never stale
        assert loaded.items == {"a": 2, "b": 1} and loaded.version == 2
        assert manager.head() == 2
        asyncio.run(wait_caught_up(primary, standbys))
        for _ in range(4):
            assert len(manager.load_events("sync-basket")) == 2
        assert sum(s.reads for s in manager.status()) >= 4


async def test_a_replica_that_dies_is_skipped_and_reads_go_on(servers):
    primary, standbys = servers
    schema = f"rm_{uuid.uuid4().hex[:8]}"
    cfg = settings(primary, standbys, schema, retry_interval=60)
    async with ReplicaManager(cfg) as manager:
        await manager.save_events(events("b", 4))
        await wait_caught_up(primary, standbys)
        for _ in range(4):
            assert len(await manager.load_events("b")) == 4
        assert [s.reads for s in manager.status()] == [2, 2]
        standbys[1].stop(mode="immediate")  # dies
        t0 = time.monotonic()
        for i in range(10):
            await manager.save_events(events("b", 1, start=5 + i))
            assert len(await manager.load_events("b")) == 5 + i
        assert time.monotonic() - t0 < 30
        dead = manager.status()[1]
        assert dead.healthy is False and dead.error
        assert manager.status()[0].healthy is True
        assert manager.status()[0].reads > 2
