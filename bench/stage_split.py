"""Where a save and a load spend their work, stage by stage, per engine (``profile_e2e.py --stages``).

The bench's 100-event carts are saved to and loaded from a fresh SQLite file
through ``SyncEventStore`` on each engine, with the save and the load cut into
the stages the store runs them in:

- save: **create** (construct the events, ``aggregate.apply``), **encode**
  (stamp + ``EventCodec.encode`` + the ``StreamWrite``: ``store._writes_for``),
  **engine call** (``backend.append`` up to its COMMIT), **commit** (the
  COMMIT statement), **bookkeeping** (marking the aggregate committed);
- load: **fetch** (``backend.read_stream``: SQL and the ``Record`` rows),
  **decode** (``EventCodec.decode_many``), **apply** (replaying into the
  aggregate, as ``store.load`` does).

The commit is cut out of the python engine's append by a thin proxy of its
sqlite3 connection that marks the moment the COMMIT statement starts.  The c
engine's append is one call into C, so its commit stays inside "engine call".
Each stage's sum is checked against the whole ``store.save``/``store.load``
measured on its own, and the async ``EventStore`` runs the same whole save and
load beside it (what the async API adds).

Meters: ``callgrind`` (default when valgrind is installed: instruction counts
of every thread, deterministic, unaffected by other load on the machine; each
stage boundary is a ``CALLGRIND_DUMP_STATS_AT`` client request from a
4-line C helper compiled at run time) or ``time`` (``perf_counter``, noisy).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench_e2e import Cart, build_carts

from eventuali import EventStore, SyncEventStore

SAVE = ["create", "encode", "engine call", "commit", "bookkeeping"]
LOAD = ["fetch", "decode", "apply"]
WHOLE = ["save (sync, whole)", "save (async, whole)", "load (sync, whole)", "load (async, whole)"]

_HELPER_C = """
#include <valgrind/callgrind.h>
void eventuali_mark(const char *name) { CALLGRIND_DUMP_STATS_AT(name); }
"""


class TimeMeter:
    """``mark(name)`` charges the time since the previous mark to ``name`` ("-" discards it)."""

    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self.totals: dict[str, float] = defaultdict(float)
        self._t = self._clock()

    def mark(self, name: str) -> None:
        t = self._clock()
        if name != "-":
            self.totals[name] += t - self._t
        self._t = self._clock()


class CallgrindMeter:
    """``mark(name)`` dumps callgrind's counters since the previous mark under ``name``."""

    def __init__(self, helper: str) -> None:
        self._mark = ctypes.CDLL(helper).eventuali_mark
        self._mark.argtypes = [ctypes.c_char_p]
        self.totals: dict[str, float] = {}

    def mark(self, name: str) -> None:
        self._mark(name.encode())


class CommitCut:
    """The python engine's connection, marking the end of "engine call" as its COMMIT starts.

    (A trace callback would do it too, but CPython then expands every
    statement's SQL with its parameters, which costs more than the insert.)
    """

    def __init__(self, conn: Any, mark: Any) -> None:
        self._conn, self._mark = conn, mark

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            self._mark()
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def warm_up(engine: str, root: Path, n_events: int) -> None:
    """One untimed save and load, so the first engine measured pays no first-use costs."""
    store = SyncEventStore.create(f"sqlite://{root}/{engine}-warm.db", backend=engine)
    for cart in build_carts(3, n_events, first=900):
        store.save(cart)
        store.load(Cart, cart.id)
    store.close()


def run(meter, engine: str, root: Path, n_aggs: int, n_events: int) -> None:
    """One engine's stages; every mark is named ``engine:stage``."""
    url = f"sqlite://{root}/{engine}.db"
    m = meter.mark
    warm_up(engine, root, n_events)
    store = SyncEventStore.create(url, backend=engine)
    conn = getattr(store.backend, "_conn", None)  # the python engine's sqlite3 connection
    if conn is not None:
        store.backend._conn = CommitCut(conn, lambda: m(f"{engine}:engine call"))
    m("-")
    carts = build_carts(n_aggs, n_events)
    m(f"{engine}:create")
    for cart in carts:
        writes = store._writes_for([cart])
        m(f"{engine}:encode")
        store.backend.append(writes)
        m(f"{engine}:commit" if conn is not None else f"{engine}:engine call")
        store._committed([cart])
        m(f"{engine}:bookkeeping")
    if conn is not None:
        store.backend._conn = conn
    whole = build_carts(n_aggs, n_events, first=n_aggs)
    m("-")
    for cart in whole:
        store.save(cart)
    m(f"{engine}:save (sync, whole)")
    ids = [c.id for c in carts]
    store.close()

    store = SyncEventStore.create(url, backend=engine)
    m("-")
    for i in ids:
        records = store.backend.read_stream(i)
        m(f"{engine}:fetch")
        events = store.codec.decode_many(records)
        m(f"{engine}:decode")
        agg = Cart(id=i)
        agg._replay_many(events)
        m(f"{engine}:apply")
        assert agg.version == n_events
    for i in ids:
        store.load(Cart, i)
    m(f"{engine}:load (sync, whole)")
    store.close()

    async def run_async() -> None:
        astore = await EventStore.create(url, backend=engine)
        more = build_carts(n_aggs, n_events, first=2 * n_aggs)
        m("-")
        for cart in more:
            await astore.save(cart)
        m(f"{engine}:save (async, whole)")
        for i in ids:
            await astore.load(Cart, i)
        m(f"{engine}:load (async, whole)")
        await astore.close()

    asyncio.run(run_async())
    m("-")


def child(engines: list[str], n_aggs: int, n_events: int, helper: str | None) -> dict[str, float]:
    meter = CallgrindMeter(helper) if helper else TimeMeter()
    with tempfile.TemporaryDirectory(prefix="eventuali-stages-") as d:
        for engine in engines:
            run(meter, engine, Path(d), n_aggs, n_events)
    return dict(meter.totals)


def callgrind_totals(out_dir: Path) -> dict[str, float]:
    """Sum the instruction counts (Ir) of every dump, by the name its client request gave."""
    totals: dict[str, float] = defaultdict(float)
    for f in out_dir.glob("cg.out*"):
        text = f.read_text(errors="replace")
        desc = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.M)
        summ = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if desc and summ and desc.group(1) != "-":
            totals[desc.group(1)] += int(summ.group(1))
    return dict(totals)


def measure(engines: list[str], n_aggs: int, n_events: int, meter: str) -> dict[str, float]:
    """Run the stages (under valgrind for ``callgrind``) and return totals by ``engine:stage``."""
    if meter == "time":
        return child(engines, n_aggs, n_events, None)
    if shutil.which("valgrind") is None:
        raise SystemExit("--meter callgrind needs valgrind (apt-get install valgrind); or --meter time")
    with tempfile.TemporaryDirectory(prefix="eventuali-callgrind-") as d:
        out = Path(d)
        (out / "mark.c").write_text(_HELPER_C)
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(out / "mark.so"),
                        str(out / "mark.c")], check=True)
        here = Path(__file__).resolve().parent
        code = (f"import sys; sys.path.insert(0, {str(here)!r}); import stage_split; "
                f"stage_split.child({engines!r}, {n_aggs}, {n_events}, {str(out / 'mark.so')!r})")
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(["valgrind", "--tool=callgrind", "--quiet", "--dump-line=no",
                        f"--callgrind-out-file={out}/cg.out", sys.executable, "-c", code],
                       check=True, env=env, cwd=d)
        return callgrind_totals(out)


def table(totals: dict[str, float], engines: list[str], n_events_total: int, unit: str) -> str:
    """Markdown: per stage, per engine, cost per event and share of the stage sum."""
    scale = 1e6 if unit == "µs" else 1.0
    lines = []
    for title, stages, whole in (("save", SAVE, WHOLE[:2]), ("load", LOAD, WHOLE[2:])):
        head = " | ".join(f"{e}: {unit}/event | {e}: share" for e in engines)
        lines += [f"| {title} stage | {head} |", "|---" + "|---:" * (2 * len(engines)) + "|"]
        sums = {e: sum(totals.get(f"{e}:{s}", 0.0) for s in stages) for e in engines}
        for s in stages:
            cells = []
            for e in engines:
                v = totals.get(f"{e}:{s}")
                if v is None:
                    cells += ["(in engine call)", "—"]
                else:
                    cells += [f"{v * scale / n_events_total:,.0f}" if unit == "Ir" else
                              f"{v * scale / n_events_total:,.2f}", f"{100 * v / sums[e]:.0f}%"]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        fmt = "{:,.0f}" if unit == "Ir" else "{:,.2f}"
        lines.append("| **sum of stages** | " + " | ".join(
            f"**{fmt.format(sums[e] * scale / n_events_total)}** | 100%" for e in engines) + " |")
        for w in whole:
            cells = []
            for e in engines:
                # A whole save starts from built carts: compare it with the stages after create.
                base = sums[e] - (totals.get(f"{e}:create", 0.0) if title == "save" else 0.0)
                v = totals.get(f"{e}:{w}", 0.0)
                cells += [fmt.format(v * scale / n_events_total),
                          f"{100 * v / base:.0f}% of the stages{' after create' if title == 'save' else ''}"
                          if base else "—"]
            lines.append(f"| {w} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
