"""The async API never blocks the event loop on a SQLite lock held by another process.

The SQLite engine runs uncontended calls on the event loop (no thread hop, see
eventuali/asyncio_adapter.py and eventuali_python/sqlite_nowait.py); these
tests hold the write lock from another process and check, for every engine
serving sqlite://, that a save waits for it off the loop - a ticker task keeps
running while the save is pending - then completes exactly once when the lock
is released, and that another store reads meanwhile (WAL readers do not wait).
No timing is asserted: "pending while the ticker ran N times" is a fact about
ordering; the timeouts only stop a hung run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eventuali import Aggregate, Event, EventStore, registry
from eventuali.errors import BackendUnavailableError

HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # the write lock, until a line arrives on stdin
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


class LoopDeposited(Event):
    amount: int


class LoopAccount(Aggregate):
    balance: int = 0

    def apply_loop_deposited(self, event: LoopDeposited) -> None:
        self.balance += event.amount


@pytest.fixture(params=["python", "c"])
def engine(request: pytest.FixtureRequest) -> str:
    try:
        registry.load(request.param)
    except (BackendUnavailableError, LookupError) as exc:
        if request.param == "c" and os.environ.get("EVENTUALI_REQUIRE_C") == "1":
            pytest.fail(f"EVENTUALI_REQUIRE_C=1 but the c engine does not load: {exc}")
        pytest.skip(f"engine {request.param!r} is not installed here: {exc}")
    return request.param


def account(*amounts: int) -> LoopAccount:
    acc = LoopAccount()
    for a in amounts:
        acc.apply(LoopDeposited(amount=a))
    return acc


class Ticker:
    """A task that counts its turns on the loop: it can only advance while the loop is free."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)

    async def wait_ticks(self, n: int) -> None:
        target = self.ticks + n
        while self.ticks < target:
            await asyncio.sleep(0)

    def stop(self) -> None:
        self.task.cancel()


@pytest.mark.timeout(90, method="thread")  # a deadlock blocks signals in SQLite's C code
async def test_save_waits_for_another_process_off_the_loop(engine: str, tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    # A 10-minute busy timeout: the save must wait for the holder, not give up.  A
    # save that waited on the loop would deadlock here (the holder lets go only
    # when this coroutine, on the same loop, tells it to), which the test's
    # timeout turns into a failure; a correct one never comes near it.
    store = await EventStore.create(f"sqlite://{path}?busy_timeout=600000", backend=engine)
    before = account(5)
    await store.save(before)  # uncontended: the inline path when the engine has one
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        ticker = Ticker()
        acc = account(1, 2, 3)
        save = asyncio.get_running_loop().create_task(store.save(acc))
        await ticker.wait_ticks(200)
        assert not save.done(), "the save finished while another process held the write lock"
        # Another store's reads do not wait for the writer (WAL readers); this
        # store's own wait, since its connection is busy with the pending save.
        reader = await EventStore.create(f"sqlite://{path}", backend=engine)
        loaded = await asyncio.wait_for(reader.load(LoopAccount, before.id), 60)
        assert loaded is not None and loaded.balance == 5
        await reader.close()
        await ticker.wait_ticks(200)
        assert not save.done()
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        await asyncio.wait_for(save, 60)
        ticker.stop()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()  # waits, and closes the pipes
    again = await store.load(LoopAccount, acc.id)
    assert again is not None and (again.version, again.balance) == (3, 6)
    assert await store.head() == 4  # 1 + 3 events: the busy first try wrote nothing
    await store.close()


async def test_a_long_run_of_calls_lets_other_tasks_run(engine: str, tmp_path: Path) -> None:
    store = await EventStore.create(f"sqlite://{tmp_path}/events.db", backend=engine)
    ticker = Ticker()
    start = ticker.ticks
    for i in range(200):
        await store.save(account(i))
        await store.head()
    assert ticker.ticks > start, "400 awaited store calls never let another task run"
    ticker.stop()
    assert await store.head() == 200
    await store.close()
