"""Snapshots: faster loads that are never wrong, through the public API, on every store."""

from __future__ import annotations

import pytest

from eventuali import (
    Aggregate,
    ConfigurationError,
    InvalidInputError,
    SerializationError,
    SnapshotConfig,
    SnapshotService,
    SnapshotWarning,
    SyncSnapshotService,
)
from eventuali.snapshots import SnapshotCodec

from .domain import Account, Deposited, Withdrawn


async def _account(store, n: int, save_every: int = 10) -> Account:
    acc = Account(id="acc-1")
    for i in range(n):
        acc.apply(Deposited(amount=i) if i % 3 else Withdrawn(amount=1))
        if (i + 1) % save_every == 0:
            await store.save(acc)
    await store.save(acc)
    return acc


async def test_load_with_snapshot_equals_full_replay(store):
    svc = SnapshotService(store, SnapshotConfig(snapshot_frequency=0))
    acc = await _account(store, 120)
    snap = await svc.create_snapshot(acc)
    assert snap.version == 120
    acc.apply(Deposited(amount=1000))
    await store.save(acc)
    loaded = await svc.load_with_snapshot(Account, "acc-1")
    assert loaded == await store.load(Account, "acc-1")
    assert loaded.version == 121 and loaded.balance == acc.balance
    assert not loaded.has_uncommitted_events()


async def test_automatic_snapshots_every_frequency_and_cleanup(store):
    SnapshotService(store, SnapshotConfig(snapshot_frequency=25, max_snapshots=2))
    await _account(store, 130, save_every=10)
    # saves at 10, 20, ... 130; those crossing a multiple of 25 snapshot at the saved
    # version: 30, 50, 80, 100, 130 - and cleanup keeps the two newest
    load = store.backend.load_snapshot
    assert (await load("acc-1")).version == 130
    assert (await load("acc-1", max_version=129)).version == 100
    assert await load("acc-1", max_version=99) is None


async def test_no_snapshot_loads_from_events(store):
    svc = SnapshotService(store)
    acc = await _account(store, 7)
    assert await svc.load_with_snapshot(Account, "acc-1") == acc
    assert await svc.load_with_snapshot(Account, "nope") is None


async def test_compression_saves_space(store):
    svc = SnapshotService(store, SnapshotConfig(snapshot_frequency=0, compression_enabled=True))
    acc = await _account(store, 300)
    await svc.create_snapshot(acc)
    assert svc.codec.compression_ratio < 0.7
    plain = SnapshotCodec(SnapshotConfig(compression_enabled=False))
    assert len(plain.encode(acc).payload) > len((await store.backend.load_snapshot("acc-1")).payload)


async def test_corrupt_snapshot_is_ignored_with_a_warning(store):
    svc = SnapshotService(store, SnapshotConfig(snapshot_frequency=0))
    acc = await _account(store, 50)
    snap = await svc.create_snapshot(acc)
    bad = bytearray(snap.payload)
    bad[-5] ^= 0xFF
    await store.backend.save_snapshot(snap._replace(payload=bytes(bad)))
    with pytest.warns(SnapshotWarning, match="checksum"):
        loaded = await svc.load_with_snapshot(Account, "acc-1")
    assert loaded == acc
    await store.backend.save_snapshot(snap._replace(payload=b"garbage"))
    with pytest.warns(SnapshotWarning, match="format"):
        assert await svc.load_with_snapshot(Account, "acc-1") == acc


async def test_snapshot_of_an_older_class_layout_is_not_used(store):
    svc = SnapshotService(store, SnapshotConfig(snapshot_frequency=0))
    acc = await _account(store, 40)
    await svc.create_snapshot(acc)

    class Account(Aggregate):  # same stored type, one more field: a new layout
        __aggregate_type__ = "Account"
        balance: int = 0
        history: list[int] = []
        owner: str = "nobody"
        deposits: int = 0

        def apply_deposited(self, e):
            self.balance += e.amount
            self.history.append(e.amount)
            self.deposits += 1

        def apply_withdrawn(self, e):
            self.balance -= e.amount
            self.history.append(-e.amount)

    with pytest.warns(SnapshotWarning, match="layout"):
        loaded = await svc.load_with_snapshot(Account, "acc-1")
    assert loaded.deposits == sum(1 for i in range(40) if i % 3)  # replayed, not defaulted

    class Account2(Account):
        __aggregate_type__ = "Account"
        __snapshot_version__ = 2

    await svc.create_snapshot(loaded)
    with pytest.warns(SnapshotWarning, match="layout"):
        again = await svc.load_with_snapshot(Account2, "acc-1")
    assert again.deposits == loaded.deposits


async def test_refuses_unsaved_or_lossy_state(store):
    svc = SnapshotService(store, SnapshotConfig(snapshot_frequency=0))
    acc = await _account(store, 5)
    acc.apply(Deposited(amount=1))
    with pytest.raises(InvalidInputError, match="unsaved"):
        await svc.create_snapshot(acc)
    await store.save(acc)
    acc.__pydantic_extra__["seen"] = {1, 2}  # an untyped set comes back from JSON as a list
    with pytest.raises(SerializationError, match="seen"):
        await svc.create_snapshot(acc)
    assert await store.backend.load_snapshot("acc-1") is None


async def test_automatic_snapshot_failure_only_warns(store):
    SnapshotService(store, SnapshotConfig(snapshot_frequency=2))
    acc = Account(id="acc-1")
    acc.__pydantic_extra__["seen"] = {1}
    acc.apply(Deposited(amount=1))
    acc.apply(Deposited(amount=2))
    with pytest.warns(SnapshotWarning, match="automatic snapshot"):
        await store.save(acc)
    assert (await store.load(Account, "acc-1")).balance == 3


def test_sync_service(sync_store):
    svc = SyncSnapshotService(sync_store, SnapshotConfig(snapshot_frequency=10))
    acc = Account(id="s-1")
    for i in range(35):
        acc.apply(Deposited(amount=i))
        sync_store.save(acc)
    assert sync_store.backend.load_snapshot("s-1").version == 30
    assert svc.load_with_snapshot(Account, "s-1") == sync_store.load(Account, "s-1")


async def test_wrong_store_kind_and_bad_config(store, sync_store):
    with pytest.raises(ConfigurationError, match="SyncSnapshotService"):
        SnapshotService(sync_store)
    with pytest.raises(ConfigurationError, match="SnapshotService"):
        SyncSnapshotService(store)
    with pytest.raises(ConfigurationError, match="max_snapshots"):
        SnapshotConfig(max_snapshots=0)
    with pytest.raises(ConfigurationError, match="snapshot_frequency"):
        SnapshotConfig(snapshot_frequency=-1)


async def test_snapshots_of_an_encrypted_store_are_encrypted(tmp_path):
    """A store that encrypts its events must not write the aggregate's state in clear text."""
    from eventuali import EventStore, SnapshotConfig, SnapshotService
    from eventuali.demo import Account
    from eventuali.security import KeyManager, encrypted_codec

    keys = KeyManager({"k1": KeyManager.generate_key()})
    url = f"sqlite:///{tmp_path}/enc.db"
    store = await EventStore.create(url, codec=encrypted_codec(keys))
    service = SnapshotService(store, SnapshotConfig(snapshot_frequency=0, compression_enabled=False))
    acc = Account(id="secret-acc")
    acc.open("Very Secret Owner")
    await store.save(acc)
    await service.create_snapshot(acc)
    raw = await store.backend.load_snapshot("secret-acc")
    assert raw is not None and b"Very Secret Owner" not in raw.payload
    loaded = await service.load_with_snapshot(Account, "secret-acc")
    assert loaded is not None and loaded.model_dump() == acc.model_dump()
    await store.close()

    # Without the key the snapshot is ignored with a warning, never loaded as garbage.
    other_keys = KeyManager({"k2": KeyManager.generate_key()})
    other = await EventStore.create(url, codec=encrypted_codec(other_keys))
    svc = SnapshotService(other, SnapshotConfig(snapshot_frequency=0))
    with pytest.warns(SnapshotWarning, match="cannot be decrypted"):
        snap = svc.codec.unprotected(await other.backend.load_snapshot("secret-acc"), other.codec)
    assert snap is None
    await other.close()
