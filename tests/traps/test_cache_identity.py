"""The Redis cache is keyed by the store's identity, not its URL (real Redis, every engine).

A database deleted and created again at the same URL is another store: its loads
never see the old database's cached aggregates.  A restored copy carries the id
along (documented), and ``reset_store_id`` separates it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from eventuali import EventStore, SyncEventStore
from eventuali.performance import CachedEventStore
from eventuali.store_identity import STORE_ID_CHECKPOINT, reset_store_id, store_id, sync_store_id
from eventuali.url import parse_url
from tests.test_caching import Account, _account, _two_level


@pytest.fixture
def persistent(target):
    backend, url = target
    if url.startswith("memory://"):
        pytest.skip("a memory store cannot be deleted and created again at its URL")
    return backend, url


def wipe(url: str) -> None:
    """Delete the database behind ``url`` (an SQLite file, a PostgreSQL schema)."""
    parsed = parse_url(url)
    if parsed.scheme == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.path + suffix).unlink(missing_ok=True)
        return
    import psycopg

    schema = parsed.options["schema"]
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def test_a_recreated_database_never_gets_the_old_databases_cached_state(
    persistent, redis_prefix
):
    backend, url = persistent
    old = CachedEventStore(await EventStore.create(url, backend=backend), _two_level(redis_prefix))
    await old.save(_account("acc", 100))  # written through to Redis at version 1
    assert (await old.load(Account, "acc")).balance == 100
    old_id = await store_id(old.store.backend)
    await old.close()
    await old.cache.close()

    wipe(url)
    plain = await EventStore.create(url, backend=backend)  # a new, empty database at the same URL
    await plain.save(_account("acc", 5))  # same aggregate id, same version 1, other state
    assert await store_id(plain.backend) != old_id
    fresh_cache = _two_level(redis_prefix)  # empty L1, the same Redis
    new = CachedEventStore(plain, fresh_cache)
    got = await new.load(Account, "acc")
    assert (got.balance, got.version) == (5, 1)
    assert fresh_cache.stats.l2_hits == 0 and fresh_cache.stats.misses == 1
    await new.close()
    await fresh_cache.close()


async def test_two_stores_on_one_database_share_the_cache(persistent, redis_prefix):
    backend, url = persistent
    a = CachedEventStore(await EventStore.create(url, backend=backend), _two_level(redis_prefix))
    b_cache = _two_level(redis_prefix)
    b = CachedEventStore(await EventStore.create(url, backend=backend), b_cache)
    await a.save(_account("shared", 7))
    assert (await b.load(Account, "shared")).balance == 7
    assert b_cache.stats.l2_hits == 1
    for s in (a, b):
        await s.close()
        await s.cache.close()


def test_the_id_lives_in_the_store_and_a_copy_shares_it_until_reset(target, tmp_path):
    backend, url = target
    store = SyncEventStore.create(url, backend=backend)
    try:
        first = sync_store_id(store.backend)
        assert first is not None and len(first) == 16
        assert sync_store_id(store.backend) == first  # written once, then read
        assert store.backend.get_checkpoint(STORE_ID_CHECKPOINT) == int(first, 16)
    finally:
        store.close()
    if not url.startswith("sqlite://"):
        return
    copy = tmp_path / "copy.db"
    shutil.copy(parse_url(url).path, copy)  # a restored backup is the same store, by its id
    copied = SyncEventStore.create(f"sqlite://{copy}", backend=backend)
    try:
        assert sync_store_id(copied.backend) == first
    finally:
        copied.close()


async def test_reset_store_id_separates_a_copy(target):
    backend, url = target
    store = await EventStore.create(url, backend=backend)
    try:
        before = await store_id(store.backend)
        after = await reset_store_id(store.backend)
        assert after != before and await store_id(store.backend) == after
    finally:
        await store.close()


async def test_a_store_that_cannot_keep_an_id_gets_private_cache_entries(target, redis_prefix):
    backend, url = target
    if not url.startswith("sqlite://"):
        pytest.skip("read-only mode (mode=ro) is an SQLite option")
    writer = await EventStore.create(url, backend=backend)
    await writer.save(_account("ro", 3))
    await writer.close()
    reader = await EventStore.create(url + "?mode=ro", backend=backend)
    cached = CachedEventStore(reader, _two_level(redis_prefix))
    with pytest.warns(RuntimeWarning, match="no store id .*private to this CachedEventStore"):
        assert (await cached.load(Account, "ro")).balance == 3
    other = CachedEventStore(reader, _two_level(redis_prefix))
    with pytest.warns(RuntimeWarning, match="no store id"):
        await other.load(Account, "ro")
    assert other.namespace != cached.namespace and other.cache.stats.l2_hits == 0
    await cached.close()
    for cm in (cached.cache, other.cache):
        await cm.close()


def test_an_export_does_not_carry_the_store_id_into_its_target(target, tmp_path):
    import io

    from eventuali.inspection.catalog import open_catalog
    from eventuali.inspection.transfer import export, import_export

    backend, url = target
    source = SyncEventStore.create(url, backend=backend)
    target_store = SyncEventStore.create(f"sqlite://{tmp_path / 'target.db'}", backend=backend)
    try:
        source.save(_account("exported", 4))
        source_id = sync_store_id(source.backend)
        out = io.StringIO()
        export(source.backend, open_catalog(source.backend, parse_url(url)), out)
        assert STORE_ID_CHECKPOINT not in out.getvalue()
        lines = out.getvalue().splitlines(keepends=True)
        import_export(target_store.backend, lambda: iter(lines))
        assert target_store.load(Account, "exported").balance == 4
        assert target_store.backend.get_checkpoint(STORE_ID_CHECKPOINT) is None
        assert sync_store_id(target_store.backend) != source_id
    finally:
        source.close()
        target_store.close()
