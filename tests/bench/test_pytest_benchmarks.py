"""The pytest-benchmark benches in bench/ run, and their JSON carries what report.py groups by.

No timing is asserted: ``--benchmark-disable`` runs every bench body once
(which also runs the checks inside them: loads return what was saved); one
short timed run of the codec benches checks the ``--benchmark-json`` shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"workload", "storage", "contender", "kind", "events"}


def pytest_bench(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", target, "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )


def test_every_bench_runs_once() -> None:
    proc = pytest_bench("bench", "--benchmark-disable", "-rs")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # records 3 x 2 storages, store 2 x 2 storages x 2 APIs x 2 sizes, codec 2: per engine
    assert " passed" in proc.stdout
    passed = int(proc.stdout.rsplit(" passed", 1)[0].split()[-1])
    assert passed >= 6 + 16 + 2, proc.stdout[-2000:]


def test_json_rows_name_their_workload(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = pytest_bench("bench/test_bench_codec.py", f"--benchmark-json={out}",
                        "--benchmark-max-time=0.01", "--benchmark-min-rounds=1",
                        "--benchmark-warmup=off")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    benches = json.loads(out.read_text())["benchmarks"]
    assert {b["extra_info"]["workload"] for b in benches} == {"codec_encode_100", "codec_decode_100"}
    for b in benches:
        assert FIELDS <= set(b["extra_info"]), b["extra_info"]
        assert b["stats"]["min"] > 0
