"""PostgreSQL engine: URL options, schema life cycle, commit-ordered positions, LISTEN/NOTIFY.

The protocol behaviour common to every engine is the conformance suite's job
(tests/conformance, run on PostgreSQL too); these are the PostgreSQL-specific
promises.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
import time
import uuid

import psycopg
import pytest
from eventuali_python import PythonBackend, postgres
from eventuali_python.postgres import DEFAULT_SCHEMA, VALID_OPTIONS, PostgresConfig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventuali.errors import (
    ConfigurationError,
    NotAnEventualiStoreError,
    OptimisticConcurrencyError,
    SchemaVersionError,
)
from eventuali.records import ANY, NO_STREAM, NewRecord, StreamWrite
from eventuali.url import parse_url

from .conftest import admin_execute, drop_schema, fresh_schema_url

pytestmark = pytest.mark.postgres


def rec(event_type: str = "Happened", payload: bytes = b'{"n":1}') -> NewRecord:
    return NewRecord(uuid.uuid4().bytes, event_type, 1, 1_700_000_000_000_000, b"{}", payload)


def open_url(url: str):
    return PythonBackend.open(parse_url(url))


# --- URL options ---------------------------------------------------------------


def test_guide_pool_options_map_to_the_pool(pg_url):
    url = pg_url + "&application_name=evt_test&pool_size=3&max_overflow=4&pool_timeout=7&pool_recycle=120"
    with open_url(url) as b:
        pool = b._pool
        assert (pool.min_size, pool.max_size, pool.timeout, pool.max_lifetime) == (3, 7, 7.0, 120.0)
        b.append([StreamWrite("s", "T", NO_STREAM, [rec()])])
        with pool.connection() as conn:
            assert conn.execute("SHOW application_name").fetchone()[0] == "evt_test"


def test_unknown_option_is_named_with_the_valid_ones():
    with pytest.raises(ConfigurationError) as err:
        PostgresConfig.from_url(parse_url("postgresql://u@h/db?pool_size=2&poolsize=3"))
    msg = str(err.value)
    assert "'poolsize'" in msg
    for name in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle", "schema"):
        assert name in msg


@pytest.mark.parametrize(
    "option", ["pool_size=0", "pool_size=x", "max_overflow=-1", "pool_timeout=0", "connect_timeout=abc", "schema=a-b", "schema=1x"]
)
def test_bad_option_values_are_refused_before_connecting(option):
    with pytest.raises(ConfigurationError) as err:
        # Port 1 would refuse a connection: the error must come from the option check.
        PythonBackend.open(parse_url(f"postgresql://u@127.0.0.1:1/db?{option}"))
    assert option.split("=")[0] in str(err.value)


def test_defaults():
    cfg = PostgresConfig.from_url(parse_url("postgresql://u:secret@h/db"))
    assert cfg.schema == DEFAULT_SCHEMA == "eventuali"
    assert 1 <= cfg.connect_timeout <= 30
    assert cfg.min_size >= 1 and cfg.max_size >= cfg.min_size
    assert "secret" not in cfg.where
    assert set(VALID_OPTIONS) >= {"application_name", "pool_size", "max_overflow", "pool_timeout", "pool_recycle"}


def test_missing_psycopg_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(ConfigurationError) as err:
        PythonBackend.open(parse_url("postgresql://u@127.0.0.1/db"))
    assert 'pip install "eventuali[postgresql]"' in str(err.value)
    with pytest.raises(ConfigurationError):
        PythonBackend.open_async(parse_url("postgresql://u@127.0.0.1/db"))


def test_open_async_is_none_for_other_schemes():
    assert PythonBackend.open_async(parse_url("memory://")) is None
    assert PythonBackend.open_async(parse_url("sqlite://x.db")) is None
    assert "postgresql" in PythonBackend.schemes


# --- schema life cycle ---------------------------------------------------------------


def test_schema_is_created_in_the_configured_schema_with_a_version(pg_backend, pg_url):
    schema = parse_url(pg_url).options["schema"]
    tables = {r[0] for r in admin_execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
    assert {"eventuali_meta", "eventuali_events", "eventuali_streams", "eventuali_head", "eventuali_snapshots", "eventuali_checkpoints"} <= tables
    meta = dict(admin_execute(f'SELECT key, value FROM "{schema}".eventuali_meta'))
    assert meta["schema_version"] == str(postgres.SCHEMA_VERSION) == "2"
    assert meta["created_by"].startswith("python ")


def _open_and_append(url: str, n: int, barrier) -> str:
    barrier.wait()
    with PythonBackend.open(parse_url(url)) as b:
        b.append([StreamWrite(f"p{n}", "T", NO_STREAM, [rec()])])
    return "ok"


def test_processes_creating_the_same_schema_at_once_all_succeed():
    url, schema = fresh_schema_url()
    try:
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Manager().Barrier(4)
        with ctx.Pool(4) as pool:
            results = pool.starmap(_open_and_append, [(url, i, barrier) for i in range(4)])
        assert results == ["ok"] * 4
        with open_url(url) as b:
            assert b.head() == 4
            assert sorted(r.stream_id for r in b.read_all()) == ["p0", "p1", "p2", "p3"]
        assert admin_execute(f'SELECT count(*) FROM "{schema}".eventuali_meta WHERE key = %s', ("schema_version",)) == [(1,)]
    finally:
        drop_schema(schema)


def test_newer_schema_version_is_refused(pg_backend, pg_url):
    schema = parse_url(pg_url).options["schema"]
    admin_execute(f"UPDATE \"{schema}\".eventuali_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError) as err:
        open_url(pg_url)
    assert "99" in str(err.value)


def test_foreign_tables_in_the_schema_are_not_taken_over():
    url, schema = fresh_schema_url()
    try:
        admin_execute(f'CREATE SCHEMA "{schema}"')
        admin_execute(f'CREATE TABLE "{schema}".orders (id int)')
        with pytest.raises(NotAnEventualiStoreError) as err:
            open_url(url)
        assert schema in str(err.value)
        assert admin_execute(f"SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'") == [(1,)]
    finally:
        drop_schema(schema)


# --- global order without gaps --------------------------------------------------------


def test_reader_never_skips_a_transaction_held_open_while_others_commit(pg_backend, pg_url):
    """A writer holds its transaction open after taking its positions; others try to commit.

    With positions from a sequence, the later writers would commit 2 and 3
    while 1 is still invisible, and a reader paging from its last position
    would skip 1 forever.  Here the later writers wait behind the counter row,
    so no reader ever sees a position above an uncommitted one.
    """
    b = pg_backend
    b.append([StreamWrite("before", "T", NO_STREAM, [rec()])])  # position 1
    held = psycopg.connect(pg_url.split("?")[0], autocommit=True)
    tx = held.transaction()
    tx.__enter__()
    held_positions = b._append_in(held, [StreamWrite("held", "T", NO_STREAM, [rec(), rec()])], None)
    assert held_positions == [2, 3]

    done: list[list[int]] = []
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            done.append(b.append([StreamWrite(f"other{i}", "T", NO_STREAM, [rec()])]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with open_url(pg_url) as reader_backend:
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        # While the held transaction is open, a paging reader only sees position 1.
        seen: list[int] = []
        after = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            page = reader_backend.read_all(after + 1)
            seen += [r.position for r in page]
            after = seen[-1] if seen else 0
            assert reader_backend.head() == 1
            time.sleep(0.05)
        assert seen == [1]
        assert done == []  # the other writers wait for the counter row
        tx.__exit__(None, None, None)  # commit the held transaction
        held.close()
        for t in threads:
            t.join(10)
        assert errors == []
        # The reader goes on from where it was and gets everything, in order, once.
        while True:
            page = reader_backend.read_all(after + 1)
            if not page:
                break
            seen += [r.position for r in page]
            after = seen[-1]
    assert seen == [1, 2, 3, 4, 5, 6]
    assert sorted(p for ps in done for p in ps) == [4, 5, 6]


def test_the_problem_is_real_a_sequence_lets_a_paging_reader_skip(pg_url):
    """The control for the test above: with positions from a bigserial, on this very
    server, a transaction held open while a later one commits makes a paging
    reader skip an event for good."""
    schema = parse_url(pg_url).options["schema"]
    plain = pg_url.split("?")[0]
    admin_execute(f'CREATE SCHEMA "{schema}"')
    admin_execute(f'CREATE TABLE "{schema}".naive (position bigserial PRIMARY KEY, what text)')
    with psycopg.connect(plain, autocommit=True) as a, psycopg.connect(plain, autocommit=True) as b:
        with a.transaction():
            a.execute(f'INSERT INTO "{schema}".naive (what) VALUES (%s)', ("held",))  # takes 1
            b.execute(f'INSERT INTO "{schema}".naive (what) VALUES (%s)', ("later",))  # 2, commits
            page = admin_execute(f'SELECT position FROM "{schema}".naive WHERE position >= 1 ORDER BY position')
            assert page == [(2,)]  # the reader moves on to from_position = 3
        rest = admin_execute(f'SELECT position FROM "{schema}".naive WHERE position >= 3 ORDER BY position')
        assert rest == []  # position 1 committed meanwhile, and this reader never sees it


def test_concurrent_writers_and_a_paging_reader_see_every_event_once(pg_url):
    n_writers, n_appends = 4, 40
    with open_url(pg_url + "&pool_size=5") as b:
        stop = threading.Event()
        seen: list[int] = []

        def reader() -> None:
            after = 0
            while True:
                last_round = stop.is_set()
                page = b.read_all(after + 1, limit=7)
                seen.extend(r.position for r in page)
                if page:
                    after = page[-1].position
                elif last_round:
                    return

        def writer(w: int) -> None:
            for i in range(n_appends):
                b.append([StreamWrite(f"w{w}-{i % 3}", "T", ANY, [rec() for _ in range(1 + i % 4)])])

        r = threading.Thread(target=reader)
        r.start()
        writers = [threading.Thread(target=writer, args=(w,)) for w in range(n_writers)]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        r.join()
        total = n_writers * sum(1 + i % 4 for i in range(n_appends))
        assert b.head() == total
        assert seen == list(range(1, total + 1))


# --- appends ---------------------------------------------------------------------------


def test_append_is_atomic_across_streams_and_checkpoint_joins_it(pg_backend):
    b = pg_backend
    b.append([StreamWrite("a", "T", NO_STREAM, [rec()])], checkpoint=("proj", 1))
    with pytest.raises(OptimisticConcurrencyError) as err:
        b.append(
            [StreamWrite("b", "T", NO_STREAM, [rec()]), StreamWrite("a", "T", 0, [rec()])],
            checkpoint=("proj", 2),
        )
    assert (err.value.stream_id, err.value.expected, err.value.actual) == ("a", 0, 1)
    assert b.read_stream("b") == [] and b.stream_version("b") == 0
    assert b.get_checkpoint("proj") == 1  # the failed append did not move it
    assert b.append([StreamWrite("b", "T", NO_STREAM, [rec()])], checkpoint=("proj", 2)) == [2]
    assert b.get_checkpoint("proj") == 2 and b.head() == 2


def test_concurrent_creators_of_one_stream_one_wins(pg_url):
    with open_url(pg_url + "&pool_size=4") as b:
        barrier = threading.Barrier(4)
        outcome: list[str] = []

        def create() -> None:
            barrier.wait()
            try:
                b.append([StreamWrite("new", "T", NO_STREAM, [rec(), rec()])])
                outcome.append("ok")
            except OptimisticConcurrencyError as exc:
                assert exc.actual == 2
                outcome.append("conflict")

        threads = [threading.Thread(target=create) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcome) == ["conflict"] * 3 + ["ok"]
        assert [r.version for r in b.read_stream("new")] == [1, 2]


# --- live subscriptions ----------------------------------------------------------------


def test_wait_for_wakes_on_notify_from_another_store_without_polling(pg_url):
    with open_url(pg_url) as waiter, open_url(pg_url) as writer:
        heads: list[int] = []
        real_head = waiter.head
        calls = 0

        def counting_head() -> int:
            nonlocal calls
            calls += 1
            return real_head()

        waiter.head = counting_head  # type: ignore[method-assign]
        threading.Timer(1.0, lambda: writer.append([StreamWrite("s", "T", NO_STREAM, [rec()])])).start()
        t0 = time.monotonic()
        heads.append(waiter.wait_for(0, timeout=30))
        elapsed = time.monotonic() - t0
        assert heads == [1]
        assert 0.9 < elapsed < 5
        # One head() before waiting and one after the notification: a poller would call it
        # every few milliseconds for a second.
        assert calls <= 3
        t0 = time.monotonic()
        assert waiter.wait_for(1, timeout=0.3) == 1
        assert 0.25 < time.monotonic() - t0 < 2


# --- async twin ------------------------------------------------------------------------


async def test_async_engine_round_trip_and_wait_for(pg_url):
    from eventuali_python.postgres_async import AsyncPostgresBackend

    b = await PythonBackend.open_async(parse_url(pg_url))
    assert isinstance(b, AsyncPostgresBackend)
    try:
        assert await b.append([StreamWrite("a", "T", NO_STREAM, [rec(), rec()])], checkpoint=("c", 2)) == [1, 2]
        assert [r.version for r in await b.read_stream("a")] == [1, 2]
        assert await b.get_checkpoint("c") == 2
        with pytest.raises(OptimisticConcurrencyError):
            await b.append([StreamWrite("a", "T", 1, [rec()])])

        async def later() -> None:
            await asyncio.sleep(0.5)
            await b.append([StreamWrite("a", "T", 2, [rec()])])

        task = asyncio.create_task(later())
        t0 = time.monotonic()
        assert await b.wait_for(2, timeout=20) == 3
        assert time.monotonic() - t0 < 5
        await task
        assert [r.position for r in await b.read_all(2)] == [2, 3]
    finally:
        await b.aclose()


async def test_event_store_uses_the_native_async_engine(pg_url):
    from eventuali_python.postgres_async import AsyncPostgresBackend

    from eventuali import EventStore

    store = await EventStore.create(pg_url)
    try:
        assert isinstance(store.backend, AsyncPostgresBackend)
        assert await store.backend.head() == 0
    finally:
        await store.close()


def test_synchronous_commit_option_reaches_the_server(pg_url):
    with open_url(pg_url + "&synchronous_commit=off") as b:
        with b._pool.connection() as conn:
            assert conn.execute("SHOW synchronous_commit").fetchone()[0] == "off"
    with pytest.raises(ConfigurationError, match="synchronous_commit"):
        PostgresConfig.from_url(parse_url("postgresql://u@h/db?synchronous_commit=maybe"))


def test_older_schema_is_migrated_in_order_under_the_lock(pg_backend, pg_url, monkeypatch):
    from eventuali_python import postgres

    schema = parse_url(pg_url).options["schema"]
    pg_backend.append([StreamWrite("kept", "T", NO_STREAM, [rec()])])
    admin_execute(f"UPDATE \"{schema}\".eventuali_meta SET value = '0' WHERE key = 'schema_version'")
    monkeypatch.setitem(
        postgres.MIGRATIONS, 0, ["CREATE TABLE {schema}.eventuali_migrated (note text)"]
    )
    with open_url(pg_url) as b:
        assert [r.stream_id for r in b.read_all()] == ["kept"]
    assert admin_execute(f'SELECT value FROM "{schema}".eventuali_meta WHERE key = %s', ("schema_version",)) == [(str(postgres.SCHEMA_VERSION),)]
    assert admin_execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = 'eventuali_migrated'", (schema,)) == [(1,)]


def test_a_version_1_store_is_migrated_to_version_2_and_keeps_working():
    """A store made by the version-1 script (kept verbatim beside this test) with events in it:
    opening it migrates stream ids to COLLATE "C" and replaces the append function; nothing
    written before is lost and appends continue the same streams and positions."""
    from pathlib import Path

    url, schema = fresh_schema_url()
    v1 = (Path(__file__).with_name("schema_v1.sql").read_text("utf-8")).replace("{schema}", f'"{schema}"')
    try:
        with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
            with conn.transaction():
                conn.execute(v1)
                conn.execute(f"""INSERT INTO "{schema}".eventuali_meta VALUES ('schema_version', '1'), ('created_by', 'python 0.1.0')""")
        # Events written by the version-1 function itself.
        with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
            conn.execute(
                f"""SELECT "{schema}".eventuali_append(ARRAY['b-1','a-1'], ARRAY['T','T'], ARRAY['',''],
                    ARRAY[-2,-2]::int8[], ARRAY[2,1], ARRAY[1,1,2], ARRAY[1,2,1],
                    ARRAY[%s,%s,%s]::bytea[], ARRAY['E','E','E'], ARRAY[1,1,1], ARRAY[1,2,3]::int8[],
                    ARRAY['{{}}','{{}}','{{}}']::bytea[], ARRAY['{{"n":1}}','{{"n":2}}','{{"n":3}}']::bytea[],
                    NULL, NULL, 'ch')""",
                [uuid.uuid4().bytes for _ in range(3)],
            )
        with open_url(url) as b:
            before = [(r.position, r.stream_id, r.version, r.payload) for r in b.read_all()]
            assert before == [(1, "b-1", 1, b'{"n":1}'), (2, "b-1", 2, b'{"n":2}'), (3, "a-1", 1, b'{"n":3}')]
            assert b.append([StreamWrite("b-1", "T", 2, [rec()]), StreamWrite("c-1", "T", NO_STREAM, [rec(), rec()])]) == [4, 5, 6]
            with pytest.raises(OptimisticConcurrencyError):
                b.append([StreamWrite("a-1", "T", NO_STREAM, [rec()])])
            assert [r.version for r in b.read_stream("c-1")] == [1, 2]
        assert admin_execute(f'SELECT value FROM "{schema}".eventuali_meta WHERE key = %s', ("schema_version",)) == [("2",)]
        collations = admin_execute(
            "SELECT c.relname, co.collname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_collation co ON co.oid = a.attcollation "
            "WHERE n.nspname = %s AND a.attname = 'stream_id' AND c.relkind = 'r' ORDER BY 1", (schema,))
        assert collations == [("eventuali_events", "C"), ("eventuali_snapshots", "C"), ("eventuali_streams", "C")]
        body, config = admin_execute("SELECT prosrc, proconfig FROM pg_proc p JOIN pg_namespace n "
                                     "ON n.oid = p.pronamespace WHERE n.nspname = %s AND "
                                     "p.proname = 'eventuali_append'", (schema,))[0]
        assert "generate_series(1, total) AS ord" in body
        assert config == ["plan_cache_mode=force_generic_plan"]
    finally:
        drop_schema(schema)


def test_sessions_are_pinned_to_read_committed(pg_url):
    with open_url(pg_url) as b:
        with b._pool.connection() as conn:
            assert conn.execute("SHOW default_transaction_isolation").fetchone()[0] == "read committed"


def test_binary_array_builders_round_trip_through_the_server(pg_url):
    from eventuali_python.postgres_arrays import (
        bytea_array,
        int4_array,
        int8_array,
        register,
        text_array,
    )

    register()
    cases = [
        (text_array, "text[]", ["", "注文-😀", "a" * 300]),
        (text_array, "text[]", []),
        (bytea_array, "bytea[]", [b"", b"\x00\xff" * 50, uuid.uuid4().bytes]),
        (int4_array, "int4[]", [0, -1, 2**31 - 1, -(2**31)]),
        (int8_array, "int8[]", [0, -(2**63), 2**63 - 1, -1_700_000_000_000_000]),
        (int8_array, "int8[]", []),
    ]
    with psycopg.connect(pg_url.split("?")[0], autocommit=True) as conn:
        for build, cast, values in cases:
            got = conn.execute(f"SELECT %b::{cast}", (build(values),)).fetchone()[0]
            assert got == values, (cast, values)


_INT4 = st.integers(-(2**31), 2**31 - 1)
_INT8 = st.integers(-(2**63), 2**63 - 1)


def _columns(elements):
    """Lists in the shapes the builders take different paths for: all equal, one length, mixed,
    and longer than the int8 builder's compiled-struct limit."""
    return st.one_of(
        st.lists(elements, max_size=20),
        st.builds(lambda v, n: [v] * n, elements, st.integers(1, 30)),
        # Long lists from a short drawn cycle: the same shapes at a fraction of the drawn
        # data (drawing 500-700 independent elements trips hypothesis's data_too_large check).
        st.builds(lambda cycle, n: (cycle * n)[:n], st.lists(elements, min_size=1, max_size=20),
                  st.integers(500, 700)),
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    texts=_columns(st.text(max_size=12).filter(lambda s: "\x00" not in s)),
    same_len=_columns(st.binary(min_size=16, max_size=16)),
    blobs=_columns(st.binary(max_size=40)),
    int4s=_columns(_INT4),
    int8s=_columns(_INT8),
    counts=st.lists(st.integers(0, 600), max_size=5),
)
def test_binary_array_builders_agree_with_the_server_on_every_shape(
    pg_url, texts, same_len, blobs, int4s, int8s, counts
):
    from eventuali_python.postgres_arrays import (
        bytea_array,
        int4_array,
        int8_array,
        offsets_array,
        register,
        repeat_array,
        text_array,
    )

    register()
    sql = "SELECT %b::text[], %b::bytea[], %b::bytea[], %b::int4[], %b::int8[], %b::int4[], %b::int4[]"
    params = (
        text_array(texts), bytea_array(same_len), bytea_array(blobs), int4_array(int4s),
        int8_array(int8s), offsets_array(counts), repeat_array(counts),
    )  # fmt: skip
    with psycopg.connect(pg_url.split("?")[0], autocommit=True) as conn:
        got = conn.execute(sql, params).fetchone()
    assert list(got[:5]) == [texts, same_len, blobs, int4s, int8s]
    assert got[5] == [k for c in counts for k in range(1, c + 1)]
    assert got[6] == [i for i, c in enumerate(counts, 1) for _ in range(c)]


def test_append_plans_look_streams_up_by_key_in_a_young_store(pg_backend, pg_url):
    """A store whose tables were never analyzed (the planner then assumes ~600 rows) must
    still find stream rows by key: a plan that scans eventuali_streams makes every append
    cost grow with the number of streams, and the function's plans are kept per
    connection.  The plans inside eventuali_append are read through auto_explain."""
    schema = parse_url(pg_url).options["schema"]
    for table in ("eventuali_streams", "eventuali_events"):
        admin_execute(f'ALTER TABLE "{schema}".{table} SET (autovacuum_enabled = false)')
    pg_backend.append([StreamWrite(f"s-{i}", "T", NO_STREAM, [rec()]) for i in range(300)])
    assert admin_execute("SELECT reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE n.nspname = %s AND c.relname = 'eventuali_streams'", (schema,)) == [(-1.0,)]
    plans: list[str] = []
    with pg_backend._pool.connection() as conn:
        conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
        for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                        "SET auto_explain.log_nested_statements = on",
                        "SET auto_explain.log_level = 'notice'"):  # fmt: skip
            conn.execute(setting)
        for i in range(7):  # past the plan cache's first custom plans
            writes = [StreamWrite(f"n-{i}", "T", NO_STREAM, [rec()]),  # a new stream
                      StreamWrite(f"s-{i}", "T", 1, [rec(), rec()])]  # an existing one
            pg_backend._append_in(conn, writes, None)
        conn.execute("SET auto_explain.log_min_duration = -1")  # the session goes back to the pool
    text = "\n".join(plans)
    assert "eventuali_events" in text and "eventuali_streams" in text, text[:2000]  # plans were seen
    assert "Seq Scan on eventuali_streams" not in text, text
    assert "JIT:" not in text, text
