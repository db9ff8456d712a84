"""The hash chain through the Backend protocol: entries, legitimate retention, anchors, options."""

from __future__ import annotations

import pytest

from eventuali import SyncEventStore, integrity
from eventuali.errors import ConfigurationError, DuplicateEventError
from eventuali.integrity import Anchor, AnchorSignatureError
from eventuali.integrity.chain import (
    GENESIS,
    KIND_DELETE,
    KIND_EVENT,
    KIND_TRUNCATE,
    link,
    record_digest,
)
from eventuali.url import parse_url

from .conftest import write


def test_each_record_is_chained_to_the_one_before(chained) -> None:
    positions = chained.append([write("a", 2), write("b", 1)])
    entries = chained.read_chain()
    assert [(e.seq, e.kind, e.position) for e in entries] == [
        (1, KIND_EVENT, positions[0]), (2, KIND_EVENT, positions[1]), (3, KIND_EVENT, positions[2])
    ]
    prev = GENESIS
    for e, r in zip(entries, chained.read_all(), strict=True):
        assert e.digest == record_digest(r)
        assert e.hash == link(prev, KIND_EVENT, r.position, r.version, r.stream_id, e.digest)
        prev = e.hash
    assert chained.chain_head() == entries[-1]
    assert chained.read_chain(2, 1) == entries[1:2]
    assert integrity.verify(chained) == []


def test_legitimate_retention_is_in_the_chain_and_verifies(chained) -> None:
    chained.append([write("a", 3), write("b", 2)])
    assert chained.truncate_stream("a", 3) == 2
    assert chained.truncate_stream("a", 1) == 0  # removes nothing: no entry
    assert chained.delete_stream("b") == 2
    chained.append([write("c")])
    kinds = [(e.kind, e.stream_id, e.version) for e in chained.read_chain(6)]
    assert kinds == [(KIND_TRUNCATE, "a", 3), (KIND_DELETE, "b", 0), (KIND_EVENT, "c", 1)]
    assert integrity.verify(chained) == []


def test_a_failed_append_adds_no_entry(chained) -> None:
    first = write("a")
    chained.append([first])
    before = chained.read_chain()
    with pytest.raises(DuplicateEventError):
        chained.append([write("b", 2), first])
    assert chained.read_chain() == before
    assert integrity.verify(chained) == []


def test_anchor_detects_a_later_rewrite_only_when_there_is_one(chained) -> None:
    empty = integrity.anchor(chained)
    assert (empty.seq, empty.hash) == (0, GENESIS)
    chained.append([write("a", 3)])
    anchor = integrity.anchor(chained)
    assert (anchor.seq, anchor.position) == (3, chained.head())
    chained.append([write("a")])
    assert integrity.verify(chained, anchor=anchor) == []
    forged = Anchor(anchor.seq, anchor.position, bytes(32))
    [problem] = integrity.verify(chained, anchor=forged)
    assert (problem.check, problem.seq, problem.position) == ("anchor_mismatch", 3, anchor.position)
    beyond = Anchor(9, 9, anchor.hash)
    [problem] = integrity.verify(chained, anchor=beyond)
    assert (problem.check, problem.seq) == ("anchor_missing", 9)
    assert "chain ends at entry 4" in problem.message


def test_signed_anchor_round_trips_and_rejects_tampering(chained) -> None:
    ed25519 = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    key = ed25519.Ed25519PrivateKey.generate()
    chained.append([write("a", 2)])
    signed = integrity.anchor(chained).sign(key)
    loaded = Anchor.from_json(signed.to_json())
    assert loaded == signed
    assert integrity.verify(chained, anchor=loaded, public_key=key.public_key()) == []
    moved = Anchor(loaded.seq, loaded.position + 1, loaded.hash, loaded.signature)
    with pytest.raises(AnchorSignatureError, match="does not verify"):
        integrity.verify(chained, anchor=moved, public_key=key.public_key())
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(AnchorSignatureError):
        integrity.verify(chained, anchor=loaded, public_key=other)
    with pytest.raises(AnchorSignatureError, match="not signed"):
        integrity.verify(chained, anchor=Anchor(1, 1, loaded.hash), public_key=other)


@pytest.mark.parametrize(
    "text", ["{}", "[]", "not json", '{"format": "eventuali-anchor-v1", "seq": 1, "position": 1, "hash": "00"}']
)
def test_a_malformed_anchor_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ConfigurationError, match="not an eventuali anchor"):
        Anchor.from_json(text)


def test_the_chain_belongs_to_the_file_not_to_the_url(engine, tmp_path) -> None:
    path = tmp_path / "kept.db"
    first = engine.open(parse_url(f"sqlite://{path}?integrity=chain"))
    first.append([write("a")])
    first.close()
    again = engine.open(parse_url(f"sqlite://{path}"))  # no option: the chain is kept anyway
    assert "integrity" in again.capabilities
    again.append([write("a")])
    assert [e.seq for e in again.read_chain()] == [1, 2]
    assert integrity.verify(again) == []
    again.close()


def test_a_store_with_events_cannot_start_a_chain(engine, tmp_path) -> None:
    url = f"sqlite://{tmp_path / 'plain.db'}"
    plain = engine.open(parse_url(url))
    plain.append([write("a")])
    plain.close()
    with pytest.raises(ConfigurationError, match="already holds events without a hash chain"):
        engine.open(parse_url(url + "?integrity=chain"))
    plain = engine.open(parse_url(url))
    assert "integrity" not in plain.capabilities
    with pytest.raises(ConfigurationError, match=r"\?integrity=chain"):
        integrity.verify(plain)
    plain.close()


@pytest.mark.parametrize("scheme", ["memory://", "sqlite://:memory:"])
def test_a_bad_integrity_value_names_the_fix(engine, scheme: str) -> None:
    with pytest.raises(ConfigurationError, match="integrity='sha1' is not valid; use integrity=chain"):
        engine.open(parse_url(scheme + "?integrity=sha1"))


def test_the_event_store_api_verifies_its_store(engine, tmp_path) -> None:
    store = SyncEventStore.create(f"sqlite://{tmp_path / 'app.db'}?integrity=chain", backend=engine.name)
    store.backend.append([write("a", 2)])
    assert integrity.verify(store) == []
    assert integrity.anchor(store).seq == 2
    store.close()
