"""Multi-tenancy through the public API: isolation (adversarial), tuning knobs, metrics."""

from __future__ import annotations

import asyncio
import uuid
import warnings

import pytest

from eventuali import (
    Aggregate,
    ConfigurationError,
    Event,
    EventStore,
    EventStreamer,
    InvalidInputError,
    OptimisticConcurrencyError,
    StoredProjection,
)
from eventuali.security import DecryptionError, EventEncryption, KeyManager
from eventuali.serialization import EventCodec
from eventuali.snapshots import SnapshotWarning
from eventuali.tenancy import TenantEventStore, TenantManager


class TenantOrderPlaced(Event):
    amount: int


class Order(Aggregate):
    total: int = 0

    def apply_tenant_order_placed(self, event: TenantOrderPlaced) -> None:
        self.total += event.amount


def _order(id: str, *amounts: int) -> Order:
    o = Order(id=id)
    for a in amounts:
        o.apply(TenantOrderPlaced(amount=a))
    return o


@pytest.fixture(params=["memory", "sqlite"])
def base_url(request, tmp_path):
    if request.param == "memory":
        return f"memory://tenancy-{uuid.uuid4().hex}"
    return f"sqlite://{tmp_path / 'events.db'}"


@pytest.fixture(params=["database", "row"])
async def manager(request, base_url):
    m = TenantManager({"isolation_level": request.param, "base_url": base_url})
    yield m
    await m.close()


async def test_same_aggregate_ids_never_mix(manager):
    acme = await manager.get_store("acme")
    globex = await manager.get_store("globex")
    assert isinstance(acme, TenantEventStore) and acme.tenant_id == "acme"
    await acme.save(_order("order-1", 10, 20))
    await globex.save(_order("order-1", 5))  # same id, other tenant: its own stream
    assert (await acme.load(Order, "order-1")).total == 30
    assert (await globex.load(Order, "order-1")).total == 5
    assert len(await acme.load_events_by_type("Order")) == 2
    assert len(await globex.load_events_by_type("Order")) == 1
    assert [se.event.amount for se in await globex.read_all()] == [5]


async def test_a_tenant_cannot_reach_another_tenants_events(manager):
    acme = await manager.get_store("acme")
    evil = await manager.get_store("evil")
    await acme.save(_order("secret", 999))
    # Every read path, with every id an attacker might try.
    for guess in ("secret", "acme/secret", "/secret", "../acme/secret", "acme%2Fsecret"):
        assert await evil.load(Order, guess) is None
        assert await evil.load_events(guess) == []
        assert await evil.stream_version(guess) == 0
    assert await evil.read_all() == []
    assert await evil.read_all(aggregate_id_prefix="acme") == []
    assert await evil.load_events_by_type(Order) == []
    with pytest.raises(InvalidInputError, match="tenant 'evil' cannot read tenant 'acme'"):
        await evil.read_all(tenant="acme")
    # Writing under the victim's id does not touch the victim's stream.
    await evil.save(_order("secret", 1))
    assert (await acme.load(Order, "secret")).total == 999
    assert await acme.stream_version("secret") == 1
    # Deleting under the victim's id does not delete the victim's stream.
    await evil.delete_aggregate("secret")
    assert (await acme.load(Order, "secret")).total == 999


async def test_row_isolation_stamps_the_tenant_in_the_shared_store(base_url):
    async with TenantManager({"isolation_level": "row", "base_url": base_url}) as m:
        await (await m.get_store("acme")).save(_order("o", 1))
        await (await m.get_store("globex")).save(_order("o", 2))
        raw = await EventStore.create(base_url)
        records = await raw.backend.read_all()
        assert sorted((r.tenant, r.stream_id) for r in records) == [
            ("acme", "acme/o"), ("globex", "globex/o")
        ]
        only = await raw.read_all(tenant="globex")
        assert [se.event.amount for se in only] == [2]
        if not base_url.startswith("memory"):
            await raw.close()


async def test_database_isolation_uses_one_file_per_tenant(tmp_path):
    m = TenantManager({"isolation_level": "database", "base_url": f"sqlite://{tmp_path / 'app.db'}"})
    await (await m.get_store("acme")).save(_order("o", 1))
    await (await m.get_store("globex")).save(_order("o", 2))
    await m.close()
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["app.acme.db", "app.globex.db"]
    plain = await EventStore.create(f"sqlite://{tmp_path / 'app.acme.db'}")
    assert (await plain.load(Order, "o")).total == 1
    await plain.close()


async def test_per_tenant_folders_are_made_on_first_use(tmp_path):
    async with TenantManager({"base_url": f"sqlite://{tmp_path}/{{tenant}}/events.db"}) as m:
        await (await m.get_store("acme-eu")).save(_order("o", 3))
        assert (await (await m.get_store("acme-eu")).load(Order, "o")).total == 3
    assert (tmp_path / "acme-eu" / "events.db").is_file()


def test_tenant_urls_for_each_scheme():
    pg = TenantManager({"base_url": "postgresql://u:pw@db/app"})
    assert pg.tenant_url("acme") == "postgresql://u:pw@db/app?schema=eventuali_acme"
    pg2 = TenantManager({"base_url": "postgresql://db/app?schema=shop&x=1"})
    assert pg2.tenant_url("acme") == "postgresql://db/app?schema=shop_acme&x=1"
    assert pg.tenant_url("acme-eu") == "postgresql://u:pw@db/app?schema=eventuali_acme_eu"
    assert pg.tenant_url("x" * 48).endswith("schema=eventuali_" + "x" * 48)
    long_prefix = TenantManager({"base_url": "postgresql://db/app?schema=" + "p" * 20})
    with pytest.raises(ConfigurationError, match="PostgreSQL allows 63"):
        long_prefix.tenant_url("x" * 48)
    tmpl = TenantManager({"base_url": "sqlite:///data/{tenant}/events.db"})
    assert tmpl.tenant_url("acme") == "sqlite:///data/acme/events.db"
    assert TenantManager({"base_url": "memory://app"}).tenant_url("a") == "memory://app.a"


async def test_tenant_ids_are_validated(manager):
    for bad in ("", "Acme", "a/b", "a b", "x" * 49, "-lead", "trail-", "under_score", None,
                "tenant:1", "a.b"):
        with pytest.raises(InvalidInputError, match="is invalid; a tenant id matches"):
            await manager.get_store(bad)
    with pytest.raises(InvalidInputError, match="'../etc'"):
        manager.is_high_volume_tenant("../etc")


def test_config_errors_are_clear():
    with pytest.raises(ConfigurationError, match="isolation_level='schema' is invalid"):
        TenantManager({"isolation_level": "schema"})
    with pytest.raises(ConfigurationError, match=r"unknown TenantManager option\(s\) \['isolaton'\]"):
        TenantManager({"isolaton": "row"})


async def test_the_guide_snippet(base_url, tmp_path):
    tenant_manager = TenantManager({
        "isolation_level": "database",
        "connection_pool_per_tenant": True,
        "cache_tenant_config": True,
        "metrics_collection": True,
        "base_url": base_url,
        "high_volume_threshold": 3,
    })
    seed = await tenant_manager.get_store("big")
    await seed.save(_order("o1", 1, 2), _order("o2", 3))

    async def process_tenant_events(tenant_id: str):
        tenant_store = await tenant_manager.get_store(tenant_id)
        if tenant_manager.is_high_volume_tenant(tenant_id):
            await tenant_store.enable_batch_mode()
            await tenant_store.set_snapshot_frequency(50)
        events = await tenant_store.load_events_by_type("Order")
        return len(events)

    assert await process_tenant_events("big") == 3
    assert seed.batch_mode and seed.snapshot_frequency == 50
    assert await process_tenant_events("small") == 0
    assert not (await tenant_manager.get_store("small")).batch_mode
    await tenant_manager.close()


async def test_high_volume_is_declared_or_measured(base_url):
    async with TenantManager({"base_url": base_url, "high_volume_tenants": ["vip"],
                              "high_volume_threshold": 5}) as m:
        assert m.is_high_volume_tenant("vip")
        busy = await m.get_store("busy")
        await busy.save(_order("a", 1, 1, 1, 1))
        assert not m.is_high_volume_tenant("busy")
        await busy.save(_order("b", 1))
        assert m.is_high_volume_tenant("busy")
        m.mark_high_volume("busy", False)  # declared status does not hide measured volume
        assert m.is_high_volume_tenant("busy")


async def test_per_tenant_metrics(manager):
    a = await manager.get_store("a")
    await a.save(_order("x", 1, 2, 3))
    await a.load(Order, "x")
    with pytest.raises(OptimisticConcurrencyError, match="stream 'x'"):
        await a.save(_order("x", 1))  # stale: the message names the tenant's own id
    m = manager.get_tenant_metrics("a")
    assert (m.events_written, m.appends, m.errors) == (3, 1, 1)
    assert m.events_read == 3 and m.reads == 1
    assert manager.get_tenant_metrics("b").events_written == 0
    assert manager.get_all_metrics()["a"]["events_written_last_minute"] == 3


async def test_batch_mode_groups_concurrent_saves_and_isolates_conflicts(manager):
    store = await manager.get_store("batchy")
    await store.save(_order("taken", 1))
    calls = []
    inner_append = store.backend.inner.append

    async def counting(writes, checkpoint=None):
        calls.append(len(writes))
        return await inner_append(writes, checkpoint)

    store.backend.inner.append = counting
    await store.enable_batch_mode(batch_size=1000, max_wait_ms=20)
    orders = [_order(f"o-{i}", i) for i in range(20)]
    stale = _order("taken", 5)  # conflicts: "taken" already has version 1
    results = await asyncio.gather(*(store.save(o) for o in orders), store.save(stale),
                                   return_exceptions=True)
    assert all(r is None for r in results[:20])
    assert isinstance(results[20], OptimisticConcurrencyError)
    # One combined attempt, then each save alone to find the culprit.
    assert calls[0] == 21 and len(calls) == 22
    for i in (0, 7, 19):
        assert (await store.load(Order, f"o-{i}")).total == i
    assert (await store.load(Order, "taken")).total == 1
    calls.clear()
    await asyncio.gather(*(store.save(_order(f"p-{i}", 1)) for i in range(10)))
    assert calls == [10]
    store.backend.inner.append = inner_append


async def test_snapshots_every_n_events(manager):
    store = await manager.get_store("snappy")
    await store.set_snapshot_frequency(3)
    o = _order("s", 1, 1)
    await store.save(o)
    assert await store.backend.load_snapshot("s") is None
    o.apply(TenantOrderPlaced(amount=1))
    o.apply(TenantOrderPlaced(amount=1))
    await store.save(o)  # crossed version 3
    snap = await store.backend.load_snapshot("s")
    assert snap is not None and snap.version == 4
    o.apply(TenantOrderPlaced(amount=10))
    await store.save(o)
    reads = _spy_reads(store)
    loaded = await store.load(Order, "s")
    assert (loaded.total, loaded.version) == (14, 5)
    assert reads == [5]  # only the event after the snapshot was read
    del store.backend.inner.read_stream  # the engine's own method again
    with pytest.raises(InvalidInputError, match="snapshot frequency 0 is invalid"):
        await store.set_snapshot_frequency(0)


def _spy_reads(store):
    """Record the from_version of every read_stream the tenant store's engine serves."""
    reads = []
    inner_read = store.backend.inner.read_stream

    async def spying(stream_id, from_version=1, *args):
        reads.append(from_version)
        return await inner_read(stream_id, from_version, *args)

    store.backend.inner.read_stream = spying
    return reads


def _encrypting_manager(base_url, isolation="row"):
    keys = {"acme": KeyManager.generate("acme-1"), "globex": KeyManager.generate("globex-1")}
    return TenantManager({"isolation_level": isolation, "base_url": base_url,
                          "codec": lambda t: EventCodec(transforms=[EventEncryption(keys[t])])})


def _legacy_wrapped(payload, codec, stream_id, version):
    """A snapshot payload as tenant stores wrote it before this version: a second,
    tenant-level layer of the codec's transforms, marked b"\xffEW"."""
    from eventuali.serialization import RecordIdentity

    ident = RecordIdentity(b"eventuali-snap\x00\x00", stream_id, version)
    return b"\xffEW" + bytes((len(codec.transforms),)) + codec.wrap(payload, ident)


async def test_encrypted_tenants_with_their_own_keys(base_url):
    m = _encrypting_manager(base_url)
    acme = await m.get_store("acme")
    await acme.set_snapshot_frequency(1)
    await acme.save(_order("o", 42))
    assert (await acme.load(Order, "o")).total == 42
    stored = await acme.backend.inner.load_snapshot("acme/o")  # as it lies in the store
    # One layer of the tenant's encryption (the snapshot service's), not two.
    from eventuali.snapshots import unprotect

    assert stored.payload[:3] == b"\xffSP"
    plain = unprotect(stored.payload, acme.codec, "o", 1)
    assert plain[:2] == b"ES"
    # No 8-byte piece of the clear snapshot lies in the stored one (a 2-byte probe such
    # as b"42" turns up in random ciphertext about once in 200 runs).
    assert len(plain) > 16
    assert not any(plain[i : i + 8] in stored.payload for i in range(len(plain) - 8))
    globex = await m.get_store("globex")
    with pytest.raises(DecryptionError):  # another tenant's key
        unprotect(stored.payload, globex.codec, "o", 1)
    # A snapshot moved to another stream does not decrypt; load falls back to the events.
    await acme.save(_order("p", 7))
    await acme.backend.inner.save_snapshot(stored._replace(stream_id="acme/p"))
    with pytest.raises(DecryptionError, match="another event"):
        unprotect((await acme.backend.load_snapshot("p")).payload, acme.codec, "p", 1)
    with pytest.warns(SnapshotWarning, match="replaying"):
        assert (await acme.load(Order, "p")).total == 7
    await m.close()


@pytest.mark.parametrize("isolation", ["database", "row"])
async def test_encrypted_tenant_store_loads_from_its_snapshot(base_url, isolation):
    m = _encrypting_manager(base_url, isolation)
    acme = await m.get_store("acme")
    await acme.set_snapshot_frequency(3)
    o = _order("s", 1, 2, 3)
    await acme.save(o)  # snapshot at version 3
    o.apply(TenantOrderPlaced(amount=10))
    await acme.save(o)
    reads = _spy_reads(acme)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ignored snapshot warns
        loaded = await acme.load(Order, "s")
    assert (loaded.total, loaded.version) == (16, 4)
    assert reads == [4]  # only the event after the snapshot was read
    await m.close()


@pytest.mark.parametrize("written_by", ["double-wrapped", "tenant layer only"])
async def test_snapshots_written_by_older_tenant_stores_still_load(base_url, written_by):
    """Before this version a tenant store wrapped snapshots in a tenant layer of its own:
    over the service's protection (since 5dc9b46), or over the plain snapshot (before)."""
    from eventuali.snapshots import SnapshotCodec, SnapshotConfig, protect

    m = _encrypting_manager(base_url)
    acme = await m.get_store("acme")
    o = _order("s", 1, 2, 3)
    await acme.save(o)
    o.apply(TenantOrderPlaced(amount=10))
    await acme.save(o)
    three = _order("s", 1, 2, 3)
    three.mark_events_as_committed()
    snap = SnapshotCodec(SnapshotConfig()).encode(three)  # as the service encodes it
    assert snap.version == 3
    payload = snap.payload
    if written_by == "double-wrapped":
        payload = protect(payload, acme.codec, "s", 3)
    legacy = _legacy_wrapped(payload, acme.codec, "s", 3)
    await acme.backend.inner.save_snapshot(snap._replace(stream_id="acme/s", payload=legacy))
    await acme.set_snapshot_frequency(100)  # loads go through the snapshot from now on
    reads = _spy_reads(acme)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = await acme.load(Order, "s")
    assert (loaded.total, loaded.version) == (16, 4) and reads == [4]
    await m.close()


class OrderTotals(StoredProjection):
    compact_every = 2

    def handle_tenant_order_placed(self, e):
        self.state.put(e.aggregate_id, self.state.get(e.aggregate_id, 0) + e.amount)


async def _order_totals(store):
    s, p = EventStreamer(store), OrderTotals()
    await s.configure(batch_size=1)  # one change-log record per event: compacts every 2
    sub = await s.subscribe(p)
    await s.catch_up()
    return p, sub


async def test_stored_projection_on_an_encrypted_tenant_store(base_url):
    from eventuali.snapshots import unprotect

    m = _encrypting_manager(base_url)
    acme = await m.get_store("acme")
    for i in range(4):
        await acme.save(_order(f"o{i}", 1000 + i))
    p, _ = await _order_totals(acme)
    assert p.state.to_dict() == {f"o{i}": 1000 + i for i in range(4)}
    stored = await acme.backend.inner.load_snapshot("acme/$projection:OrderTotals")
    assert stored.version == 4 and stored.payload[:3] == b"\xffSP"  # one layer
    assert unprotect(stored.payload, acme.codec, "$projection:OrderTotals", 4)[:1] == b"x"  # zlib
    await acme.save(_order("o4", 1004))
    await _order_totals(acme)  # a change-log record after the snapshot
    for r in await acme.backend.inner.read_stream("acme/$projection:OrderTotals"):
        assert b"1004" not in r.payload and r.payload[:1] != b"{"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p2, sub = await _order_totals(acme)
    assert p2.state.to_dict() == {f"o{i}": 1000 + i for i in range(5)} and sub.processed == 0
    await m.close()


@pytest.mark.parametrize("tenant_layer", ["readable", "another tenant's key"])
async def test_read_model_snapshot_written_by_an_older_tenant_store(base_url, tenant_layer):
    """An old tenant-layer snapshot loads; one whose tenant layer does not decrypt makes
    the projection rebuild with a warning, never fail to start."""
    m = _encrypting_manager(base_url)
    acme, globex = await m.get_store("acme"), await m.get_store("globex")
    for i in range(4):
        await acme.save(_order(f"o{i}", 1000 + i))
    p, _ = await _order_totals(acme)
    expected = p.state.to_dict()
    stored = await acme.backend.inner.load_snapshot("acme/$projection:OrderTotals")
    assert stored.version == 4
    codec = acme.codec if tenant_layer == "readable" else globex.codec
    legacy = _legacy_wrapped(stored.payload, codec, "$projection:OrderTotals", 4)
    await acme.backend.inner.save_snapshot(stored._replace(payload=legacy))
    if tenant_layer == "readable":
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            p2, sub = await _order_totals(acme)
        assert sub.processed == 0
    else:
        with pytest.warns(RuntimeWarning) as warned:
            p2, sub = await _order_totals(acme)
        assert any("read-model snapshot of 'OrderTotals' is unreadable" in str(w.message)
                   for w in warned)
    assert p2.state.to_dict() == expected
    await m.close()


async def test_settings_survive_reopen_when_cached(base_url):
    m = TenantManager({"base_url": base_url, "cache_tenant_config": True})
    s = await m.get_store("t1")
    await s.enable_batch_mode(batch_size=7)
    await s.set_snapshot_frequency(9)
    await s.close()
    assert m.open_tenants == []
    again = await m.get_store("t1")
    assert again is not s and again.batch_mode and again.snapshot_frequency == 9
    await m.close()


async def test_records_of_another_tenant_are_dropped_even_if_an_engine_returns_them(base_url):
    async with TenantManager({"isolation_level": "row", "base_url": base_url}) as m:
        acme = await m.get_store("acme")
        evil = await m.get_store("evil")
        await acme.save(_order("o", 5))
        await evil.save(_order("o", 1))
        leaked = await acme.backend.inner.read_all()  # everything, both tenants

        async def broken_read_all(*args, **kwargs):  # an engine that ignores the filter
            return leaked

        async def broken_read_stream(*args, **kwargs):
            return leaked

        evil.backend.inner.read_all = broken_read_all
        evil.backend.inner.read_stream = broken_read_stream
        seen = await evil.read_all()
        assert [se.event.amount for se in seen] == [1]
        assert [e.amount for e in await evil.load_events("o")] == [1]
