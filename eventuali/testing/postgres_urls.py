"""The conformance suite's URL factory for ``postgresql://``: a fresh schema per test.

The server is ``$EVENTUALI_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``).  Each test gets a schema of its
own (created by the store on first open, dropped afterwards), so parallel
runs on one server do not collide.  An unreachable server, or psycopg missing,
skips the PostgreSQL targets with the reason - or fails them when
``EVENTUALI_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from .urls import SchemeUnavailable, register_url_factory

SERVER_ENV = "EVENTUALI_POSTGRES_URL"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get(SERVER_ENV, DEFAULT_SERVER).split("?", 1)[0]


@register_url_factory("postgresql", required_by="EVENTUALI_REQUIRE_POSTGRES")
def postgresql_url(tmp_path: Path) -> Iterator[str]:
    try:
        import psycopg
    except ImportError:
        raise SchemeUnavailable('psycopg is not installed: pip install "eventuali[postgresql]"') from None
    server = server_url()
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=5):
            pass
    except psycopg.Error as exc:
        raise SchemeUnavailable(
            f"PostgreSQL at {server} is unreachable ({str(exc).strip()}); start it or set {SERVER_ENV}"
        ) from None
    schema = f"conf_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{server}?schema={schema}&pool_size=1&max_overflow=4"
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
