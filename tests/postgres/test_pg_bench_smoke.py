"""bench/bench_postgres.py runs against the server and writes a complete document (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SERVER_URL, admin_execute, need_server

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]


def test_bench_postgres_quick_has_every_contender_and_leaves_no_schema(tmp_path):
    need_server()
    out = tmp_path / "pg.json"
    before = {r[0] for r in admin_execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'bench_')")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_postgres.py"), "--quick", "--postgres", SERVER_URL,
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    rows = {(r["workload"], r["contender"]): r for r in doc["results"]}
    contenders = {"eventuali-python-sync", "eventuali-python", "records-python", "postgres-alone",
                  "eventsourcing"}  # fmt: skip
    for workload in ("save_100x100", "load_100x100", "rebuild_1000"):
        for contender in contenders:
            row = rows[(workload, contender)]
            assert row["best"] > 0 and row["storage"] == "postgres", row
    assert rows[("save_100x100", "postgres-alone")]["kind"] == "server"
    assert rows[("save_100x100", "eventuali-python-sync")]["kind"] == "eventuali"
    after = {r[0] for r in admin_execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'bench_')")}
    assert after == before, f"bench schemas left behind: {sorted(after - before)}"
