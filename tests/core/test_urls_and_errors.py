"""Store URLs, backend selection, and bad input that must fail clearly and write nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from eventuali import (
    BackendNotFoundError,
    ConfigurationError,
    NotAnEventualiStoreError,
    SchemaVersionError,
    StorageError,
    SyncEventStore,
    UnknownSchemeError,
)
from eventuali.url import parse_url

from .domain import User, registered_user


@pytest.mark.parametrize(
    "url, scheme, path",
    [
        ("sqlite://events.db", "sqlite", "events.db"),
        ("sqlite:///abs/path.db", "sqlite", "/abs/path.db"),
        ("sqlite://:memory:", "sqlite", ":memory:"),
        ("memory://", "memory", ""),
        ("memory://shared", "memory", "shared"),
        ("events.db", "sqlite", "events.db"),
        ("/var/x.db", "sqlite", "/var/x.db"),
        ("sqlite+python:///x.db", "sqlite", "/x.db"),
        ("sqlite:////abs/x.db", "sqlite", "/abs/x.db"),
    ],
)
def test_url_forms(url, scheme, path):
    u = parse_url(url)
    assert (u.scheme, u.path) == (scheme, path)


def test_postgres_url_fields_and_redaction():
    u = parse_url("postgres://me:s%40cret@db.example:5433/app?pool_size=20&application_name=x")
    assert (u.scheme, u.user, u.password, u.host, u.port, u.database) == (
        "postgresql", "me", "s@cret", "db.example", 5433, "app")
    assert u.options == {"pool_size": "20", "application_name": "x"}
    assert "s%40cret" not in repr(u) and "***" in repr(u)


def test_relative_sqlite_url_is_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with SyncEventStore.create("sqlite://events.db") as s:
        s.save(registered_user())
    assert (tmp_path / "events.db").exists()
    with SyncEventStore.create(str(tmp_path / "events.db")) as s:  # bare path
        assert s.load(User, "user-1").version == 1


def test_sqlite_in_memory_url_works():
    with SyncEventStore.create("sqlite://:memory:") as s:
        s.save(registered_user())
        assert s.load(User, "user-1") is not None


@pytest.mark.parametrize("url", ["mongodb://localhost/x", "ftp://x"])
def test_unknown_scheme_lists_the_schemes_served(url):
    with pytest.raises(UnknownSchemeError) as info:
        SyncEventStore.create(url)
    msg = str(info.value)
    assert "sqlite://" in msg and "memory://" in msg and "python" in msg


@pytest.mark.parametrize("url", ["sqlite://", "postgresql:nohost", "", "memory:/x"])
def test_malformed_urls_are_configuration_errors(url):
    with pytest.raises(ConfigurationError):
        SyncEventStore.create(url)


def test_unknown_backend_in_env_names_it_and_lists_the_registered(monkeypatch):
    monkeypatch.setenv("EVENTUALI_BACKEND", "nosuch")
    with pytest.raises(BackendNotFoundError) as info:
        SyncEventStore.create("memory://")
    msg = str(info.value)
    assert "nosuch" in msg and "EVENTUALI_BACKEND" in msg and "python" in msg


def test_backend_argument_beats_the_env(monkeypatch):
    monkeypatch.setenv("EVENTUALI_BACKEND", "nosuch")
    with SyncEventStore.create("memory://", backend="python") as s:
        assert s.backend_name == "python"


def test_a_file_that_is_not_an_eventuali_store(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("create table customers (id integer primary key, name text)")
    con.commit()
    con.close()
    with pytest.raises(NotAnEventualiStoreError) as info:
        SyncEventStore.create(f"sqlite:///{path}")
    assert str(path) in str(info.value)
    con = sqlite3.connect(path)  # and it was left alone
    assert [r[0] for r in con.execute("select name from sqlite_master where type='table'")] == [
        "customers"
    ]
    con.close()


def test_a_store_from_a_newer_schema_version(tmp_path):
    path = tmp_path / "newer.db"
    with SyncEventStore.create(f"sqlite:///{path}") as s:
        s.save(registered_user())
    con = sqlite3.connect(path)
    con.execute("update eventuali_meta set value = '999' where key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(SchemaVersionError, match="999"):
        SyncEventStore.create(f"sqlite:///{path}")


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(StorageError) as info:
        SyncEventStore.create(f"sqlite:///{tmp_path}/no/such/dir/x.db")
    assert "no/such/dir" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(StorageError):
            SyncEventStore.create(f"sqlite:///{ro}/x.db")
    finally:
        ro.chmod(0o755)


def test_read_only_file_refuses_writes_and_writes_nothing(tmp_path):
    """Root ignores permission bits, so a read-only store is made with SQLite's own flag."""
    path = tmp_path / "ro.db"
    with SyncEventStore.create(f"sqlite:///{path}") as s:
        s.save(registered_user("ro-1"))
    os.chmod(path, 0o444)
    try:
        with SyncEventStore.create(f"sqlite:///{path}?mode=ro") as s:
            assert s.load(User, "ro-1").version == 1
            with pytest.raises(StorageError):
                s.save(registered_user("ro-2"))
            assert s.load(User, "ro-2") is None
    finally:
        os.chmod(path, 0o644)


def test_cli_backends_lists_python_as_loading():
    out = subprocess.run(
        [sys.executable, "-m", "eventuali", "backends"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "python" in out.stdout and "ok" in out.stdout and "sqlite" in out.stdout


def test_cli_demo_runs_on_sqlite(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "eventuali", "demo", "--url", f"sqlite:///{tmp_path}/d.db",
         "--accounts", "5", "--transactions", "20"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 accounts x 20 events = 100 events" in out.stdout


@pytest.mark.parametrize(
    "url, path",
    [
        ("jsonl://Events.jsonl", "Events.jsonl"),
        ("jsonl:///abs/Dir/E.jsonl", "/abs/Dir/E.jsonl"),
        ("jsonl://rel/Sub/E.jsonl?fsync=1", "rel/Sub/E.jsonl"),
        ("jsonl://with%20space.jsonl", "with space.jsonl"),
        ("jsonl+mine://C:/x.jsonl", "C:/x.jsonl"),
        ("mine://me@Host.example:6000/Db", "me@Host.example:6000/Db"),
    ],
)
def test_a_new_scheme_keeps_its_location_as_written(url, path):
    """A third-party scheme's path is the text between :// and ?, case and slashes kept."""
    u = parse_url(url)
    assert u.path == path
    assert u.scheme == url.split(":")[0].split("+")[0]


def test_a_new_scheme_also_gets_server_fields_when_it_names_a_server():
    u = parse_url("mine://me:pw@Host.example:6000/Db?x=1")
    assert (u.user, u.password, u.host, u.port, u.database) == ("me", "pw", "host.example", 6000, "Db")
    assert u.options == {"x": "1"}
    opaque = parse_url("jsonl+mine://C:/x.jsonl")
    assert (opaque.port, opaque.backend) == (None, "mine")
