"""PostgreSQL engine under faults: competing processes, a writer killed mid-append,
a server restarted under the application, and bad connection settings.

Nothing acknowledged is lost, nothing half-written is visible, every failure is
an eventuali error that says what to do.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from eventuali_python import PythonBackend

from eventuali.errors import (
    ConfigurationError,
    OptimisticConcurrencyError,
    StorageError,
    TransientStorageError,
)
from eventuali.records import NO_STREAM, NewRecord, StreamWrite
from eventuali.url import parse_url

from . import cluster as clusters
from .conftest import admin_execute, drop_schema, fresh_schema_url, need_clusters, need_server

pytestmark = pytest.mark.postgres


def rec(payload: bytes = b'{"n":1}') -> NewRecord:
    return NewRecord(uuid.uuid4().bytes, "Happened", 1, 1_700_000_000_000_000, b"{}", payload)


def open_url(url: str):
    return PythonBackend.open(parse_url(url))


# --- several processes on the same streams ----------------------------------------------


def _competing_writer(url: str, worker: int, rounds: int, streams: int) -> dict:
    """Read a stream's version, append after it; count wins and conflicts."""
    won: list[str] = []  # event ids (hex) this worker got acknowledged
    conflicts = 0
    with PythonBackend.open(parse_url(url)) as b:
        for i in range(rounds):
            sid = f"shared-{(worker + i) % streams}"
            version = b.stream_version(sid)
            batch = [rec(f'{{"w":{worker},"i":{i}}}'.encode()) for _ in range(1 + i % 3)]
            try:
                b.append([StreamWrite(sid, "T", version, batch)])
                won.extend(r.event_id.hex() for r in batch)
            except OptimisticConcurrencyError as exc:
                assert exc.stream_id == sid and exc.expected == version and exc.actual > version
                conflicts += 1
            # any other exception propagates and fails the test
    return {"won": won, "conflicts": conflicts}


def test_processes_appending_to_the_same_streams_lose_nothing():
    url, schema = fresh_schema_url(pool_size="1")
    try:
        with open_url(url):
            pass  # create the schema once, so the workers race on appends only
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(4) as pool:
            results = pool.starmap(_competing_writer, [(url, w, 60, 3) for w in range(4)])
        acknowledged = [eid for r in results for eid in r["won"]]
        conflicts = sum(r["conflicts"] for r in results)
        assert conflicts > 0, "the workers never collided; the test proves nothing"
        with open_url(url) as b:
            stored = b.read_all()
            assert sorted(r.event_id.hex() for r in stored) == sorted(acknowledged)
            assert [r.position for r in stored] == list(range(1, len(stored) + 1))
            for s in range(3):
                versions = [r.version for r in b.read_stream(f"shared-{s}")]
                assert versions == list(range(1, len(versions) + 1))
    finally:
        drop_schema(schema)


# --- a writer killed in the middle of a large append ---------------------------------------

_BIG_APPEND = r"""
import sys, uuid
from eventuali.records import NO_STREAM, NewRecord, StreamWrite
from eventuali.url import parse_url
from eventuali_python import PythonBackend
b = PythonBackend.open(parse_url(sys.argv[1]))
payload = b"x" * 400
records = [NewRecord(uuid.uuid4().bytes, "Big", 1, 0, b"{}", payload) for _ in range(int(sys.argv[2]))]
print("appending", flush=True)
b.append([StreamWrite("big", "T", NO_STREAM, records)])
print("done", flush=True)
"""


def test_writer_killed_mid_append_leaves_all_or_nothing(pg_url):
    n = 100_000
    app = f"killme_{uuid.uuid4().hex[:8]}"
    url = pg_url + f"&application_name={app}"
    with open_url(url) as b:
        b.append([StreamWrite("small", "T", NO_STREAM, [rec()])])
    child = subprocess.Popen([sys.executable, "-c", _BIG_APPEND, url, str(n)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "appending"
        # Wait until the server is executing the child's append (its transaction is open).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = admin_execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND state = 'active' AND query LIKE '%%eventuali_append%%'",
                (app,),
            )
            if rows[0][0]:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the child's append never reached the server")
        time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    # The server rolls the orphaned transaction back once it notices the dead client.
    with open_url(pg_url) as b:
        deadline = time.monotonic() + 30
        while admin_execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND xact_start IS NOT NULL", (app,))[0][0]:
            assert time.monotonic() < deadline, "the killed client's transaction is still open"
            time.sleep(0.05)
        # The server either never commits the statement (the batch is absent) or had
        # already received the whole of it and commits it (the batch is complete).
        count = len(b.read_stream("big"))
        assert count in (0, n)
        assert b.stream_version("big") == count and b.head() == 1 + count
        versions = [r.version for r in b.read_stream("big")]
        assert versions == list(range(1, count + 1))
        # The store goes on: the next append takes the next position.
        assert b.append([StreamWrite("after", "T", NO_STREAM, [rec()])]) == [2 + count]


# --- the server restarted under a running application --------------------------------------


@pytest.fixture(scope="module")
def private_server():
    need_clusters()
    c = clusters.Cluster.create()
    try:
        c.start()
        yield c
    finally:
        c.destroy()


def test_server_restart_cuts_one_operation_then_the_pool_recovers(private_server):
    c = private_server
    schema = f"r_{uuid.uuid4().hex[:8]}"
    with open_url(c.url(schema=schema, pool_size="2", max_overflow="2", pool_timeout="20")) as b:
        b.append([StreamWrite("s", "T", NO_STREAM, [rec()])])
        assert b.wait_for(0, 1) == 1  # starts the LISTEN connection too
        # A large append in flight while the server restarts is cut off, retryable, and absent.
        result: list[object] = []

        def big_append() -> None:
            try:
                result.append(b.append([StreamWrite("big", "T", NO_STREAM, [rec(b"y" * 300) for _ in range(150_000)])]))
            except Exception as exc:  # noqa: BLE001 - inspected below
                result.append(exc)

        t = threading.Thread(target=big_append)
        t.start()
        deadline = time.monotonic() + 60
        while not c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE '%%eventuali_append%%' AND pid <> pg_backend_pid()"
        )[0][0]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        c.restart()
        t.join(60)
        assert len(result) == 1 and isinstance(result[0], TransientStorageError), result
        assert "retry" in str(result[0])
        # Idle pooled connections died with the server: the pool recovers.
        assert b.read_stream("big") == []
        assert b.stream_version("s") == 1
        assert b.append([StreamWrite("s", "T", 1, [rec()])]) == [2]
        # The LISTEN connection comes back too: a commit wakes a waiter again.
        threading.Timer(0.5, lambda: b.append([StreamWrite("s", "T", 2, [rec()])])).start()
        t0 = time.monotonic()
        assert b.wait_for(2, timeout=20) == 3
        assert time.monotonic() - t0 < 10


def test_operation_between_restarts_gets_a_retryable_error_then_success(private_server):
    c = private_server
    schema = f"r_{uuid.uuid4().hex[:8]}"
    with open_url(c.url(schema=schema, pool_size="1", max_overflow="0", pool_timeout="20")) as b:
        b.append([StreamWrite("s", "T", NO_STREAM, [rec()])])
        c.restart()
        with pytest.raises(TransientStorageError):
            b.read_stream("s")  # its pooled connection died with the old server
        assert len(b.read_stream("s")) == 1


def test_server_down_gives_a_bounded_retryable_error(private_server):
    c = private_server
    schema = f"r_{uuid.uuid4().hex[:8]}"
    with open_url(c.url(schema=schema, pool_size="1", max_overflow="0", pool_timeout="2")) as b:
        b.append([StreamWrite("s", "T", NO_STREAM, [rec()])])
        c.stop()
        try:
            t0 = time.monotonic()
            for _ in range(2):  # the first finds the dead connection, the second waits for a new one
                with pytest.raises(TransientStorageError):
                    b.head()
            assert time.monotonic() - t0 < 10
        finally:
            c.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                assert b.head() == 1
                break
            except TransientStorageError:
                assert time.monotonic() < deadline
                time.sleep(0.2)


# --- bad connection settings ------------------------------------------------------------


def test_wrong_password_is_a_configuration_error_naming_the_user():
    need_clusters()
    c = clusters.Cluster.create()
    try:
        c.start()
        c.execute("CREATE ROLE alice LOGIN PASSWORD 'right'")
        c.execute("GRANT CREATE ON DATABASE postgres TO alice")
        hba = c.data / "pg_hba.conf"
        hba.write_text("host all alice 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        c.execute("SELECT pg_reload_conf()")
        time.sleep(0.3)
        with pytest.raises(ConfigurationError) as err:
            open_url(f"postgresql://alice:wrong@127.0.0.1:{c.port}/postgres")
        assert "'alice'" in str(err.value) and "wrong" not in str(err.value)
        with open_url(f"postgresql://alice:right@127.0.0.1:{c.port}/postgres?schema=alice_s") as b:
            assert b.append([StreamWrite("s", "T", NO_STREAM, [rec()])]) == [1]
    finally:
        c.destroy()


def test_unknown_role_and_database_are_configuration_errors():
    need_server()
    with pytest.raises(ConfigurationError) as err:
        open_url("postgresql://no_such_role_xyz@127.0.0.1:5432/test")
    assert "no_such_role_xyz" in str(err.value)
    with pytest.raises(ConfigurationError) as err:
        open_url("postgresql://postgres@127.0.0.1:5432/no_such_db_xyz")
    assert "no_such_db_xyz" in str(err.value) and "createdb" in str(err.value)


def test_unreachable_hosts_fail_within_the_connect_timeout():
    port = clusters.free_port()  # nothing listens there: refused at once
    t0 = time.monotonic()
    with pytest.raises(TransientStorageError) as err:
        open_url(f"postgresql://postgres@127.0.0.1:{port}/test")
    assert time.monotonic() - t0 < 5
    assert str(port) in str(err.value)
    # A non-routable address: nothing answers; connect_timeout bounds the wait.
    t0 = time.monotonic()
    with pytest.raises(TransientStorageError) as err:
        open_url("postgresql://postgres@10.255.255.1:5432/test?connect_timeout=2")
    assert time.monotonic() - t0 < 8
    assert "connect_timeout=2" in str(err.value)


def test_role_without_create_privilege_gets_a_clear_error_and_nothing_is_written():
    need_server()
    role = f"ro_{uuid.uuid4().hex[:8]}"
    url, schema = fresh_schema_url()
    admin_execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        with pytest.raises(StorageError) as err:
            open_url(url.replace("postgres@", f"{role}@"))
        msg = str(err.value)
        assert "permission denied" in msg and schema in msg and "grant" in msg.lower()
        assert admin_execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)) == [(0,)]
    finally:
        admin_execute(f'DROP ROLE "{role}"')
