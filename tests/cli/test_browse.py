"""``eventuali streams``, ``events`` and ``tail`` on every (engine, storage) pair."""

from __future__ import annotations

import select
import subprocess
import sys
import threading

import pytest

from eventuali.ids import uuid7
from eventuali.inspection.catalog import ScanCatalog, open_catalog
from eventuali.inspection.records import follow
from eventuali.records import NO_STREAM, NewRecord, ReadFilter, StreamWrite
from eventuali.store import SyncEventStore

from .conftest import json_lines, run, seed


def raw_write(stream: str, event_type: str, payload: bytes, stream_type: str = "Raw"
              ) -> StreamWrite:
    rec = NewRecord(uuid7().bytes, event_type, 1, 1_700_000_000_000_000, b"", payload)
    return StreamWrite(stream, stream_type, NO_STREAM, [rec])


def test_streams_lists_each_stream_with_type_version_count_and_times(target, capsys):
    url, backend = target
    seed(url, backend, accounts=3, deposits=2)
    with SyncEventStore.create(url, backend=backend) as store:
        store.backend.append([raw_write("other-1", "Thing", b'{"x": 1}', "Other")])
    code, out, _ = run(capsys, "streams", url, "--backend", backend, "--json")
    assert code == 0
    rows = json_lines(out)
    assert [r["stream_id"] for r in rows] == ["acc-0", "acc-1", "acc-2", "other-1"]
    assert rows[0]["stream_type"] == "Account" and rows[0]["version"] == 3
    assert rows[0]["events"] == 3 and rows[0]["first_timestamp"] <= rows[0]["last_timestamp"]
    assert rows[3]["stream_type"] == "Other" and rows[3]["first_timestamp"].startswith("2023-11-14")

    code, out, _ = run(capsys, "streams", url, "--backend", backend, "--json", "--type", "Other")
    assert [r["stream_id"] for r in json_lines(out)] == ["other-1"]
    code, out, _ = run(capsys, "streams", url, "--backend", backend, "--json", "--prefix", "acc-",
                       "--limit", "2")
    assert [r["stream_id"] for r in json_lines(out)] == ["acc-0", "acc-1"]
    code, out, _ = run(capsys, "streams", url, "--backend", backend)
    assert code == 0 and "acc-0" in out and "Account" in out


def test_sql_catalog_and_protocol_scan_agree(target):
    url, backend = target
    seed(url, backend, accounts=4, deposits=1)
    with SyncEventStore.create(url, backend=backend) as store:
        store.backend.truncate_stream("acc-1", 2)
        store.backend.delete_stream("acc-2")
        catalog = open_catalog(store.backend, store.url)
        try:
            for args in [(), ("Account", None, None), (None, "acc-", 2), ("Nope", None, None)]:
                assert catalog.streams(*args) == ScanCatalog(store.backend).streams(*args)
        finally:
            catalog.close()
        assert [s.stream_id for s in ScanCatalog(store.backend).streams()] == [
            "acc-0", "acc-1", "acc-3"]


def test_events_decodes_known_classes_and_shows_the_rest_raw(target, capsys):
    url, backend = target
    seed(url, backend, accounts=1, deposits=2)
    with SyncEventStore.create(url, backend=backend) as store:
        store.backend.append([raw_write("raw-1", "NotAClass", b'{"a": [1, 2]}')])
        store.backend.append([raw_write("raw-2", "Bytes", b"\x00\xffnot json")])
    code, out, _ = run(capsys, "events", url, "acc-0", "--backend", backend, "--json",
                       "--import", "eventuali.demo", "--from-version", "2")
    views = json_lines(out)
    assert code == 0 and [v["version"] for v in views] == [2, 3]
    assert views[0]["decoded_as"] == "eventuali.demo.MoneyDeposited"
    assert views[0]["data"]["amount"] == 10.0 and views[0]["data"]["description"] == "deposit 0"

    code, out, _ = run(capsys, "events", url, "raw-1", "--backend", backend, "--json")
    (view,) = json_lines(out)
    assert view["data"] == {"a": [1, 2]} and "decoded_as" not in view
    code, out, _ = run(capsys, "events", url, "raw-2", "--backend", backend, "--json")
    (view,) = json_lines(out)
    assert "data" not in view and view["payload_b64"] == "AP9ub3QganNvbg=="
    assert view["undecoded"]
    code, out, _ = run(capsys, "events", url, "raw-2", "--backend", backend)
    assert code == 0 and "AP9ub3QganNvbg==" in out


def test_tail_prints_the_feed_filtered_by_type_and_start(target, capsys):
    url, backend = target
    seed(url, backend, accounts=2, deposits=2)
    code, out, _ = run(capsys, "tail", url, "--backend", backend, "--json")
    assert [v["position"] for v in json_lines(out)] == list(range(1, 7))
    code, out, _ = run(capsys, "tail", url, "--backend", backend, "--json", "--from", "3",
                       "--type", "AccountOpened")
    assert [(v["stream_id"], v["event_type"]) for v in json_lines(out)] == [
        ("acc-1", "AccountOpened")]


def test_follow_wakes_for_each_new_event(target):
    """The core feed under ``tail --follow``: new commits arrive, filters apply."""
    url, backend = target
    seed(url, backend, accounts=1, deposits=0)
    with SyncEventStore.create(url, backend=backend) as store:
        stop = threading.Event()
        got: list = []

        def writer() -> None:
            for i in range(3):
                store.backend.append([raw_write(f"live-{i}", "Live", b"{}")])
                store.backend.append([raw_write(f"skip-{i}", "Skip", b"{}")])

        feed = follow(store.backend, 2, ReadFilter(event_types=frozenset({"Live"})), wait=0.2,
                      stop=stop.is_set)
        t = threading.Thread(target=writer)
        t.start()
        for r in feed:
            if r is not None:
                got.append(r.stream_id)
            if len(got) == 3:
                stop.set()
        t.join()
    assert got == ["live-0", "live-1", "live-2"]


@pytest.mark.parametrize("storage", ["sqlite", "postgresql"])
def test_tail_follow_prints_events_committed_after_it_started(tmp_path, storage, request):
    """Another process's commits reach ``tail --follow`` (LISTEN/NOTIFY on PostgreSQL)."""
    url = (f"sqlite://{tmp_path}/f.db" if storage == "sqlite"
           else request.getfixturevalue("pg_target"))
    seed(url, "python", accounts=1, deposits=0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventuali", "tail", url, "--follow", "--json", "--from", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with SyncEventStore.create(url) as store:
            for i in (1, 2):
                store.backend.append([raw_write(f"new-{i}", "New", b'{"n": 1}')])
                ready, _, _ = select.select([proc.stdout], [], [], 120)
                assert ready, "tail --follow printed nothing within 120 s"
                line = proc.stdout.readline()
                assert f'"stream_id":"new-{i}"' in line and f'"position":{i + 1}' in line
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("argv, message", [
    (["streams", "sqlite:///nonexistent/x.db"], "no SQLite store"),
    (["streams", "memory://x", "--limit", "0"], "--limit 0 is invalid"),
    (["events", "memory://x", "s", "--import", "no_such_module_x"], "cannot import"),
    (["tail", "memory://x", "--from", "0"], "--from 0 is invalid"),
    (["streams", "bogus://x"], "bogus"),
])
def test_bad_input_exits_non_zero_with_a_clear_message(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err.replace("\n", " ")


def test_sqlite_stats_read_the_file_without_writing(tmp_path):
    path = tmp_path / "x.db"
    url = f"sqlite://{path}"
    seed(url, "python", accounts=2, deposits=1)
    with SyncEventStore.create(url) as store:
        store.backend.delete_stream("acc-1")
        store.backend.set_checkpoint("p", 2)
    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(tmp_path.glob("x.db*"))}

    with SyncEventStore.create(url) as store:
        before = files()
        catalog = open_catalog(store.backend, store.url)
        stats = catalog.stats()
        catalog.close()
        after = files()
    assert (stats["head"], stats["events"], stats["streams"], stats["deleted_streams"]) == (
        4, 2, 2, 1)
    assert stats["checkpoints"] == 1 and stats["schema_version"] >= 1
    assert stats["created_by"].startswith("python") and stats["size_bytes"] > 0
    assert after == before


def test_a_sqlite_file_that_is_no_store_is_refused(tmp_path, capsys):
    import sqlite3

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    code, _, err = run(capsys, "streams", f"sqlite://{other}")
    assert code == 2 and "other.db" in err
