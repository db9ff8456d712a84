"""save and load through the stores, per engine, storage and API (async ``EventStore``, ``SyncEventStore``).

Each round makes ``CALLS`` calls: 10 saves of fresh aggregates (100 events
each, or 1 event each: the small call where a per-call overhead such as the
async thread hop shows), or 10 loads of stored aggregates.  The async rounds
run the 10 awaits inside one coroutine, so the event loop's own entry cost is
paid once per round, as in an application that is already async.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from bench_e2e import Cart, build_carts
from conftest import tag

from eventuali import EventStore, SyncEventStore

CALLS = 10
SIZES = {"100": 100, "1": 1}


@pytest.fixture(params=("async", "sync"))
def api(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=tuple(SIZES))
def size(request: pytest.FixtureRequest) -> int:
    return SIZES[request.param]


class Runner:
    """One store of either API, driven the same way: ``save(carts)``, ``load(ids)``."""

    def __init__(self, api: str, url: str, engine: str, loop: asyncio.AbstractEventLoop) -> None:
        self.api, self.loop = api, loop
        if api == "sync":
            self.store = SyncEventStore.create(url, backend=engine)
        else:
            self.store = loop.run_until_complete(EventStore.create(url, backend=engine))

    def save(self, carts: list[Cart]) -> None:
        if self.api == "sync":
            for c in carts:
                self.store.save(c)
            return

        async def run() -> None:
            for c in carts:
                await self.store.save(c)

        self.loop.run_until_complete(run())

    def load(self, ids: list[str]) -> list[Cart]:
        if self.api == "sync":
            return [self.store.load(Cart, i) for i in ids]

        async def run() -> list[Cart]:
            return [await self.store.load(Cart, i) for i in ids]

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        if self.api == "sync":
            self.store.close()
        else:
            self.loop.run_until_complete(self.store.close())


def contender(engine: str, api: str) -> str:
    return f"eventuali-{engine}" + ("-sync" if api == "sync" else "")


def test_save(benchmark, engine, storage, url, api, size, loop) -> None:
    runner = Runner(api, url, engine, loop)
    first = itertools.count(0, CALLS)

    def setup():
        return (build_carts(CALLS, size, first=next(first)),), {}

    tag(benchmark, workload=f"save_{CALLS}x{size}", storage=storage,
        contender=contender(engine, api), kind="eventuali", events=CALLS * size)
    benchmark.pedantic(runner.save, setup=setup, rounds=30 if size > 1 else 100, warmup_rounds=2)
    runner.close()


def test_load(benchmark, engine, storage, url, api, size, loop) -> None:
    runner = Runner(api, url, engine, loop)
    carts = build_carts(CALLS, size)
    runner.save(carts)
    ids = [c.id for c in carts]
    tag(benchmark, workload=f"load_{CALLS}x{size}", storage=storage,
        contender=contender(engine, api), kind="eventuali", events=CALLS * size)
    got = benchmark(runner.load, ids)
    assert [c.version for c in got] == [size] * CALLS
    runner.close()
