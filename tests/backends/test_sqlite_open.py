"""The SQLite engine's open rules and URL options (eventuali/schema/sqlite.sql, header).

Engine-independent behaviour is in the conformance suite; this file covers what
only a ``sqlite://`` store has: files, directories, pragmas, schema versions.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from eventuali.errors import (
    ConfigurationError,
    NotAnEventualiStoreError,
    SchemaVersionError,
    StorageError,
)
from eventuali.records import NO_STREAM
from eventuali.registry import open_backend
from eventuali.testing.contract import write
from eventuali.url import parse_url


def open_sqlite(url: str):
    return open_backend(parse_url(url), backend="python")


def test_new_file_gets_the_schema_wal_and_meta_rows(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with open_sqlite(f"sqlite://{path}") as b:
        b.append([write("s", NO_STREAM, 1)])
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(conn.execute("SELECT key, value FROM eventuali_meta"))
    assert meta["schema_version"] == "1" and meta["created_by"].startswith("python ")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"eventuali_events", "eventuali_streams", "eventuali_snapshots", "eventuali_checkpoints"} <= tables
    conn.close()


def test_relative_path_is_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_sqlite("sqlite://events.db") as b:
        b.append([write("s", NO_STREAM, 1)])
    assert (tmp_path / "events.db").exists()
    with open_sqlite(str(tmp_path / "events.db")) as b:  # a bare path is SQLite too
        assert b.stream_version("s") == 1


def test_missing_directory_names_the_path_and_the_fix(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(StorageError) as err:
        open_sqlite(f"sqlite://{target}")
    assert str(target.parent) in str(err.value) and "create it" in str(err.value)
    assert not target.parent.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_refused_with_the_fix(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(StorageError) as err:
            open_sqlite(f"sqlite://{ro / 'x.db'}")
        assert "not writable" in str(err.value) and str(ro) in str(err.value)
    finally:
        ro.chmod(0o755)


def test_read_only_directory_check_uses_access(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also under root (CI containers): the engine asks os.access before SQLite fails obscurely."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(StorageError, match="not writable"):
        open_sqlite(f"sqlite://{tmp_path / 'x.db'}")
    assert not (tmp_path / "x.db").exists()


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="is a directory"):
        open_sqlite(f"sqlite://{tmp_path}")


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(NotAnEventualiStoreError) as err:
        open_sqlite(f"sqlite://{path}")
    assert str(path) in str(err.value)
    assert path.read_bytes().startswith(b"these are my notes")


def test_a_sqlite_database_of_another_application(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(NotAnEventualiStoreError) as err:
        open_sqlite(f"sqlite://{path}")
    assert "customers" in str(err.value) and str(path) in str(err.value)
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["customers"]
    conn.close()


def test_a_newer_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_sqlite(f"sqlite://{path}").close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE eventuali_meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError) as err:
        open_sqlite(f"sqlite://{path}")
    assert "99" in str(err.value) and "upgrade" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    "query, match",
    [
        ("cache=big", "unknown SQLite option.*cache.*synchronous, busy_timeout"),
        ("synchronous=sometimes", "synchronous='sometimes'.*full, normal, off"),
        ("busy_timeout=soon", "busy_timeout='soon'.*milliseconds"),
        ("busy_timeout=-1", "busy_timeout='-1'"),
    ],
)
def test_bad_options_are_named(tmp_path: Path, query: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        open_sqlite(f"sqlite://{tmp_path / 'x.db'}?{query}")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("level, expected", [("full", 2), ("normal", 1), ("off", 0), ("FULL", 2)])
def test_synchronous_option_reaches_the_connection(tmp_path: Path, level: str, expected: int) -> None:
    with open_sqlite(f"sqlite://{tmp_path / 'x.db'}?synchronous={level}&busy_timeout=250") as b:
        assert b._conn.execute("PRAGMA synchronous").fetchone()[0] == expected
        assert b._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 250


def test_memory_database_capabilities() -> None:
    with open_sqlite("sqlite://:memory:") as b:
        assert "persistent" not in b.capabilities and "snapshots" in b.capabilities
        b.append([write("s", NO_STREAM, 1)])
        assert b.head() == 1


def _create(path: str, n: int) -> str:
    b = open_sqlite(f"sqlite://{path}")
    b.append([write(f"s-{n}", NO_STREAM, 1)])
    b.close()
    return "ok"


def test_several_processes_create_the_same_file_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "race.db")
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert pool.starmap(_create, [(path, n) for n in range(4)]) == ["ok"] * 4
    with open_sqlite(f"sqlite://{path}") as b:
        assert len(b.read_all()) == 4
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM eventuali_meta").fetchone()[0] == 2
    conn.close()

def _die_before_commit(path: str) -> None:
    """Child: append 500 events, but the process dies after the inserts, before COMMIT."""
    from eventuali_python.sqlite import SQLiteBackend

    original = SQLiteBackend._append_locked

    def then_die(self, conn, writes, checkpoint):
        original(self, conn, writes, checkpoint)
        os._exit(9)

    SQLiteBackend._append_locked = then_die  # type: ignore[method-assign]
    b = open_sqlite(f"sqlite://{path}")
    b.append([write("half", NO_STREAM, 500)])


def test_a_process_dying_mid_append_leaves_nothing_behind(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    with open_sqlite(f"sqlite://{path}") as b:
        b.append([write("before", NO_STREAM, 2)])
    child = multiprocessing.get_context("spawn").Process(target=_die_before_commit, args=(path,))
    child.start()
    child.join(60)
    assert child.exitcode == 9
    with open_sqlite(f"sqlite://{path}?busy_timeout=2000") as b:
        assert b.read_stream("half") == [] and b.stream_version("half") == 0
        assert b.head() == 2
        assert b.append([write("after", NO_STREAM, 1)]) == [3]  # the write lock was released
