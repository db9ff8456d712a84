"""Many worker processes, SIGKILLed at random moments, on a shared SQLite file and on PostgreSQL.

Writes go on while workers are killed (mid-batch: handlers are slowed so that
a kill almost always lands inside one) and replaced.  At the end:

- the StoredProjection's read model, merged over its partitions, is exactly
  what one process builds: every stream's versions applied once, in order;
- the plain projection saw every event at least once, with duplicates within
  the documented bound: at most (checkpoint_interval + batch_size) per
  partition taken over from a holder that did not release it.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from eventuali import EventStore
from eventuali.ids import uuid7
from eventuali.records import NewRecord, StreamWrite
from eventuali.scaling import load_partitioned_read_model
from eventuali.scaling.leases import ACQUIRED, RELEASED, Lease

from . import worker as w

ROOT = Path(__file__).resolve().parents[2]
STREAMS = 30


async def _append(store, version: int) -> None:
    ts = time.time_ns() // 1000
    await store.backend.append([
        StreamWrite(f"s{i}", "T", version - 1, [NewRecord(uuid7().bytes, "Tick", 1, ts, b"", b"{}")])
        for i in range(STREAMS)
    ])


def _spawn(url: str, backend: str, sink: Path) -> subprocess.Popen:
    err = open(sink.with_name(f"worker-{time.monotonic_ns()}.err"), "w")  # noqa: SIM115
    p = subprocess.Popen([sys.executable, "-m", "tests.scaling.worker", url, backend, str(sink)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    err.close()
    p.errfile = err.name  # type: ignore[attr-defined]
    return p


def _wait(p: subprocess.Popen, timeout: float) -> int:
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGUSR2)  # the worker dumps its asyncio tasks
        time.sleep(0.5)
        p.send_signal(signal.SIGUSR1)  # and its threads (faulthandler)
        time.sleep(1)
        raise AssertionError("worker did not stop:\n" + Path(p.errfile).read_text()) from None


async def _caught_up(store, last: int, timeout: float = 90.0) -> None:
    names = [f"{n}#{p}" for n in ("applied", "sink") for p in range(w.PARTITIONS)]
    deadline = time.monotonic() + timeout
    while True:
        cps = [await store.backend.get_checkpoint(n) or 0 for n in names]
        if min(cps) >= last:
            return
        assert time.monotonic() < deadline, f"checkpoints {dict(zip(names, cps, strict=True))} < {last}"
        await asyncio.sleep(0.2)


async def _a_holder(store, workers: list, rng: random.Random) -> int:
    """The index of a worker that holds a partition now (the one to kill)."""
    pids = set()
    for name in ("applied", "sink"):
        for p in range(w.PARTITIONS):
            v = await Lease(store.backend, f"$lease:{name}#{p}", "test", 1.0).view()
            if v.holder and not v.released:
                pids.add(int(v.holder.split(":")[1]))
    holding = [i for i, proc in enumerate(workers) if proc.pid in pids]
    return rng.choice(holding or list(range(len(workers))))


async def _takeovers(store, name: str) -> int:
    """Leases of ``name``'s partitions taken while their last record was not a release."""
    n = 0
    for p in range(w.PARTITIONS):
        recs = await store.backend.read_stream(f"$lease:{name}#{p}")
        n += sum(1 for a, b in zip(recs, recs[1:], strict=False)
                 if b.event_type == ACQUIRED and a.event_type != RELEASED)
    return n


@pytest.mark.slow
async def test_sigkilled_workers_lose_nothing_and_stored_read_models_apply_each_event_once(
        shared_url, tmp_path):
    url, backend = shared_url
    rng = random.Random()
    store = await EventStore.create(url, backend=backend)
    sink = tmp_path / "sink.txt"
    workers = [_spawn(url, backend, sink) for _ in range(3)]
    kills = 0
    started: set = set()

    def _started(p: subprocess.Popen) -> None:
        assert p.stdout is not None and p.stdout.readline().strip() == "started"
        started.add(p)

    try:
        version = 0
        for _ in range(10):  # a backlog
            version += 1
            await _append(store, version)
        for p in workers:
            _started(p)
        for _ in range(4):
            for _ in range(5):  # writes go on while workers die
                version += 1
                await _append(store, version)
            await asyncio.sleep(rng.uniform(0.1, 1.2))
            victim = await _a_holder(store, workers, rng)
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = _spawn(url, backend, sink)
        last = await store.head()
        await _caught_up(store, last)
        for p in workers:
            if p not in started:
                _started(p)  # its SIGTERM handler is installed
            p.send_signal(signal.SIGTERM)
        for p in workers:
            assert _wait(p, 30) == 0
        model = await load_partitioned_read_model(store, "applied", w.PARTITIONS)
        assert model == {f"s{i}": list(range(1, version + 1)) for i in range(STREAMS)}
        lines = Counter(sink.read_text().splitlines())
        expected = {f"s{i} {v}" for i in range(STREAMS) for v in range(1, version + 1)}
        assert set(lines) == expected  # nothing lost, nothing invented
        duplicates = sum(lines.values()) - len(expected)
        # Each takeover of an unreleased lease (a kill, or a worker starved past its lease on
        # this busy machine) replays at most what its partition had not checkpointed.
        takeovers = await _takeovers(store, "sink")
        assert takeovers >= 1  # the kills did hit holders
        bound = takeovers * (w.CHECKPOINT_INTERVAL + w.BATCH)
        assert duplicates <= bound, (duplicates, bound, takeovers)
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
                p.wait()
        await store.close()
