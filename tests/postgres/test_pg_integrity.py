"""The hash chain on PostgreSQL: golden vector, retention, tampering through SQL, the option's rules."""

from __future__ import annotations

import asyncio

import pytest

from eventuali import EventStore, integrity
from eventuali.errors import ConfigurationError
from eventuali.integrity.chain import link, record_digest
from eventuali.records import ANY
from eventuali.testing.chain_vector import expected_entries, run_operations
from eventuali.url import parse_url

from ..integrity.conftest import write
from .conftest import admin_execute, drop_schema, fresh_schema_url


@pytest.fixture
def chained():
    from eventuali_python import PythonBackend

    url, schema = fresh_schema_url(integrity="chain")
    backend = PythonBackend.open(parse_url(url))
    yield backend, schema
    backend.close()
    drop_schema(schema)


def test_postgres_produces_the_golden_chain(chained) -> None:
    backend, _ = chained
    assert "integrity" in backend.capabilities
    run_operations(backend)
    assert backend.read_chain() == expected_entries()
    assert integrity.verify(backend) == []


def test_retention_verifies_and_sql_tampering_is_found(chained) -> None:
    backend, schema = chained
    backend.append([write("a", 3, b'{"n": 1}'), write("b", 2, b'{"n": 2}')])
    assert backend.truncate_stream("a", 2) == 1
    assert backend.delete_stream("b") == 2
    backend.append([write("c", 3)])
    assert integrity.verify(backend) == []
    anchor = integrity.anchor(backend)
    events = f'"{schema}".eventuali_events'
    admin_execute(f"UPDATE {events} SET payload = '\\x00' WHERE position = 2")  # flip
    admin_execute(f"DELETE FROM {events} WHERE position = 7")  # drop: a DELETE outside the engine
    assert [(p.check, p.position) for p in integrity.verify(backend)] == [("altered", 2), ("missing", 7)]
    admin_execute(f'DELETE FROM "{schema}".eventuali_chain WHERE seq >= 9')  # cut the tail
    problems = integrity.verify(backend, anchor=anchor)
    assert ("anchor_missing", anchor.seq) in [(p.check, p.seq) for p in problems]


def test_a_rewrite_with_its_own_hash_recomputed_breaks_the_next_link(chained) -> None:
    backend, schema = chained
    backend.append([write("a", 3)])
    admin_execute(f"""UPDATE "{schema}".eventuali_events SET payload = '\\x01' WHERE position = 2""")
    [record] = backend.read_all(2, 1)
    prev = backend.read_chain(1, 1)[0].hash
    digest = record_digest(record)
    forged = link(prev, 1, 2, record.version, record.stream_id, digest)
    admin_execute(f'UPDATE "{schema}".eventuali_chain SET digest = %s, hash = %s WHERE seq = 2', (digest, forged))
    assert [(p.check, p.position) for p in integrity.verify(backend)] == [("broken_link", 3)]


def test_a_store_with_events_cannot_start_a_chain() -> None:
    from eventuali_python import PythonBackend

    url, schema = fresh_schema_url()
    try:
        plain = PythonBackend.open(parse_url(url))
        plain.append([write("a", 1, expected=ANY)])
        plain.close()
        with pytest.raises(ConfigurationError, match="already holds events without a hash chain"):
            PythonBackend.open(parse_url(url + "&integrity=chain"))
    finally:
        drop_schema(schema)


def test_the_async_store_chains_its_appends_and_retention() -> None:
    from eventuali_python import PythonBackend

    url, schema = fresh_schema_url(integrity="chain")

    async def work() -> None:
        store = await EventStore.create(url, backend="python")
        await store.backend.append([write("a", 2), write("b", 1)])
        await store.backend.truncate_stream("a", 2)
        await store.delete_aggregate("b")
        await store.close()

    try:
        asyncio.run(work())
        backend = PythonBackend.open(parse_url(url))
        assert [e.kind for e in backend.read_chain()] == [1, 1, 1, 3, 2]
        assert integrity.verify(backend) == []
        backend.close()
    finally:
        drop_schema(schema)
