"""Aggregate caching through the public API: L1 LRU, real Redis L2, never-stale loads."""

from __future__ import annotations

import os
import uuid

import pytest

from eventuali import Aggregate, ConfigurationError, Event, EventStore
from eventuali.performance import CachedEventStore, CacheManager
from eventuali.security import KeyManager, encrypted_codec

REDIS_URL = os.environ.get("EVENTUALI_REDIS_URL", "redis://127.0.0.1:6379/0")


class CacheDeposited(Event):
    amount: int


class Account(Aggregate):
    balance: int = 0

    def apply_cache_deposited(self, event: CacheDeposited) -> None:
        self.balance += event.amount


def _account(id: str, *amounts: int) -> Account:
    a = Account(id=id)
    for x in amounts:
        a.apply(CacheDeposited(amount=x))
    return a


@pytest.fixture(params=["memory", "sqlite"])
def url(request, tmp_path):
    if request.param == "memory":
        return f"memory://cache-{uuid.uuid4().hex}"
    return f"sqlite://{tmp_path / 'cache.db'}"


@pytest.fixture
async def redis_prefix():
    """A key prefix of its own on the real Redis server; fails if required and absent."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (aioredis.RedisError, OSError) as exc:
        await client.aclose()
        if os.environ.get("EVENTUALI_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis at {REDIS_URL} is required (EVENTUALI_REQUIRE_REDIS=1): {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
    prefix = f"eventuali-test-{uuid.uuid4().hex}:"
    yield prefix
    async for k in client.scan_iter(match=prefix + "*"):
        await client.delete(k)
    await client.aclose()


def _two_level(prefix: str, **over) -> CacheManager:
    return CacheManager({
        "l1_cache": {"type": "memory", "size": "256MB", "ttl": 300},
        "l2_cache": {"type": "redis", "size": "1GB", "ttl": 3600, "url": REDIS_URL,
                     "key_prefix": prefix},
        "cache_strategy": "write_through",
        "invalidation": "event_based",
        **over,
    })


async def test_write_through_then_l1_hit(url):
    cm = CacheManager({"l1_cache": {"type": "memory", "size": "1MB", "ttl": 300}})
    store = CachedEventStore(await EventStore.create(url), cm)
    await store.save(_account("a", 10, 5))
    got = await store.load(Account, "a")
    assert (got.balance, got.version) == (15, 2)
    assert cm.stats.l1_hits == 1 and cm.stats.misses == 0
    got.balance = -1  # a caller mutating its copy does not poison the cache
    assert (await store.load(Account, "a")).balance == 15
    assert await store.load(Account, "missing") is None
    assert cm.stats.misses == 1
    await store.close()


async def test_stale_cache_is_never_returned_after_another_writer(tmp_path, redis_prefix):
    url = f"sqlite://{tmp_path / 'shared.db'}"
    cm_a, cm_b = _two_level(redis_prefix), _two_level(redis_prefix)
    a = CachedEventStore(await EventStore.create(url), cm_a)
    b = CachedEventStore(await EventStore.create(url), cm_b)
    await a.save(_account("acc", 100))
    assert (await a.load(Account, "acc")).balance == 100  # A's L1 now holds version 1
    # B loads (L2 hit: A wrote through), deposits, saves.
    acc_b = await b.load(Account, "acc")
    assert cm_b.stats.l2_hits == 1
    acc_b.apply(CacheDeposited(amount=50))
    await b.save(acc_b)
    # A's L1 still has version 1; the version check catches it.
    acc_a = await a.load(Account, "acc")
    assert (acc_a.balance, acc_a.version) == (150, 2)
    # A third writer bypasses every cache; both caches are behind now.
    raw = await EventStore.create(url)
    fresh = await raw.load(Account, "acc")
    fresh.apply(CacheDeposited(amount=1))
    await raw.save(fresh)
    for s in (a, b):
        got = await s.load(Account, "acc")
        assert (got.balance, got.version) == (151, 3)
    assert cm_a.stats.stale >= 1 and cm_b.stats.stale >= 1
    # Deleted underneath: the cache does not resurrect it.
    await raw.delete_aggregate("acc")
    assert await a.load(Account, "acc") is None
    for s in (a, b, raw):
        await s.close()
    await cm_a.close()
    await cm_b.close()


async def test_l2_survives_a_new_process_cache(url, redis_prefix):
    store = await EventStore.create(url)
    writer = CachedEventStore(store, _two_level(redis_prefix))
    await writer.save(_account("x", 7))
    cold = _two_level(redis_prefix)  # empty L1, same Redis
    reader = CachedEventStore(store, cold)
    assert (await reader.load(Account, "x")).balance == 7
    assert (cold.stats.l2_hits, cold.stats.misses) == (1, 0)
    assert (await reader.load(Account, "x")).balance == 7
    assert cold.stats.l1_hits == 1  # promoted
    await writer.cache.close()
    await cold.close()


async def test_encrypted_store_keeps_ciphertext_in_redis(tmp_path, redis_prefix):
    import redis.asyncio as aioredis

    store = await EventStore.create(f"sqlite://{tmp_path / 'e.db'}",
                                    codec=encrypted_codec(KeyManager.generate("k1")))
    cm = _two_level(redis_prefix)
    cached = CachedEventStore(store, cm)
    await cached.save(_account("enc", 123456789))
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=redis_prefix + "*")]
    assert len(keys) == 1
    value = await client.get(keys[0])
    assert b"123456789" not in value
    await client.aclose()
    cold = _two_level(redis_prefix)
    assert (await CachedEventStore(store, cold).load(Account, "enc")).balance == 123456789
    assert cold.stats.l2_hits == 1
    await cm.close()
    await cold.close()
    await store.close()


async def test_redis_down_degrades_to_store(url):
    cm = CacheManager({"l2_cache": {"type": "redis", "url": "redis://127.0.0.1:1/0", "ttl": 60}})
    store = CachedEventStore(await EventStore.create(url), cm)
    with pytest.warns(RuntimeWarning, match="L2 cache at redis://127.0.0.1:1/0 failed"):
        await store.save(_account("d", 3))
    cm.l1.clear()
    assert (await store.load(Account, "d")).balance == 3
    assert cm.stats.l2_errors >= 1
    await cm.close()


async def test_l1_is_bounded_by_size(url):
    cm = CacheManager({"l1_cache": {"type": "memory", "size": "4KB", "ttl": None}})
    store = CachedEventStore(await EventStore.create(url), cm)
    for i in range(100):
        await store.save(_account(f"acc-{i}", i))
    assert cm.l1.bytes_used <= 4096
    assert cm.stats.evictions > 0
    assert 0 < cm.stats.l1_entries < 100
    # Evicted or not, every load is right.
    assert [(await store.load(Account, f"acc-{i}")).balance for i in (0, 50, 99)] == [0, 50, 99]


async def test_write_around_and_ttl_modes(url):
    cm = CacheManager({"cache_strategy": "write_around", "invalidation": "ttl"})
    store = CachedEventStore(await EventStore.create(url), cm)
    await store.save(_account("w", 1))
    assert cm.stats.l1_entries == 0  # not cached on save
    await store.load(Account, "w")
    assert cm.stats.misses == 1 and cm.stats.l1_entries == 1
    await store.load(Account, "w")
    assert cm.stats.l1_hits == 1


async def test_layout_change_is_a_miss(url):
    cm = CacheManager()
    store = CachedEventStore(await EventStore.create(url), cm)
    await store.save(_account("l", 4))

    class Account2(Account):  # noqa: D401 - another layout under another class
        __aggregate_type__ = "Account"
        note: str = ""

    got = await store.load(Account2, "l")
    assert got.balance == 4 and cm.stats.misses == 1


def test_config_errors_are_clear():
    with pytest.raises(ConfigurationError, match="size '256 parsecs' is invalid"):
        CacheManager({"l1_cache": {"type": "memory", "size": "256 parsecs"}})
    with pytest.raises(ConfigurationError, match="cache_strategy='write_back' is invalid"):
        CacheManager({"cache_strategy": "write_back"})
    with pytest.raises(ConfigurationError, match="invalidation='never' is invalid"):
        CacheManager({"invalidation": "never"})
    with pytest.raises(ConfigurationError, match="l2_cache type 'memcached' is invalid"):
        CacheManager({"l2_cache": {"type": "memcached"}})
    with pytest.raises(ConfigurationError, match=r"unknown CacheManager option\(s\) \['l3_cache'\]"):
        CacheManager({"l3_cache": {}})
    assert CacheManager({"l1_cache": {"size": "1.5KB"}}).l1.max_bytes == 1536


async def test_the_guide_snippet(tmp_path, redis_prefix):
    import eventuali
    from eventuali.performance import CacheManager as CM

    store = await EventStore.create(f"sqlite://{tmp_path / 'g.db'}")
    cache_manager = CM({
        "l1_cache": {"type": "memory", "size": "256MB", "ttl": 300},
        "l2_cache": {"type": "redis", "size": "1GB", "ttl": 3600, "key_prefix": redis_prefix},
        "cache_strategy": "write_through",
        "invalidation": "event_based",
    })
    cached_store = eventuali.CachedEventStore(store, cache_manager)
    await cached_store.save(_account("g", 1, 2))
    assert (await cached_store.load(Account, "g")).balance == 3
    assert await cached_store.stream_version("g") == 2  # other methods pass through
    await cache_manager.close()
    await cached_store.close()


async def test_tenants_sharing_a_cache_never_see_each_other(tmp_path):
    from eventuali.tenancy import TenantManager

    cm = CacheManager()
    async with TenantManager({"isolation_level": "row",
                              "base_url": f"sqlite://{tmp_path / 't.db'}"}) as m:
        acme = CachedEventStore(await m.get_store("acme"), cm)
        globex = CachedEventStore(await m.get_store("globex"), cm)
        await acme.save(_account("same-id", 100))
        assert await globex.load(Account, "same-id") is None
        await globex.save(_account("same-id", 1))
        assert (await acme.load(Account, "same-id")).balance == 100
        assert (await globex.load(Account, "same-id")).balance == 1


def test_sync_store_is_refused_clearly(tmp_path):
    from eventuali import SyncEventStore

    with SyncEventStore.create("memory://") as s, pytest.raises(ConfigurationError,
                                                              match="wraps the async EventStore"):
        CachedEventStore(s, CacheManager())


def test_importing_eventuali_loads_no_optional_dependency():
    import subprocess
    import sys

    code = ("import sys, eventuali, eventuali.performance; "
            "assert 'redis' not in sys.modules and 'prometheus_client' not in sys.modules; "
            "from eventuali.performance import CacheManager; from eventuali import CachedEventStore; "
            "assert CachedEventStore is __import__('eventuali.performance', fromlist=['x']).CachedEventStore")
    subprocess.run([sys.executable, "-c", code], check=True)
