"""The examples the performance guide cites: each runs with no arguments but a small workload,
prints its sections with measured numbers, and the checks that do not depend on timing hold.

Timing checks (faster / sub-millisecond / linear) are printed by the examples with ✅ or ❌ as
measured; the tests assert the numbers are there, not their size (no timing assertions).
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .test_guide_snippets import _postgres_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NUMBER = r"[\d,]+(?:\.\d+)?"


def run_example(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def sections(out: str) -> list[str]:
    return re.findall(r"^\d\. (.+):$", out, re.M)


def check_projections(out: str, users: int) -> None:
    assert sections(out) == ["Projection processing (catch-up)", "Query performance", "Real-time updates"]
    assert re.search(rf"✅ Processed {users:,} of {users:,} stored events in \d+\.\d{{3}} seconds", out)
    assert re.search(rf"Throughput: {NUMBER} events/second", out)
    assert "✅ 10,000 get_user() lookups, every user found" in out
    assert re.search(rf"Average query: {NUMBER}µs \(sub-millisecond: (yes|no)\)", out)
    assert re.search(rf"✅ A user saved after subscribe\(\) reached the projection in {NUMBER}ms", out)
    assert f"✅ Events processed: {users + 1:,}" in out


def check_snapshots(out: str, events: int) -> None:
    assert sections(out) == ["Aggregate reconstruction", "Storage", "Cleanup"]
    assert re.search(rf"Full replay of {events:,} events: {NUMBER}ms", out)
    assert re.search(rf"From the newest snapshot: {NUMBER}ms", out)
    assert re.search(rf"Snapshot load {NUMBER}x faster than replay", out)
    assert re.search(rf"✅ Same state both ways \(balance -?\d+, version {events}\)", out)
    taken = events // 100
    # Compression is measured in bytes, not time: the JSON state of the example compresses.
    assert re.search(rf"✅ Compressed snapshots take \d+% of their JSON size \(\d+% storage reduction "
                     rf"over {taken} snapshots\)", out)
    kept = ", ".join(str(events - 100 * i) for i in range(min(taken, 5)))
    assert f"✅ {min(taken, 5)} snapshots kept of {taken} taken (max_snapshots=5; versions {kept})" in out


def check_tenants(out: str, tenants: int, orders: int) -> None:
    assert sections(out) == ["Tenant validation overhead", "Isolation", "Scaling with tenant count",
                             "Per-tenant metrics"]
    assert re.search(rf"Load through the tenant store: {NUMBER}ms; plain store: {NUMBER}ms", out)
    assert re.search(rf"Tenant overhead: -?{NUMBER}ms per operation \(<0\.1ms: (yes|no)\)", out)
    reads = tenants * (orders + 1)
    assert (f"✅ Isolation success rate: 100.0% ({reads:,} of {reads:,} reads saw their own tenant's "
            f"data only; {tenants} tenants sharing {orders} order ids)") in out
    assert re.search(rf"scaling: time per tenant stays within {NUMBER}x \(1 tenants: {NUMBER}ms/tenant, "
                     rf"2 tenants: {NUMBER}ms/tenant, 4 tenants: {NUMBER}ms/tenant\)", out)
    assert f"✅ Events written per tenant: {', '.join([str(orders)] * tenants)}" in out


def check_pooling(out: str, ops: int, postgres: bool) -> None:
    assert sections(out) == ["Connection reuse", "Throughput under load (4 concurrent writers)"]
    assert re.search(rf"A new store per save: {NUMBER}ms per save", out)
    assert re.search(rf"One store, connections reused: {NUMBER}ms per save", out)
    assert re.search(rf"Reuse is {NUMBER}x faster per save", out)
    assert f"✅ All {2 * ops:,} saves stored" in out
    if postgres:
        assert re.search(rf"pool_size=1: {NUMBER} saves/second", out)
        assert re.search(rf"the guide's URL\): {NUMBER} saves/second", out)
        assert re.search(rf"Pooling gives {NUMBER}x the throughput", out)
    else:
        assert re.search(rf"✅ {ops:,} saves from 4 writers on one store: {NUMBER} saves/second", out)
        assert "Pool sizes: not applicable to this store" in out


def test_projections_example():
    check_projections(run_example("08_projections.py", "--users", "300"), 300)


def test_snapshots_example():
    check_snapshots(run_example("21_snapshots.py", "--events", "700"), 700)


def test_tenant_isolation_example():
    check_tenants(run_example("30_tenant_isolation_architecture.py", "--tenants", "4", "--orders", "20"),
                  4, 20)


def test_connection_pooling_example():
    check_pooling(run_example("44_connection_pooling_performance.py", "--ops", "24", "--workers", "4"),
                  24, postgres=False)


@pytest.fixture
def pg_schema_prefix():
    """A schema name of our own on the local server; every schema it prefixes is dropped afterwards."""
    server = _postgres_server()
    prefix = f"ex_{uuid.uuid4().hex[:10]}"
    yield server, prefix
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        for (name,) in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                    (prefix + "%",)).fetchall():
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def test_examples_on_postgresql(pg_schema_prefix):
    server, prefix = pg_schema_prefix
    check_projections(run_example("08_projections.py", "--users", "200",
                                  "--url", f"{server}?schema={prefix}_p"), 200)
    check_snapshots(run_example("21_snapshots.py", "--events", "300",
                                "--url", f"{server}?schema={prefix}_s"), 300)
    check_tenants(run_example("30_tenant_isolation_architecture.py", "--tenants", "4", "--orders", "10",
                              "--url", f"{server}?schema={prefix}_t"), 4, 10)
    check_pooling(run_example("44_connection_pooling_performance.py", "--ops", "12", "--workers", "4",
                              "--url", f"{server}?schema={prefix}_c"), 12, postgres=True)
