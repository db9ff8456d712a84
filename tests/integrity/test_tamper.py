"""Tampering with a chained SQLite file behind the engine's back: each kind is found, with its position.

The file is edited with the standard ``sqlite3`` module, as an attacker with
write access to it would; the engine that wrote it then checks it.
"""

from __future__ import annotations

import sqlite3

import pytest

from eventuali import integrity
from eventuali.integrity import Anchor
from eventuali.integrity.chain import GENESIS, link, record_digest
from eventuali.url import parse_url

from .conftest import write


@pytest.fixture
def store(engine, tmp_path):
    """A chained file with positions 1..6 over three streams, and a raw connection to it."""
    path = tmp_path / "audited.db"
    backend = engine.open(parse_url(f"sqlite://{path}?integrity=chain"))
    backend.append([write("acct-1", 3, b'{"amount": 100}'), write("acct-2", 2)])
    backend.append([write("acct-1", 1, b'{"amount": 5}')])
    assert integrity.verify(backend) == []
    raw = sqlite3.connect(path, isolation_level=None)
    yield backend, raw
    raw.close()
    backend.close()


def found(backend) -> list[tuple[str, int]]:
    return [(p.check, p.position) for p in integrity.verify(backend)]


def test_a_flipped_byte_is_found_at_its_position(store) -> None:
    backend, raw = store
    (payload,) = raw.execute("SELECT payload FROM eventuali_events WHERE position = 2").fetchone()
    flipped = bytes([payload[0] ^ 0x01]) + payload[1:]
    raw.execute("UPDATE eventuali_events SET payload = ? WHERE position = 2", (flipped,))
    assert found(backend) == [("altered", 2)]
    problems = integrity.verify(backend)
    assert "position 2 (stream 'acct-1' version 2" in problems[0].message


def test_a_dropped_row_is_found_at_its_position(store) -> None:
    backend, raw = store
    raw.execute("DELETE FROM eventuali_events WHERE position = 4")
    assert found(backend) == [("missing", 4)]


def test_two_swapped_rows_are_found_at_both_positions(store) -> None:
    backend, raw = store
    rows = {p: pl for p, pl in raw.execute("SELECT position, payload FROM eventuali_events")}
    assert rows[1] != rows[4]
    raw.execute("UPDATE eventuali_events SET payload = ? WHERE position = 1", (rows[4],))
    raw.execute("UPDATE eventuali_events SET payload = ? WHERE position = 4", (rows[1],))
    assert found(backend) == [("altered", 1), ("altered", 4)]


def test_swapped_positions_are_found(store) -> None:
    backend, raw = store
    raw.execute("UPDATE eventuali_events SET position = -1 WHERE position = 4")
    raw.execute("UPDATE eventuali_events SET position = 4 WHERE position = 5")
    raw.execute("UPDATE eventuali_events SET position = 5 WHERE position = -1")
    assert found(backend) == [("altered", 4), ("altered", 5)]


def test_a_rewrite_with_its_own_hash_recomputed_breaks_the_next_link(store) -> None:
    backend, raw = store
    raw.execute("UPDATE eventuali_events SET payload = ? WHERE position = 2", (b'{"amount": 1}',))
    [record] = [r for r in backend.read_all() if r.position == 2]
    (prev,) = raw.execute("SELECT hash FROM eventuali_chain WHERE seq = 1").fetchone()
    digest = record_digest(record)
    forged = link(prev, 1, 2, record.version, record.stream_id, digest)
    raw.execute("UPDATE eventuali_chain SET digest = ?, hash = ? WHERE seq = 2", (digest, forged))
    problems = integrity.verify(backend)
    assert [(p.check, p.position) for p in problems] == [("broken_link", 3)]
    assert "chain entry 3" in problems[0].message


def test_a_removed_chain_entry_is_found(store) -> None:
    backend, raw = store
    raw.execute("DELETE FROM eventuali_chain WHERE seq = 3")
    raw.execute("DELETE FROM eventuali_events WHERE position = 3")
    assert found(backend) == [("broken_link", 4), ("missing_entries", 4)]


def test_a_row_inserted_outside_the_engine_is_found(store) -> None:
    backend, raw = store
    raw.execute(
        "INSERT INTO eventuali_events (position, event_id, stream_id, stream_type, version, "
        "event_type, schema_version, timestamp, tenant, metadata, payload) "
        "VALUES (7, ?, 'acct-1', 'Thing', 5, 'Happened', 1, 0, '', x'', x'')",
        (b"\x01" * 16,),
    )
    assert found(backend) == [("unchained", 7)]


def test_a_forged_retention_entry_does_not_excuse_a_dropped_row(store) -> None:
    backend, raw = store
    raw.execute("DELETE FROM eventuali_events WHERE stream_id = 'acct-2'")
    raw.execute(
        "INSERT INTO eventuali_chain VALUES (7, 2, 6, 'acct-2', 0, zeroblob(32), zeroblob(32))"
    )
    assert found(backend) == [("missing", 4), ("missing", 5), ("broken_link", 6)]


def test_a_truncated_tail_is_found_against_an_anchor(store) -> None:
    backend, raw = store
    anchor = integrity.anchor(backend)
    raw.execute("DELETE FROM eventuali_events WHERE position >= 5")
    raw.execute("DELETE FROM eventuali_chain WHERE seq >= 5")
    assert integrity.verify(backend) == []  # consistent on its own …
    [problem] = integrity.verify(backend, anchor=anchor)  # … but not with the anchor
    assert (problem.check, problem.seq, problem.position) == ("anchor_missing", 6, 6)


def test_a_rewritten_history_is_found_against_an_anchor(store) -> None:
    backend, raw = store
    anchor = integrity.anchor(backend)
    raw.execute("UPDATE eventuali_events SET payload = ? WHERE position = 1", (b'{"amount": 1}',))
    prev = GENESIS
    for record, (seq,) in zip(
        backend.read_all(), raw.execute("SELECT seq FROM eventuali_chain ORDER BY seq").fetchall(),
        strict=True,
    ):
        digest = record_digest(record)
        prev = link(prev, 1, record.position, record.version, record.stream_id, digest)
        raw.execute("UPDATE eventuali_chain SET digest = ?, hash = ? WHERE seq = ?", (digest, prev, seq))
    assert integrity.verify(backend) == []  # a complete rewrite is consistent on its own …
    [problem] = integrity.verify(backend, anchor=anchor)
    assert (problem.check, problem.position) == ("anchor_mismatch", 6)
    assert integrity.verify(backend, anchor=Anchor(6, 6, prev)) == []
