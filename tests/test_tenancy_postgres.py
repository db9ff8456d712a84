"""Tenancy on PostgreSQL: a schema per tenant (database isolation) and row isolation.

Needs the PostgreSQL server (``$EVENTUALI_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``) and an engine serving
``postgresql://``.  Skips with the reason when either is missing - unless
``EVENTUALI_REQUIRE_POSTGRES=1``, where it fails.
"""

from __future__ import annotations

import os
import uuid

import pytest

from eventuali import Aggregate, Event, EventualiError
from eventuali.registry import choose
from eventuali.tenancy import TenantManager
from eventuali.url import parse_url

SERVER = os.environ.get("EVENTUALI_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
pytestmark = pytest.mark.postgres


class PgTenantOrderPlaced(Event):
    amount: int


class PgOrder(Aggregate):
    total: int = 0

    def apply_pg_tenant_order_placed(self, event: PgTenantOrderPlaced) -> None:
        self.total += event.amount


def _order(id: str, amount: int) -> PgOrder:
    o = PgOrder(id=id)
    o.apply(PgTenantOrderPlaced(amount=amount))
    return o


def _need_postgres() -> None:
    problem = None
    try:
        choose(parse_url(SERVER), None)
        import psycopg

        psycopg.connect(SERVER.split("?")[0], connect_timeout=3).close()
    except (EventualiError, ImportError, OSError) as exc:
        problem = f"no usable PostgreSQL for tenancy tests at {SERVER}: {exc}"
    except Exception as exc:  # noqa: BLE001 - psycopg.Error and friends, reported below
        problem = f"PostgreSQL at {SERVER} is unreachable: {exc}"
    if problem:
        if os.environ.get("EVENTUALI_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{problem} (EVENTUALI_REQUIRE_POSTGRES=1)")
        pytest.skip(problem)


def _schemas(prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(SERVER.split("?")[0], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
            (prefix + "%",),
        ).fetchall()
    return sorted(r[0] for r in rows)


def _drop(prefix: str) -> None:
    import psycopg

    with psycopg.connect(SERVER.split("?")[0], autocommit=True) as conn:
        for s in _schemas(prefix):
            conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


@pytest.fixture
def prefix():
    _need_postgres()
    p = f"tt{uuid.uuid4().hex[:10]}"
    yield p
    _drop(p)


async def test_database_isolation_makes_a_schema_per_tenant(prefix):
    base = SERVER.split("?")[0] + f"?schema={prefix}"
    async with TenantManager({"isolation_level": "database", "base_url": base}) as m:
        acme, eu = await m.get_store("acme"), await m.get_store("acme-eu")
        await acme.save(_order("o", 1))
        await eu.save(_order("o", 2))
        assert (await acme.load(PgOrder, "o")).total == 1
        assert (await eu.load(PgOrder, "o")).total == 2
        assert len(await eu.read_all()) == 1
    assert _schemas(prefix) == [f"{prefix}_acme", f"{prefix}_acme_eu"]


async def test_row_isolation_on_one_schema(prefix):
    base = SERVER.split("?")[0] + f"?schema={prefix}"
    async with TenantManager({"isolation_level": "row", "base_url": base}) as m:
        acme, evil = await m.get_store("acme"), await m.get_store("evil")
        await acme.save(_order("secret", 999))
        for guess in ("secret", "acme/secret"):
            assert await evil.load(PgOrder, guess) is None
        assert await evil.read_all() == []
        await evil.save(_order("secret", 1))
        assert (await acme.load(PgOrder, "secret")).total == 999
    assert _schemas(prefix) == [prefix]
