"""Fixtures for the PostgreSQL tests: a fresh schema per test on the shared server, throwaway clusters.

The server is ``$EVENTUALI_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``).  When it cannot be reached the
tests skip with the reason - unless ``EVENTUALI_REQUIRE_POSTGRES=1`` (CI), where
they fail: a CI run without PostgreSQL must not pass silently.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest

from . import cluster as clusters

SERVER_URL = os.environ.get("EVENTUALI_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRED = os.environ.get("EVENTUALI_REQUIRE_POSTGRES") == "1"


def _conninfo(url: str) -> str:
    return url.split("?", 1)[0]


_reachable: str | None | bool = False


def server_problem() -> str | None:
    """None when the shared server answers, else why not (cached for the run)."""
    global _reachable
    if _reachable is False:
        try:
            with psycopg.connect(_conninfo(SERVER_URL), connect_timeout=3):
                _reachable = None
        except psycopg.Error as exc:
            _reachable = f"PostgreSQL at {SERVER_URL} is unreachable: {str(exc).strip()}"
    return _reachable  # type: ignore[return-value]


def need_server() -> None:
    problem = server_problem()
    if problem:
        if REQUIRED:
            pytest.fail(f"{problem} (EVENTUALI_REQUIRE_POSTGRES=1, so this is a failure)")
        pytest.skip(problem)


def need_clusters() -> None:
    problem = clusters.available()
    if problem:
        if REQUIRED:
            pytest.fail(f"{problem} (EVENTUALI_REQUIRE_POSTGRES=1, so this is a failure)")
        pytest.skip(problem)


def admin_execute(sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(_conninfo(SERVER_URL), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def fresh_schema_url(**options: str) -> tuple[str, str]:
    """(url, schema): a URL on the shared server naming a schema no one else uses."""
    need_server()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    query = "&".join(f"{k}={v}" for k, v in {"schema": schema, **options}.items())
    return f"{_conninfo(SERVER_URL)}?{query}", schema


def drop_schema(schema: str) -> None:
    if server_problem() is None:
        admin_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg_url():
    url, schema = fresh_schema_url()
    yield url
    drop_schema(schema)


@pytest.fixture
def pg_backend(pg_url):
    from eventuali_python import PythonBackend

    from eventuali.url import parse_url

    backend = PythonBackend.open(parse_url(pg_url))
    yield backend
    backend.close()


@pytest.fixture
def throwaway_cluster():
    """A private PostgreSQL server (own folder, free port), destroyed afterwards."""
    need_clusters()
    c = clusters.Cluster.create()
    try:
        c.start()
        yield c
    finally:
        c.destroy()
