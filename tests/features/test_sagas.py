"""Sagas: the worked example, redelivery without repeated steps, and resumed compensation."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from eventuali import ConfigurationError, EventStreamer
from eventuali.sagas import Command, CommandBus, Saga

from .domain import User, UserRegistered

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "saga_order_processing.py"


def _example():
    spec = importlib.util.spec_from_file_location("saga_order_processing", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("saga_order_processing", mod)
    spec.loader.exec_module(sys.modules["saga_order_processing"])
    return sys.modules["saga_order_processing"]


async def test_worked_example_success_and_failure_paths(store_url):
    url, backend = store_url
    statuses = await _example().main(url)
    assert statuses == {"order-1": "confirmed", "order-2": "rejected", "order-3": "rejected",
                        "stock": "7"}


def test_worked_example_runs_as_a_script():
    out = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "order-2: order rejected, saga failed (card of bob declined for 900)" in out.stdout
    assert "payment-order-1: charged 120" in out.stdout


class Ping(Command):
    n: int


class Undo(Command):
    n: int


class Boom(Command):
    pass


def _bus(store, calls, undo_failures=0):
    bus = CommandBus(store)
    left = {"undo": undo_failures}

    @bus.handler(Ping)
    def ping(cmd, store):
        calls.append(("ping", cmd.n))
        return cmd.n * 10

    @bus.handler(Undo)
    async def undo(cmd, store):
        if left["undo"] > 0:
            left["undo"] -= 1
            raise ConnectionError("undo service down")
        calls.append(("undo", cmd.n))

    @bus.handler(Boom)
    def boom(cmd, store):
        raise ValueError("step failed")

    return bus


class TwoSteps(Saga):
    fail = False

    async def handle_user_registered(self, e):
        async with self.transaction(e.aggregate_id) as tx:
            a = await tx.run(Ping(n=1), compensate=Undo(n=1))
            b = await tx.run(Ping(n=2), compensate=Undo(n=2))
            if self.fail:
                await tx.run(Boom())
            self.results = (a, b)


async def _register(store, uid="u1"):
    u = User(id=uid)
    u.apply(UserRegistered(name="x", email="y"))
    await store.save(u)


async def test_redelivery_does_not_repeat_steps(store):
    calls = []
    await _register(store)
    saga = TwoSteps(_bus(store, calls))
    s = EventStreamer(store)
    await s.subscribe(saga)
    await s.catch_up()
    await s.rebuild(saga)  # every event delivered again
    assert calls == [("ping", 1), ("ping", 2)]
    assert saga.results == (10, 20)  # the stored results, not re-sent
    assert (await saga.state_of("u1")).status == "completed"


async def test_failure_compensates_in_reverse_and_resumes_after_a_failing_compensation(store):
    calls = []
    await _register(store)
    saga = TwoSteps(_bus(store, calls, undo_failures=1))
    saga.fail = True
    s = EventStreamer(store)
    await s.configure(retry_backoff=0.001, max_retries=2)
    await s.subscribe(saga)
    await s.catch_up()
    # The first Undo raised: the streamer retried the event; the retry did not run the
    # steps again and compensated each step exactly once, newest first.
    assert calls == [("ping", 1), ("ping", 2), ("undo", 2), ("undo", 1)]
    state = await saga.state_of("u1")
    assert state.status == "failed" and "step failed" in state.reason
    assert all(step["compensated"] for step in state.steps)
    assert await s.parked_events(saga) == []


async def test_missing_handler_and_bus(store):
    bus = CommandBus(store)
    with pytest.raises(ConfigurationError, match="no handler registered for command Ping"):
        await bus.send(Ping(n=1))
    with pytest.raises(ConfigurationError, match="not an eventuali Command"):
        bus.register(int, print)

    class NoBus(Saga):
        def __init__(self):
            pass

    with pytest.raises(ConfigurationError, match="command bus"):
        NoBus().transaction("x")
