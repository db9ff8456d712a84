"""The payload-format bench runs and prints its table (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_payload_format_bench_prints_every_row() -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "bench_payload_format.py"), "--events", "40",
                           "--rounds", "1"], capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr
    for step in ("encode", "decode", r"save \+ read_all \(SQLite\)"):
        assert re.search(rf"^\| {step} \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\dx \|$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^\| payload size \| \d+ B \| \d+ B \| \d\.\d\dx \|$", proc.stdout, re.M)
