"""Payload encryption through the public API: round trips, rotation, binding, errors."""

from __future__ import annotations

import sqlite3

import pytest

from eventuali import Aggregate, Event, EventCodec, EventStore, SerializationError, SyncEventStore
from eventuali.compression import ZlibCompression
from eventuali.security import (
    DecryptionError,
    EncryptionError,
    EventEncryption,
    KeyManager,
    UnknownKeyError,
    encrypted_codec,
)
from eventuali.serialization import RecordIdentity


class VaultSecretNoted(Event):
    text: str


class Vault(Aggregate):
    notes: list[str] = []

    def apply_vault_secret_noted(self, event: VaultSecretNoted) -> None:
        self.notes = [*self.notes, event.text]


@pytest.fixture(params=["memory", "sqlite"])
def url(request, tmp_path):
    return "memory://" if request.param == "memory" else f"sqlite://{tmp_path / 'sec.db'}"


def _vault(*texts: str, id: str = "v-1") -> Vault:
    v = Vault(id=id)
    for t in texts:
        v.apply(VaultSecretNoted(text=t))
    return v


async def test_round_trip_and_ciphertext_at_rest(url):
    keys = KeyManager.generate("k1")
    store = await EventStore.create(url, codec=EventCodec(transforms=[EventEncryption(keys)]))
    await store.save(_vault("launch code 0000", "second"))
    loaded = await store.load(Vault, "v-1")
    assert loaded.notes == ["launch code 0000", "second"]
    assert loaded.version == 2
    records = await store.backend.read_stream("v-1")
    for r in records:
        assert r.payload[:1] == b"e"
        assert b"launch code" not in r.payload
        assert b"k1" in r.payload[:8]  # the key id is in the header
    await store.close()


def test_sqlite_file_holds_no_plaintext(tmp_path):
    path = tmp_path / "plain.db"
    keys = KeyManager.generate("k1")
    with SyncEventStore.create(f"sqlite://{path}", codec=encrypted_codec(keys)) as store:
        store.save(_vault("top-secret-marker"))
        assert store.load(Vault, "v-1").notes == ["top-secret-marker"]
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    for f in tmp_path.iterdir():
        assert b"top-secret-marker" not in f.read_bytes(), f


async def test_rotation_old_keys_still_decrypt_new_writes_use_current(url):
    keys = KeyManager.generate("old")
    store = await EventStore.create(url, codec=EventCodec(transforms=[EventEncryption(keys)]))
    v = _vault("before rotation")
    await store.save(v)
    new_id = keys.rotate("new")
    assert new_id == "new" and keys.current_key_id == "new"
    v.apply(VaultSecretNoted(text="after rotation"))
    await store.save(v)
    recs = await store.backend.read_stream("v-1")
    assert [r.payload[4 : 4 + recs_len] for r, recs_len in zip(recs, (3, 3), strict=True)] == [b"old", b"new"]
    loaded = await store.load(Vault, "v-1")
    assert loaded.notes == ["before rotation", "after rotation"]
    await store.close()


async def test_missing_key_names_the_key_id(tmp_path):
    url = f"sqlite://{tmp_path / 'k.db'}"
    writer_keys = KeyManager.generate("2026-q1")
    store = await EventStore.create(url, codec=encrypted_codec(writer_keys))
    await store.save(_vault("x"))
    await store.close()

    other = KeyManager.generate("2026-q2")
    reader = await EventStore.create(url, codec=encrypted_codec(other))
    with pytest.raises(UnknownKeyError, match="2026-q1") as info:
        await reader.load(Vault, "v-1")
    assert info.value.key_id == "2026-q1"
    assert isinstance(info.value, SerializationError)
    await reader.close()


async def test_wrong_key_under_same_id_fails_naming_the_key(tmp_path):
    url = f"sqlite://{tmp_path / 'w.db'}"
    store = await EventStore.create(url, codec=encrypted_codec(KeyManager.generate("main")))
    await store.save(_vault("x"))
    await store.close()
    impostor = await EventStore.create(url, codec=encrypted_codec(KeyManager.generate("main")))
    with pytest.raises(DecryptionError, match="'main'"):
        await impostor.load(Vault, "v-1")
    await impostor.close()


async def test_plain_store_cannot_read_encrypted_events(url):
    keys = KeyManager.generate("k1")
    store = await EventStore.create(url, codec=encrypted_codec(keys, compress=False))
    await store.save(_vault("x"))
    plain = EventCodec()
    rec = (await store.backend.read_stream("v-1"))[0]
    with pytest.raises(SerializationError, match="tag b'e'"):
        plain.decode(rec)
    await store.close()


async def test_ciphertext_moved_to_another_event_does_not_decrypt(url):
    keys = KeyManager.generate("k1")
    codec = EventCodec(transforms=[EventEncryption(keys)])
    store = await EventStore.create(url, codec=codec)
    await store.save(_vault("alpha", "beta", id="a"), _vault("gamma", id="b"))
    a1, a2 = await store.backend.read_stream("a")
    (b1,) = await store.backend.read_stream("b")
    # Same stream, other version; other stream, same version; other event id.
    for target, source in ((a2, a1), (b1, a1), (a1._replace(event_id=b1.event_id), a1)):
        forged = target._replace(payload=source.payload)
        with pytest.raises(DecryptionError, match="another event"):
            codec.decode(forged)
    # Untouched records still decode.
    assert codec.decode(a2).text == "beta"
    await store.close()


async def test_tampered_ciphertext_fails(url):
    keys = KeyManager.generate("k1")
    codec = EventCodec(transforms=[EventEncryption(keys)])
    store = await EventStore.create(url, codec=codec)
    await store.save(_vault("x"))
    rec = (await store.backend.read_stream("v-1"))[0]
    flipped = bytearray(rec.payload)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionError):
        codec.decode(rec._replace(payload=bytes(flipped)))
    header_forged = bytearray(rec.payload)
    header_forged[2] ^= 1  # flags byte: claim the version was not bound
    with pytest.raises(DecryptionError):
        codec.decode(rec._replace(payload=bytes(header_forged)))
    await store.close()


async def test_bare_events_without_version_round_trip(url):
    keys = KeyManager.generate("k1")
    store = await EventStore.create(url, codec=encrypted_codec(keys))
    await store.save_events([VaultSecretNoted(aggregate_id="s", text="one")], stream_type="Vault")
    await store.save_events([VaultSecretNoted(aggregate_id="s", text="two")], stream_type="Vault")
    events = await store.load_events("s")
    assert [e.text for e in events] == ["one", "two"]
    await store.close()


def test_batch_path_matches_single_path():
    keys = KeyManager.generate("k1")
    enc = EventEncryption(keys)
    idents = [RecordIdentity(bytes([i]) * 16, f"s-{i}", i + 1 if i % 2 else None) for i in range(50)]
    payloads = [b'{"n":%d}' % i for i in range(50)]
    boxed = enc.encrypt_many(payloads, idents)
    assert len(set(boxed)) == 50
    assert enc.decrypt_many(boxed, idents) == payloads
    assert [enc.decode(b, i) for b, i in zip(boxed, idents, strict=True)] == payloads
    with pytest.raises(DecryptionError):
        enc.decrypt_many(boxed[1:] + boxed[:1], idents)
    with pytest.raises(EncryptionError, match="50 payloads and 49"):
        enc.encrypt_many(payloads, idents[:-1])


def test_compression_round_trip_and_shrinks():
    codec = EventCodec(transforms=[ZlibCompression()])
    with SyncEventStore.create("memory://", codec=codec) as store:
        store.save(_vault("a" * 5000))
        rec = store.backend.read_stream("v-1")[0]
        assert rec.payload[:1] == b"z" and len(rec.payload) < 500
        assert store.load(Vault, "v-1").notes == ["a" * 5000]


def test_key_manager_errors_are_clear():
    with pytest.raises(EncryptionError, match="has 16 bytes; AES-256 needs exactly 32"):
        KeyManager({"k": b"x" * 16})
    with pytest.raises(EncryptionError, match="key id 'bad id' is invalid"):
        KeyManager({"bad id": KeyManager.generate_key()})
    with pytest.raises(EncryptionError, match="no current="):
        KeyManager({"a": KeyManager.generate_key(), "b": KeyManager.generate_key()})
    with pytest.raises(EncryptionError, match="no current key"):
        EventEncryption(KeyManager())
    keys = KeyManager.generate("k1")
    with pytest.raises(EncryptionError, match="already names a different key"):
        keys.add_key("k1", KeyManager.generate_key())
    with pytest.raises(UnknownKeyError, match="'nope'"):
        keys.set_current("nope")
    assert "k1" in repr(keys) and keys.to_dict()["keys"]["k1"] not in repr(keys)


def test_key_manager_persists_and_reads_env(monkeypatch):
    keys = KeyManager.generate("k1")
    keys.rotate("k2")
    again = KeyManager.from_dict(keys.to_dict())
    assert again.key_ids == ["k1", "k2"] and again.current_key_id == "k2"
    d = keys.to_dict()["keys"]
    monkeypatch.setenv("EVENTUALI_ENCRYPTION_KEYS", f"k2={d['k2']},k1={d['k1']}")
    env = KeyManager.from_env()
    assert env.current_key_id == "k2" and env.key_ids == ["k1", "k2"]
    # Payloads written by one manager decrypt with the other.
    enc1, enc2 = EventEncryption(keys), EventEncryption(env)
    ident = RecordIdentity(b"\x01" * 16, "s", 1)
    assert enc2.decode(enc1.encode(b"{}", ident), ident) == b"{}"


def test_batch_decrypt_across_rotation_and_with_a_bad_payload():
    keys = KeyManager.generate("k1")
    enc = EventEncryption(keys)
    idents = [RecordIdentity(bytes([i]) * 16, "s", i + 1) for i in range(6)]
    payloads = [b'{"i":%d}' % i for i in range(6)]
    first = enc.encrypt_many(payloads[:3], idents[:3])
    keys.rotate("k2")
    boxed = first + enc.encrypt_many(payloads[3:], idents[3:])
    assert enc.decrypt_many(boxed, idents) == payloads
    bad = list(boxed)
    bad[4] = bad[4][:-1] + bytes([bad[4][-1] ^ 1])
    with pytest.raises(DecryptionError, match=f"event {(bytes([4]) * 16).hex()}.*'k2'"):
        enc.decrypt_many(bad, idents)
    only_k2 = KeyManager({"k2": keys.to_dict()["keys"]["k2"]})
    with pytest.raises(UnknownKeyError, match="'k1'"):
        EventEncryption(only_k2).decrypt_many(boxed, idents)
