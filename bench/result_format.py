"""The JSON shape every ``bench/`` script writes, and the facts and ratios built on it.

One document per script run (``eventuali-bench/1``, described in bench/README.md)::

    {
      "format": "eventuali-bench/1",
      "script": "bench_e2e.py",
      "command": "python bench/bench_e2e.py --json out.json",
      "started_at": "2026-11-26T19:40:00+00:00",
      "machine": {"cores": 2, "python": "3.11.7", "pydantic": "2.14.4", "sqlite": "3.40.1", ...},
      "settings": {"repeats": 5, "statistic": "best", "gc": "on", ...},
      "results": [
        {"workload": "save_100x100", "storage": "sqlite", "contender": "eventuali-python",
         "kind": "eventuali", "events": 10000, "best": 123456.0, "median": 118000.0,
         "unit": "events/s", "seconds": [0.081, 0.084, 0.085], "ms_per_op": null, "note": ""}
      ],
      "skipped": [{"contender": "eventuali-c", "storage": "*", "reason": "eventuali_c not installed"}]
    }

``best`` and ``median`` are throughputs (higher is better) over the timed
repeats; ``seconds`` are the raw timings.  ``kind`` groups contenders:
``eventuali``, ``floor`` (pydantic alone), ``peer`` (the eventsourcing package),
``record`` (record-level numbers, no pydantic) or ``server`` (the database server
alone, rows made inside it: the storage-side ceiling).  Ratios are derived by
readers (:func:`ratios`), never stored as the only copy of a number.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

FORMAT = "eventuali-bench/1"

RESULT_KEYS = ("workload", "storage", "contender", "kind", "events", "best", "median", "unit",
               "seconds")
"""Keys every result row carries (``ms_per_op`` and ``note`` are optional)."""

KINDS = ("eventuali", "floor", "peer", "record", "server")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_facts() -> dict[str, Any]:
    """What a reader needs to judge a number: hardware, versions, and how busy the box was."""
    facts: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "pydantic": _version("pydantic"),
        "pydantic_core": _version("pydantic-core") or _version("pydantic_core"),
        "sqlite": sqlite3.sqlite_version,
        "eventuali": _version("eventuali"),
        "eventuali_c": _version("eventuali-c"),
        "eventsourcing": _version("eventsourcing"),
        "psycopg": _version("psycopg"),
        "git_commit": _git_commit(),
    }
    try:
        # The machine is shared: the load average says how much to trust a run.
        facts["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        facts["load_average"] = None
    return facts


def command_line() -> str:
    """The command that produced this run, as a user would retype it."""
    argv = [Path(sys.argv[0]).as_posix()] + sys.argv[1:]
    try:
        argv[0] = Path(argv[0]).resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        pass
    return "python " + shlex.join(argv)


def new_document(script: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "script": script,
        "command": command_line(),
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "settings": settings,
        "results": [],
        "skipped": [],
    }


def result_row(
    *, workload: str, storage: str, contender: str, kind: str, events: int,
    seconds: list[float], ops: int | None = None, note: str = "",
) -> dict[str, Any]:
    """One measured figure; throughputs are derived from the raw ``seconds``."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    if not seconds or min(seconds) <= 0:
        raise ValueError(f"{contender}/{storage}/{workload}: no positive timing in {seconds!r}")
    rates = [events / s for s in seconds]
    row: dict[str, Any] = {
        "workload": workload,
        "storage": storage,
        "contender": contender,
        "kind": kind,
        "events": events,
        "best": max(rates),
        "median": statistics.median(rates),
        "unit": "events/s",
        "seconds": seconds,
        "ms_per_op": (min(seconds) / ops * 1000.0) if ops else None,
        "note": note,
    }
    return row


def validate(doc: dict[str, Any]) -> list[str]:
    """Problems with ``doc`` as an ``eventuali-bench/1`` document (empty when fine)."""
    problems = []
    if doc.get("format") != FORMAT:
        problems.append(f"format is {doc.get('format')!r}, expected {FORMAT!r}")
    for key in ("script", "command", "started_at", "machine", "settings", "results"):
        if key not in doc:
            problems.append(f"missing top-level key {key!r}")
    for i, row in enumerate(doc.get("results", [])):
        for key in RESULT_KEYS:
            if key not in row:
                problems.append(f"results[{i}] lacks {key!r}")
        for key in ("best", "median"):
            v = row.get(key)
            if not isinstance(v, (int, float)) or not v > 0:
                problems.append(f"results[{i}] ({row.get('contender')}/{row.get('workload')}) "
                                f"{key}={v!r} is not a positive number")
    return problems


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dump(doc: dict[str, Any], path: str | os.PathLike[str]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# --- ratios --------------------------------------------------------------------------

def _index(rows: Iterable[dict[str, Any]], stat: str) -> dict[tuple[str, str, str], float]:
    return {(r["workload"], r["storage"], r["contender"]): r[stat] for r in rows}


def floor_for(rows: list[dict[str, Any]], workload: str, stat: str = "best") -> float | None:
    """The pydantic floor of ``workload`` (storage-independent), if measured."""
    for r in rows:
        if r["workload"] == workload and r["kind"] == "floor":
            return r[stat]
    return None


def ratios(doc: dict[str, Any], stat: str = "best") -> list[dict[str, Any]]:
    """Every ratio the report shows, on the ``stat`` throughput.

    - ``x_floor``: floor rate / contender rate — how many times the bare
      pydantic cost the contender pays (1.0 = nothing added; "1.6× floor").
    - ``vs_eventsourcing``: eventuali rate / eventsourcing rate on the same
      workload and storage (>1 = eventuali faster).
    - ``c_vs_python``: eventuali-c rate / eventuali-python rate, same API flavour.
    """
    rows = doc.get("results", [])
    idx = _index(rows, stat)
    out: list[dict[str, Any]] = []
    for r in rows:
        w, s, c = r["workload"], r["storage"], r["contender"]
        rate = r[stat]
        floor = floor_for(rows, w, stat)
        if floor and r["kind"] != "floor":
            out.append({"workload": w, "storage": s, "contender": c, "ratio": "x_floor",
                        "value": floor / rate})
        if r["kind"] == "eventuali":
            peer = idx.get((w, s, "eventsourcing"))
            if peer:
                out.append({"workload": w, "storage": s, "contender": c,
                            "ratio": "vs_eventsourcing", "value": rate / peer})
            if c.startswith("eventuali-c"):
                py = idx.get((w, s, "eventuali-python" + c[len("eventuali-c"):]))
                if py:
                    out.append({"workload": w, "storage": s, "contender": c,
                                "ratio": "c_vs_python", "value": rate / py})
    return out
