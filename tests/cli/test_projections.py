"""``eventuali projections``: checkpoints with their lag and parked records, and ``--reset``."""

from __future__ import annotations

import asyncio

from eventuali.projections import Projection, StoredProjection
from eventuali.store import SyncEventStore
from eventuali.streaming import EventStreamer

from .conftest import json_lines, run, seed


class Picky(Projection):
    name = "picky"
    max_retries = 0

    def handle_money_deposited(self, e):
        if e.aggregate_id == "acc-1":
            raise ValueError("no deposits for acc-1")


class Totals(StoredProjection):
    name = "totals"

    def handle_money_deposited(self, e):
        self.state.put(e.aggregate_id, self.state.get(e.aggregate_id, 0) + e.amount)


def run_projections(url: str, backend: str) -> None:
    async def go() -> None:
        with SyncEventStore.create(url, backend=backend) as store:
            s = EventStreamer(store)
            await s.configure(retry_backoff=0.001)
            await s.subscribe(Picky())
            await s.subscribe(Totals())
            await s.catch_up()
            await s.stop()

    asyncio.run(go())


def test_projections_show_position_lag_and_parked(target, capsys):
    url, backend = target
    seed(url, backend, accounts=2, deposits=2)  # 6 events; acc-1's 2 deposits get parked
    run_projections(url, backend)
    seed(url, backend, accounts=1, deposits=1, prefix="later-")  # 2 more: the lag
    with SyncEventStore.create(url, backend=backend) as store:
        head = store.head()
        store.backend.set_checkpoint("external", 3)
    code, out, _ = run(capsys, "projections", url, "--backend", backend, "--json",
                       "--name", "external", "--name", "never-ran")
    rows = {r["name"]: r for r in json_lines(out)}
    assert code == 0
    assert rows["never-ran"] == {"name": "never-ran", "position": None, "lag": head, "parked": 0}
    assert rows["external"]["position"] == 3 and rows["external"]["lag"] == head - 3
    picky = rows["picky"]
    assert picky["parked"] == 2 and picky["position"] >= 6 and picky["lag"] == head - picky["position"]
    assert rows["totals"]["parked"] == 0 and rows["totals"]["position"] >= 6


def test_reset_asks_and_refuses_what_it_cannot_do_safely(target, capsys):
    url, backend = target
    seed(url, backend, accounts=2, deposits=1)
    run_projections(url, backend)
    code, _, err = run(capsys, "projections", url, "--backend", backend, "--reset", "picky")
    assert code == 2 and "needs confirmation" in err  # stdin is not a terminal here
    code, _, err = run(capsys, "projections", url, "--backend", backend, "--reset", "totals",
                       "--yes")
    assert code == 2 and "StoredProjection" in err
    code, _, err = run(capsys, "projections", url, "--backend", backend, "--reset", "nope", "--yes")
    assert code == 2 and "no checkpoint named 'nope'" in err
    code, out, _ = run(capsys, "projections", url, "--backend", backend, "--reset", "picky", "--yes")
    assert code == 0 and "reset to 0" in out
    with SyncEventStore.create(url, backend=backend) as store:
        assert store.backend.get_checkpoint("picky") == 0
        assert store.backend.get_checkpoint("totals") > 0
