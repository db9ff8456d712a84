"""Both engines compute the same chain: the golden vector, a file moving between engines, same findings."""

from __future__ import annotations

import hashlib
import sqlite3
import struct

import pytest

from eventuali import integrity
from eventuali.testing.chain_vector import OPERATIONS, expected_entries, run_operations
from eventuali.url import parse_url

from .conftest import provider, write


def test_every_engine_produces_the_golden_chain(chained) -> None:
    run_operations(chained)
    assert chained.read_chain() == expected_entries()
    assert integrity.verify(chained) == []


def test_the_vector_follows_the_documented_layout() -> None:
    """The first entry, from the docstring's layout with hashlib alone (not the reference code)."""
    first = OPERATIONS[0][1][0]
    rec = first.records[0]

    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    body = (rec.event_id + struct.pack(">qq", rec.schema_version, rec.timestamp) + s(b"Order")
            + s(rec.event_type.encode()) + s(b"acme") + s(rec.metadata) + s(rec.payload))
    digest = hashlib.sha256(body).digest()
    head = bytes(32) + struct.pack(">Bqq", 1, 1, 1) + s(b"order-1") + digest
    entry = expected_entries()[0]
    assert (entry.digest, entry.hash) == (digest, hashlib.sha256(head).digest())


@pytest.mark.parametrize("first, second", [("python", "c"), ("c", "python")])
def test_a_chained_file_verifies_and_continues_on_the_other_engine(tmp_path, first: str, second: str) -> None:
    engines = {name: provider(name) for name in (first, second)}
    url = parse_url(f"sqlite://{tmp_path / 'moved.db'}?integrity=chain")
    a = engines[first].open(url)
    run_operations(a)
    a.close()
    b = engines[second].open(parse_url(f"sqlite://{tmp_path / 'moved.db'}"))
    assert "integrity" in b.capabilities
    assert b.read_chain() == expected_entries()
    assert integrity.verify(b) == []
    b.append([write("order-1", 2)])
    b.truncate_stream("order-1", 4)
    b.close()
    a = engines[first].open(url)
    assert integrity.verify(a) == []
    assert [e.seq for e in a.read_chain()] == list(range(1, len(expected_entries()) + 4))
    a.close()


def test_both_engines_report_the_same_problems(tmp_path) -> None:
    engines = [provider("python"), provider("c")]
    path = tmp_path / "tampered.db"
    backend = engines[0].open(parse_url(f"sqlite://{path}?integrity=chain"))
    run_operations(backend)
    backend.append([write("acct", 3)])
    backend.close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE eventuali_events SET payload = x'00' WHERE position = 4")
        raw.execute("UPDATE eventuali_events SET metadata = 'not a blob' WHERE position = 6")
        raw.execute("DELETE FROM eventuali_events WHERE position = 7")
        raw.execute("UPDATE eventuali_chain SET hash = zeroblob(32) WHERE seq = 6")  # the delete
        raw.execute(
            "INSERT INTO eventuali_events (position, event_id, stream_id, stream_type, version, "
            "event_type, schema_version, timestamp, tenant, metadata, payload) "
            "VALUES (20, x'ffffffffffffffffffffffffffffffff', 'x', 'T', 1, 'E', 1, 0, '', x'', x'')"
        )
    found = []
    for engine in engines:
        b = engine.open(parse_url(f"sqlite://{path}"))
        found.append(integrity.verify(b))
        b.close()
    assert found[0] == found[1]
    # the delete entry that no longer chains excuses nothing: its stream's record is missing
    assert [(p.check, p.position, p.seq) for p in found[0]] == [
        ("missing", 3, 3), ("altered", 4, 5), ("broken_link", 4, 6), ("broken_link", 5, 7),
        ("altered", 6, 8), ("missing", 7, 9), ("unchained", 20, 0),
    ]
