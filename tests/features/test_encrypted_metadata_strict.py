"""Encrypted stores: metadata encrypted at rest, strict mode, and old formats still read.

Runs on every installed (engine, scheme) target (see ``conftest.py``).
"""

from __future__ import annotations

import json
import uuid
from importlib import resources

import pytest

from eventuali import Aggregate, Event, EventCodec, EventStore, SyncEventStore
from eventuali.errors import ClearTextRecordError, DecryptionError
from eventuali.records import NO_STREAM, NewRecord, Record, StreamWrite
from eventuali.security import KeyManager, encrypted_codec


class VectorNoteTaken(Event):  # the class of the golden vector's records
    text: str


class Notebook(Aggregate):
    texts: list[str] = []

    def apply_vector_note_taken(self, event: VectorNoteTaken) -> None:
        self.texts = [*self.texts, event.text]


def _note(text: str, user: str | None = "user-42") -> VectorNoteTaken:
    return VectorNoteTaken(text=text, user_id=user, correlation_id=uuid.uuid4(),
                           causation_id=uuid.uuid4())


async def test_metadata_is_encrypted_and_bound_to_its_event(store_url):
    url, backend = store_url
    store = await EventStore.create(url, backend=backend, codec=encrypted_codec(KeyManager.generate()))
    nb = Notebook(id="nb-1")
    first, second = _note("one", "user-secret-17"), _note("two")
    nb.apply(first)
    nb.apply(second)
    await store.save(nb)
    records = await store.backend.read_stream("nb-1")
    for r in records:
        assert r.metadata[:1] == b"e"  # the encryption tag, not JSON
        assert b"user-" not in r.metadata and str(first.correlation_id).encode() not in r.metadata
    meta = store.codec.decode_metadata(records[0])
    assert meta == {"causation_id": str(first.causation_id),
                    "correlation_id": str(first.correlation_id), "user_id": "user-secret-17"}
    loaded = await store.load_events("nb-1")
    assert [e.user_id for e in loaded] == ["user-secret-17", "user-42"]
    # Metadata moved onto another event (or onto the payload's slot) does not decrypt.
    moved = records[1]._replace(metadata=records[0].metadata)
    with pytest.raises(DecryptionError):
        store.codec.decode_metadata(moved)
    as_payload = records[0]._replace(payload=records[0].metadata)
    with pytest.raises(DecryptionError):
        store.codec.decode(as_payload)
    await store.close()


def _clear_record(event_id: bytes, metadata: bytes = b"") -> NewRecord:
    payload = json.dumps({"text": "forged", "event_id": str(uuid.UUID(bytes=event_id)),
                          "event_type": "VectorNoteTaken", "event_version": 1}).encode()
    return NewRecord(event_id, "VectorNoteTaken", 1, 0, metadata, payload)


def test_strict_mode_refuses_clear_records_and_is_the_default(store_url):
    url, backend = store_url
    keys = KeyManager.generate()
    store = SyncEventStore.create(url, backend=backend, codec=encrypted_codec(keys))
    assert store.codec.strict and EventCodec().strict is False
    nb = Notebook(id="nb-1")
    nb.apply(_note("real"))
    store.save(nb)
    # Someone without the key appends a clear-text event after the real one.
    store.backend.append([StreamWrite("nb-1", "Notebook", 1, [_clear_record(uuid.uuid4().bytes)])])
    with pytest.raises(ClearTextRecordError, match=r"position \d+ .*strict=False"):
        store.load(Notebook, "nb-1")
    with pytest.raises(ClearTextRecordError):
        store.read_all()
    # The explicit way to read a store that holds records from before encryption:
    lax = SyncEventStore.create(url, backend=backend, codec=encrypted_codec(keys, strict=False))
    assert lax.load(Notebook, "nb-1").texts == ["real", "forged"]
    # Clear metadata beside an encrypted payload is refused too.
    ev = _note("x")
    EventCodec.stamp(ev, "nb-2", "Notebook", 1)
    rec = store.codec.encode(ev)
    store.backend.append([StreamWrite("nb-2", "Notebook", NO_STREAM,
                                      [rec._replace(metadata=b'{"user_id":"forged"}')])])
    with pytest.raises(ClearTextRecordError, match="metadata"):
        store.load(Notebook, "nb-2")
    store.close()
    lax.close()


def _vector() -> dict:
    text = resources.files("eventuali.testing").joinpath("vectors/encryption_v1.json").read_text()
    return json.loads(text)


def test_records_written_before_metadata_encryption_still_read(store_url):
    """Golden vector: the format written before this version (metadata in clear)."""
    url, backend = store_url
    vec = _vector()
    store = SyncEventStore.create(url, backend=backend,
                                  codec=encrypted_codec(KeyManager.from_dict(vec["keys"]), strict=False))
    store.backend.append([StreamWrite("note-1", "Notebook", NO_STREAM, [
        NewRecord(bytes.fromhex(r["event_id"]), r["event_type"], r["schema_version"], r["timestamp"],
                  bytes.fromhex(r["metadata"]), bytes.fromhex(r["payload"]))
        for r in vec["records"]])])
    events = store.load_events("note-1")
    assert [json.loads(e.model_dump_json()) for e in events] == [r["event"] for r in vec["records"]]
    rec = store.backend.read_stream("note-1")[0]
    assert store.codec.decode_metadata(rec)["user_id"] == "user-7"
    strict = SyncEventStore.create(url, backend=backend,
                                   codec=encrypted_codec(KeyManager.from_dict(vec["keys"])))
    with pytest.raises(ClearTextRecordError):
        strict.load_events("note-1")
    strict.close()
    store.close()


def test_decoding_a_record_checks_it_on_every_path():
    """``decode`` and ``decode_many`` apply the same strict check (no fast path around it)."""
    codec = encrypted_codec(KeyManager.generate(), compress=False)
    eid = uuid.uuid4().bytes
    new = _clear_record(eid)
    rec = Record(1, eid, "s", "Notebook", 1, new.event_type, 1, 0, "", b"", new.payload)
    for decode in (codec.decode, lambda r: codec.decode_many([r])):
        with pytest.raises(ClearTextRecordError):
            decode(rec)
    assert EventCodec().decode(rec).text == "forged"  # a plain store reads it


def test_clear_snapshot_on_a_strict_store_is_refused_and_the_state_rebuilt(store_url):
    from eventuali.snapshots import (
        SnapshotCodec,
        SnapshotConfig,
        SnapshotWarning,
        SyncSnapshotService,
    )

    url, backend = store_url
    store = SyncEventStore.create(url, backend=backend, codec=encrypted_codec(KeyManager.generate()))
    nb = Notebook(id="nb-1")
    nb.apply(_note("real"))
    store.save(nb)
    forged = Notebook(id="nb-1", texts=["forged"], version=1)
    store.backend.save_snapshot(SnapshotCodec(SnapshotConfig()).encode(forged))  # clear text
    service = SyncSnapshotService(store, SnapshotConfig(snapshot_frequency=0))
    with pytest.warns(SnapshotWarning, match="clear text"):
        assert service.load(Notebook, "nb-1").texts == ["real"]
    store.close()
