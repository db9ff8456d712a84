"""Personal data and forgetting (crypto-shredding), on every installed (engine, scheme) target.

The adversarial part greps the raw bytes an attacker would hold after
forgetting - the SQLite file and its WAL, snapshots, raw records as an export
reads them, Redis - for the personal data and for the subject's wrapped key.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Annotated

import pytest

from eventuali import Aggregate, Event, EventCodec, EventStore, SyncEventStore
from eventuali.errors import ConfigurationError, SerializationError, SubjectForgottenError
from eventuali.personal import FORGOTTEN, Personal, Subject
from eventuali.projections import Projection
from eventuali.security import KeyManager, encrypted_codec
from eventuali.security.keystore import SUBJECT_STREAM_PREFIX
from eventuali.security.personal_codec import PersonalData
from eventuali.snapshots import SnapshotConfig, SnapshotService, SyncSnapshotService
from eventuali.streaming import EventStreamer

EMAIL = "ada.lovelace.7781@example.org"
NAME = "Ada Lovelace-Byron"


class PdCustomerRegistered(Event):
    email: Annotated[str, Personal]
    name: Annotated[str, Personal]
    age: Annotated[int | None, Personal] = None
    plan: str


class PdOrderPlaced(Event):
    customer: Annotated[str, Subject]
    ship_to: Annotated[str, Personal]
    total: int


class PdCustomer(Aggregate):
    email: str = ""
    name: str = ""
    age: int | None = None
    plan: str = ""

    def apply_pd_customer_registered(self, e: PdCustomerRegistered) -> None:
        self.email, self.name, self.age, self.plan = e.email, e.name, e.age, e.plan


class PdOrder(Aggregate):
    ship_to: str = ""
    total: int = 0

    def apply_pd_order_placed(self, e: PdOrderPlaced) -> None:
        self.ship_to, self.total = e.ship_to, self.total + e.total


def _customer(cid: str = "cust-1", email: str = EMAIL) -> PdCustomer:
    c = PdCustomer(id=cid)
    c.apply(PdCustomerRegistered(email=email, name=NAME, age=36, plan="gold"))
    return c


def _order(oid: str = "order-1", customer: str = "cust-1") -> PdOrder:
    o = PdOrder(id=oid)
    o.apply(PdOrderPlaced(customer=customer, ship_to="12 Marylebone Road", total=40))
    return o


def _codec(kind: str, keys: KeyManager) -> EventCodec:
    if kind == "encrypted":
        return encrypted_codec(keys)
    return EventCodec(personal=PersonalData(keys))  # personal fields only: the rest in clear


@pytest.fixture(params=["encrypted", "personal-only"])
def kind(request) -> str:
    return request.param


async def test_personal_fields_round_trip_and_are_never_stored_in_clear(store_url, kind):
    url, backend = store_url
    store = await EventStore.create(url, backend=backend, codec=_codec(kind, KeyManager.generate()))
    await store.save(_customer(), _order())
    c = await store.load(PdCustomer, "cust-1")
    assert (c.email, c.name, c.age, c.plan) == (EMAIL, NAME, 36, "gold")
    assert (await store.load(PdOrder, "order-1")).ship_to == "12 Marylebone Road"
    # What an export reads: the raw records.  Personal fields are ciphertext there.
    raw = await store.backend.read_all(1, 1000)
    assert raw and all(EMAIL.encode() not in r.payload + r.metadata for r in raw)
    assert all(b"Marylebone" not in r.payload for r in raw)
    if kind == "personal-only":
        payload = (await store.backend.read_stream("cust-1"))[0].payload
        assert b'"plan":"gold"' in payload and f'"email":"{FORGOTTEN}"'.encode() in payload
    await store.close()


async def test_forget_replaces_personal_fields_everywhere_and_keeps_the_rest(store_url, kind):
    url, backend = store_url
    keys = KeyManager.generate()
    store = await EventStore.create(url, backend=backend, codec=_codec(kind, keys))
    await store.save(_customer(), _order(), _customer("cust-2"))
    seen: list = []
    store.on_forget(seen.append)
    result = await store.forget("cust-1")
    assert result.destroyed and set(result.streams) == {"cust-1", "order-1"}
    assert seen == [result]

    c = await store.load(PdCustomer, "cust-1")
    assert (c.email, c.name, c.age, c.plan, c.version) == (FORGOTTEN, FORGOTTEN, None, "gold", 1)
    o = await store.load(PdOrder, "order-1")
    assert (o.ship_to, o.total) == (FORGOTTEN, 40)
    assert (await store.load(PdCustomer, "cust-2")).email == EMAIL  # another subject is untouched
    # A fresh store on the same data (another process) sees the same.
    again = await EventStore.create(url, backend=backend, codec=_codec(kind, keys))
    assert (await again.load(PdCustomer, "cust-1")).email == FORGOTTEN
    events = [se.event for se in await again.read_all()]
    regs = [e for e in events if isinstance(e, PdCustomerRegistered)]
    assert sorted(e.email for e in regs) == sorted([FORGOTTEN, EMAIL])

    # Projections replay it with placeholders.
    class Emails(Projection):
        def __init__(self):
            self.emails = {}

        def handle_pd_customer_registered(self, e):
            self.emails[e.aggregate_id] = e.email

    streamer = EventStreamer(again)
    proj = Emails()
    await streamer.subscribe(proj)
    await streamer.catch_up()
    assert proj.emails == {"cust-1": FORGOTTEN, "cust-2": EMAIL}

    # Idempotent, logged once.
    second = await again.forget("cust-1")
    assert not second.destroyed
    log = await store.backend.read_stream("$forgotten")
    assert [r.event_type for r in log] == ["$eventuali.SubjectForgotten"]
    # The subject's personal data cannot come back under the same id; nothing is written.
    head = await store.head()
    with pytest.raises(SubjectForgottenError, match="cust-1"):
        await again.save(_order("order-9", customer="cust-1"))
    assert await store.head() == head and await store.stream_version("order-9") == 0
    await again.close()
    await store.close()


def test_sync_store_forgets_too(store_url):
    url, backend = store_url
    keys = KeyManager.generate()
    store = SyncEventStore.create(url, backend=backend, codec=encrypted_codec(keys))
    store.save(_customer())
    assert store.load(PdCustomer, "cust-1").email == EMAIL
    assert store.forget("cust-1").destroyed
    assert store.load(PdCustomer, "cust-1").email == FORGOTTEN
    assert not store.forget("cust-1").destroyed
    with pytest.raises(SubjectForgottenError):
        store.save_events([PdCustomerRegistered(aggregate_id="cust-1", email="x", name="y",
                                                plan="p")])
    store.close()


async def test_forgetting_deletes_the_snapshots_of_the_subjects_streams(store_url):
    url, backend = store_url
    store = await EventStore.create(url, backend=backend, codec=encrypted_codec(KeyManager.generate()))
    if "snapshots" not in store.backend.capabilities:
        await store.close()
        pytest.skip("engine has no snapshots")
    service = SnapshotService(store, SnapshotConfig(snapshot_frequency=0))
    o = _order()
    await store.save(_customer(), o)
    await service.create_snapshot(o)
    assert await store.backend.load_snapshot("order-1") is not None
    await store.forget("cust-1")
    assert await store.backend.load_snapshot("order-1") is None
    loaded = await service.load(PdOrder, "order-1")
    assert (loaded.ship_to, loaded.total) == (FORGOTTEN, 40)
    await store.close()


def _files(path: str) -> bytes:
    out = b""
    for suffix in ("", "-wal", "-journal"):
        if os.path.exists(path + suffix):
            with open(path + suffix, "rb") as f:
                out += f.read()
    return out


def test_no_byte_of_the_personal_data_or_its_key_is_left_in_the_sqlite_files(tmp_path, store_url):
    """Personal fields only (the rest clear), snapshots uncompressed: the worst case."""
    _, backend = store_url
    if "sqlite" not in store_url[0]:
        pytest.skip("file-level check: SQLite targets")
    path = str(tmp_path / "forget.db")
    url = f"sqlite:///{path}"
    keys = KeyManager.generate()
    store = SyncEventStore.create(url, backend=backend, codec=EventCodec(personal=PersonalData(keys)))
    service = SyncSnapshotService(store, SnapshotConfig(snapshot_frequency=0, compression_enabled=False))
    c = _customer()
    store.save(c, _customer("cust-2", "grace.hopper@example.org"))
    service.create_snapshot(c)  # the rebuilt state, EMAIL in clear
    key_record = store.backend.read_stream(SUBJECT_STREAM_PREFIX + "cust-1")[0]
    wrapped = json.loads(key_record.payload)["wrapped"].encode()  # as stored: base64 text
    assert EMAIL.encode() in _files(path) and wrapped in _files(path)  # the test can see them
    store.forget("cust-1")
    files = _files(path)  # while the store is open: the WAL is there too
    assert EMAIL.encode() not in files and NAME.encode() not in files
    assert wrapped not in files and wrapped[:12] not in files
    assert b"cust-2" in files  # the file is not simply empty
    store.close()
    assert EMAIL.encode() not in _files(path) and wrapped not in _files(path)


async def test_redis_entries_of_a_forgotten_subject_are_dropped(store_url):
    import redis.asyncio as aioredis

    from eventuali.performance.caching import CachedEventStore, CacheManager

    url, backend = store_url
    redis_url = os.environ.get("EVENTUALI_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        await client.aclose()
        if os.environ.get("EVENTUALI_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis at {redis_url} is required (EVENTUALI_REQUIRE_REDIS=1): {exc}")
        pytest.skip(f"Redis at {redis_url} is not reachable: {exc}")
    prefix = f"eventuali-test-{uuid.uuid4().hex}:"
    store = await EventStore.create(url, backend=backend,
                                    codec=EventCodec(personal=PersonalData(KeyManager.generate())))
    cached = CachedEventStore(store, CacheManager({
        "l2_cache": {"type": "redis", "url": redis_url, "key_prefix": prefix}}))
    await cached.save(_customer(), _customer("cust-2", "grace.hopper@example.org"))
    assert (await cached.load(PdCustomer, "cust-1")).email == EMAIL

    async def values() -> bytes:
        return b"".join([await client.get(k) or b"" async for k in client.scan_iter(match=prefix + "*")])

    assert EMAIL.encode() in await values()  # L2 of a store without master encryption: clear
    await store.forget("cust-1")  # through the store: the cache's hook runs
    assert EMAIL.encode() not in await values()
    assert b"gold" in await values()  # cust-2 stays cached
    assert (await cached.load(PdCustomer, "cust-1")).email == FORGOTTEN  # L1 dropped too
    async for k in client.scan_iter(match=prefix + "*"):
        await client.delete(k)
    await client.aclose()
    await cached.close()


def test_declarations_are_checked():
    class PdBadAge(Event):
        age: Annotated[int, Personal]  # neither "<forgotten>" nor None fits

    class PdGoodAge(Event):
        age: Annotated[int, Personal(placeholder=-1)]

    store = SyncEventStore.create("memory://", codec=encrypted_codec(KeyManager.generate()))
    with pytest.raises(ConfigurationError, match=r"PdBadAge\.age.*Personal\(placeholder="):
        store.save_events([PdBadAge(aggregate_id="a", age=3)])
    assert store.head() == 0
    store.save_events([PdGoodAge(aggregate_id="a", age=3)])
    assert store.forget("a").destroyed
    assert store.load_events("a")[0].age == -1
    # A store that does not protect personal data refuses to write it in clear.
    plain = SyncEventStore.create("memory://")
    with pytest.raises(SerializationError, match="personal fields"):
        plain.save(_customer())
    with pytest.raises(ConfigurationError, match="nothing to forget"):
        plain.forget("cust-1")
    store.close()
    plain.close()


@pytest.mark.parametrize("isolation", ["row", "database"])
async def test_tenants_with_the_same_subject_ids_are_forgotten_apart(store_url, isolation):
    """One codec for two tenants: each tenant store has its own data keys."""
    from eventuali.tenancy import TenantManager

    url, backend = store_url
    codec = encrypted_codec(KeyManager.generate())
    m = TenantManager({"isolation_level": isolation, "base_url": url, "codec": codec,
                       "backend": backend})
    acme, globex = await m.get_store("acme"), await m.get_store("globex")
    await acme.save(_customer())
    await globex.save(_customer("cust-1", "grace.hopper@example.org"))
    assert (await acme.forget("cust-1")).destroyed
    assert (await acme.load(PdCustomer, "cust-1")).email == FORGOTTEN
    assert (await globex.load(PdCustomer, "cust-1")).email == "grace.hopper@example.org"
    await m.close()


async def test_another_store_sees_the_forgetting_after_its_cache_ttl(store_url):
    url, backend = store_url
    keys = KeyManager.generate()
    writer = await EventStore.create(url, backend=backend, codec=encrypted_codec(keys))
    reader = await EventStore.create(  # as another process would: its own key cache
        url, backend=backend, codec=encrypted_codec(keys, personal=PersonalData(keys, cache_ttl=0)))
    await writer.save(_customer())
    assert (await reader.load(PdCustomer, "cust-1")).email == EMAIL  # its key is now cached
    await writer.forget("cust-1")
    assert (await reader.load(PdCustomer, "cust-1")).email == FORGOTTEN

    class Names(Projection):  # projections decode record by record, with the keys just loaded
        def __init__(self):
            self.names = []

        def handle_pd_customer_registered(self, e):
            self.names.append(e.name)

    await writer.save(_customer("cust-3"))
    streamer, proj = EventStreamer(reader), Names()
    await streamer.subscribe(proj)
    await streamer.catch_up()
    assert proj.names == [FORGOTTEN, NAME]
    with pytest.raises(ConfigurationError, match="cache_ttl"):
        PersonalData(keys, cache_ttl=-1)
    await writer.close()
    await reader.close()
