"""The end-to-end bench harness runs and writes a complete JSON document (no timing asserted).

Runs ``bench/bench_e2e.py --quick`` on memory:// and a SQLite file with tiny counts in a
subprocess, as a user would, and checks that every workload produced a row
for the floor, each eventuali API and the eventsourcing peer, with positive
throughputs, and that ``bench/report.py`` turns it into Markdown and a PNG.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
WORKLOADS = {"create", "save_100x100", "save_10000x1", "load_100x100", "load_events_100x100",
             "rebuild_1000"}



def test_bench_extra_is_installed() -> None:
    # Not a skip: without the peer and matplotlib the harness cannot do its job.
    import importlib.util

    missing = [m for m in ("eventsourcing", "matplotlib") if importlib.util.find_spec(m) is None]
    assert not missing, f"{missing} not installed; pip install -e '.[bench]'"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, check=False)


@pytest.fixture(scope="module")
def e2e_json(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "e2e.json"
    proc = run(str(BENCH / "bench_e2e.py"), "--quick", "--storages", "memory,sqlite",
               "--backends", "python", "--aggregates", "3", "--events-per-aggregate", "4",
               "--singles", "5", "--rebuild-events", "6", "--rebuild-loops", "2",
               "--repeats", "1", "--json", str(out), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_document_shape(e2e_json: dict) -> None:
    assert e2e_json["format"] == "eventuali-bench/1"
    assert e2e_json["script"] == "bench_e2e.py"
    assert "bench_e2e.py --quick" in e2e_json["command"]
    for key in ("cores", "python", "pydantic", "sqlite", "eventsourcing"):
        assert e2e_json["machine"][key], key
    assert e2e_json["settings"]["counts"]["aggregates"] == 3


def test_every_workload_has_every_contender(e2e_json: dict) -> None:
    rows = e2e_json["results"]
    seen = {(r["workload"], r["storage"], r["contender"]) for r in rows}
    for w in WORKLOADS:
        assert (w, "-", "pydantic") in seen, w
    assert ("create", "-", "eventuali") in seen
    assert ("create", "-", "eventsourcing") in seen
    for w in WORKLOADS - {"create"}:
        for storage in ("memory", "sqlite"):
            for contender in ("eventuali-python", "eventuali-python-sync", "eventsourcing"):
                assert (w, storage, contender) in seen, (w, storage, contender)
    # The reference engine serves both storages: it is never among the skipped.
    assert not [s for s in e2e_json["skipped"] if s["contender"] == "eventuali-python"]


def test_numbers_are_positive_and_consistent(e2e_json: dict) -> None:
    counts = e2e_json["settings"]["counts"]
    expected_events = {
        "create": 3 * 4, "save_100x100": 3 * 4, "save_10000x1": 5, "load_100x100": 3 * 4,
        "load_events_100x100": 3 * 4, "rebuild_1000": 6 * counts["rebuild_loops"],
    }
    for r in e2e_json["results"]:
        for key in ("best", "median"):
            assert isinstance(r[key], float) and r[key] > 0, r
        assert r["best"] >= r["median"]
        assert r["events"] == expected_events[r["workload"]], r
        assert len(r["seconds"]) == 1 and all(s > 0 for s in r["seconds"])
        assert r["unit"] == "events/s"
        if r["workload"] == "rebuild_1000":
            assert r["ms_per_op"] > 0


def test_report_writes_markdown_and_png(e2e_json: dict, tmp_path: Path) -> None:
    src = tmp_path / "e2e.json"
    src.write_text(json.dumps(e2e_json))
    proc = run(str(BENCH / "report.py"), str(src), "--out-dir", str(tmp_path), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "results.md").read_text()
    assert e2e_json["command"] in md
    assert "| memory | **eventuali-python** |" in md
    assert "× floor" in md and "vs eventsourcing" in md
    png = (tmp_path / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_ratios_pair_the_right_rows() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import result_format
    finally:
        sys.path.remove(str(BENCH))

    def row(contender: str, kind: str, storage: str, seconds: float) -> dict:
        return result_format.result_row(workload="save_100x100", storage=storage,
                                        contender=contender, kind=kind, events=1000,
                                        seconds=[seconds])

    doc = {"results": [
        row("pydantic", "floor", "-", 0.01),               # 100,000 events/s
        row("eventuali-python", "eventuali", "sqlite", 0.02),
        row("eventuali-c", "eventuali", "sqlite", 0.016),
        row("eventuali-c-sync", "eventuali", "sqlite", 0.01),
        row("eventuali-python-sync", "eventuali", "sqlite", 0.04),
        row("eventsourcing", "peer", "sqlite", 0.08),
    ]}
    got = {(r["contender"], r["ratio"]): round(r["value"], 3) for r in result_format.ratios(doc)}
    assert got[("eventuali-python", "x_floor")] == 2.0
    assert got[("eventsourcing", "x_floor")] == 8.0
    assert got[("eventuali-python", "vs_eventsourcing")] == 4.0
    assert got[("eventuali-c", "c_vs_python")] == 1.25
    assert got[("eventuali-c-sync", "c_vs_python")] == 4.0  # paired with python-sync, not python
    assert ("eventuali-python", "c_vs_python") not in got
    assert ("pydantic", "x_floor") not in got
    assert result_format.validate({**doc, "format": result_format.FORMAT, "script": "x",
                                   "command": "x", "started_at": "x", "machine": {},
                                   "settings": {}}) == []
