"""End-to-end benchmark: eventuali's engines beside the pydantic floor and the eventsourcing package.

One run measures, side by side and with the same events and counts:

- ``create``               construct + ``aggregate.apply`` of 100 aggregates × 100 events
- ``save_100x100``         persist 100 aggregates of 100 events, one save per aggregate
- ``save_10000x1``         persist 10,000 aggregates of 1 event, one save per aggregate
- ``load_100x100``         ``store.load`` of those 100 aggregates
- ``load_events_100x100``  ``store.load_events`` of the same 100 streams
- ``rebuild_1000``         ``store.load`` of one 1,000-event aggregate (also ms per rebuild)

for every eventuali engine installed (``python``; ``c`` when ``eventuali_c``
loads) through the async ``EventStore`` and its ``SyncEventStore`` twin, on
``memory://`` and a SQLite file (PostgreSQL with ``--postgres URL``), beside:

- the **pydantic floor**: the same events only constructed (create),
  ``model_dump_json``-ed (saves) or ``model_validate_json``-ed (loads);
- the **eventsourcing** package (9.5.6): its own ``Aggregate`` with the same
  events and fields, its POPO (memory), SQLite and PostgreSQL modules.

Method: a warm-up pass, then ``--repeats`` timed passes, interleaved (pass r
of every contender before pass r+1 of any, so load bursts on a shared machine
hit all alike, in a seeded shuffled order); each pass of a save gets a fresh store (new file / schema);
loads read one freshly written and reopened store.  ``gc.collect()`` runs before every timed pass and the ``gc``
setting is the same for every contender.  ``best`` (fastest pass) is the
headline, ``median`` is kept beside it.  See bench/README.md.

Usage: ``python bench/bench_e2e.py [--quick] [--json out.json] [--backends python,c]
[--postgres URL]`` (``--help`` for the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import result_format  # noqa: E402  (bench/ is not a package: scripts run from anywhere)

from eventuali import Aggregate, Event, EventStore, SyncEventStore  # noqa: E402
from eventuali.errors import (  # noqa: E402
    BackendNotFoundError,
    BackendUnavailableError,
    UnknownSchemeError,
)

# --- the domain: the same events for every contender -------------------------------------


class CartOpened(Event):
    customer: str


class ItemAdded(Event):
    sku: str
    quantity: int
    price: float


class Cart(Aggregate):
    customer: str = ""
    items: int = 0
    total: float = 0.0

    def apply_cart_opened(self, event: CartOpened) -> None:
        self.customer = event.customer

    def apply_item_added(self, event: ItemAdded) -> None:
        self.items += event.quantity
        self.total += event.quantity * event.price


# Argument values are built once so that every contender pays the same (zero) cost for them.
SKUS = [f"sku-{i:04d}" for i in range(50)]
PRICES = [round(1.25 + i * 0.5, 2) for i in range(50)]
CUSTOMERS = [f"customer-{i:05d}" for i in range(1000)]


def item_args(j: int) -> tuple[str, int, float]:
    return SKUS[j % 50], j % 5 + 1, PRICES[j % 50]


def expected_items(n_events: int) -> int:
    return sum(item_args(j)[1] for j in range(1, n_events))


# --- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    aggregates: int = 100
    events_per_aggregate: int = 100
    singles: int = 10_000
    rebuild_events: int = 1_000
    rebuild_loops: int = 10

    @property
    def many(self) -> int:
        return self.aggregates * self.events_per_aggregate


WORKLOADS = ("create", "save_100x100", "save_10000x1", "load_100x100", "load_events_100x100",
             "rebuild_1000")

WORKLOAD_TITLES = {
    "create": "event creation (construct + apply)",
    "save_100x100": "save, 100 aggregates × 100 events",
    "save_10000x1": "save, 10,000 aggregates × 1 event",
    "load_100x100": "load 100 aggregates × 100 events",
    "load_events_100x100": "load_events, 100 streams × 100 events",
    "rebuild_1000": "rebuild one 1,000-event aggregate",
}


class Clock:
    """Times one pass; the gc treatment is identical for every contender."""

    gc_off = False

    def __enter__(self) -> Clock:
        gc.collect()
        if Clock.gc_off:
            gc.disable()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        if Clock.gc_off:
            gc.enable()


# --- storages ------------------------------------------------------------------------------


@dataclass
class Location:
    """One fresh place to store events: a memory store, a SQLite file or a PostgreSQL schema."""

    storage: str
    path: str | None = None  # SQLite file
    schema: str | None = None  # PostgreSQL schema


class Storages:
    """Hands out fresh locations and removes them afterwards."""

    def __init__(self, root: Path, sqlite_sync: str, postgres_url: str | None) -> None:
        self.root = root
        self.sqlite_sync = sqlite_sync
        self.postgres_url = postgres_url
        self._n = 0

    def fresh(self, storage: str, tag: str) -> Location:
        self._n += 1
        if storage == "memory":
            return Location("memory")
        if storage == "sqlite":
            d = self.root / f"{self._n:04d}-{tag}"
            d.mkdir()
            return Location("sqlite", path=str(d / "events.db"))
        if storage == "postgres":
            return Location("postgres", schema=f"bench_{uuid.uuid4().hex[:12]}")
        raise ValueError(f"unknown storage {storage!r}")

    def cleanup(self, loc: Location) -> None:
        if loc.path:
            shutil.rmtree(Path(loc.path).parent, ignore_errors=True)
        if loc.schema:
            self._pg_execute(f'DROP SCHEMA IF EXISTS "{loc.schema}" CASCADE')

    def _pg_execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(pg_plain_url(self.postgres_url), autocommit=True) as conn:
            conn.execute(sql)

    def create_schema(self, loc: Location) -> None:
        self._pg_execute(f'CREATE SCHEMA IF NOT EXISTS "{loc.schema}"')


def pg_plain_url(url: str | None) -> str:
    """The server URL without eventuali's own query options (psycopg would refuse them)."""
    assert url is not None
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def with_option(url: str, key: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != key] + [(key, value)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


# --- contenders ----------------------------------------------------------------------------


class Contender:
    """A library under test: opens a store at a location, builds, saves and loads aggregates."""

    name: str
    kind: str

    def build(self, n_aggs: int, n_events: int, first: int = 0) -> list[Any]: ...
    def open(self, loc: Location) -> Any: ...
    def close(self, store: Any) -> None: ...
    def ids(self, aggs: list[Any]) -> list[Any]: ...
    def time_save(self, store: Any, aggs: list[Any]) -> float: ...
    def time_load(self, store: Any, ids: list[Any], loops: int = 1) -> tuple[float, list[Any]]: ...
    def time_load_events(self, store: Any, ids: list[Any]) -> tuple[float, list[Any]]: ...
    def check_aggregate(self, agg: Any, n_events: int) -> None: ...


def build_carts(n_aggs: int, n_events: int, first: int = 0) -> list[Cart]:
    carts = []
    for i in range(first, first + n_aggs):
        cart = Cart()
        cart.apply(CartOpened(customer=CUSTOMERS[i % 1000]))
        for j in range(1, n_events):
            sku, qty, price = item_args(j)
            cart.apply(ItemAdded(sku=sku, quantity=qty, price=price))
        carts.append(cart)
    return carts


class Eventuali(Contender):
    kind = "eventuali"

    def __init__(self, engine: str, api: str, loop: asyncio.AbstractEventLoop,
                 storages: Storages) -> None:
        self.engine = engine
        self.api = api
        self.loop = loop
        self.storages = storages
        self.name = f"eventuali-{engine}" + ("-sync" if api == "sync" else "")

    def url(self, loc: Location) -> str:
        if loc.storage == "memory":
            return "memory://"
        if loc.storage == "sqlite":
            # loc.path is absolute, so this is the sqlite:///abs/path.db form.
            url = f"sqlite://{loc.path}"
            if self.storages.sqlite_sync != "default":
                url += f"?synchronous={self.storages.sqlite_sync}"
            return url
        assert self.storages.postgres_url and loc.schema
        return with_option(self.storages.postgres_url, "schema", loc.schema)

    def build(self, n_aggs: int, n_events: int, first: int = 0) -> list[Cart]:
        return build_carts(n_aggs, n_events, first)

    def open(self, loc: Location) -> Any:
        if self.api == "sync":
            return SyncEventStore.create(self.url(loc), backend=self.engine)
        return self.loop.run_until_complete(EventStore.create(self.url(loc), backend=self.engine))

    def close(self, store: Any) -> None:
        if self.api == "sync":
            store.close()
        else:
            self.loop.run_until_complete(store.close())

    def ids(self, aggs: list[Cart]) -> list[str]:
        return [a.id for a in aggs]

    def time_save(self, store: Any, aggs: list[Cart]) -> float:
        if self.api == "sync":
            save = store.save
            with Clock() as c:
                for a in aggs:
                    save(a)
            return c.seconds

        async def run() -> float:
            save = store.save
            with Clock() as c:
                for a in aggs:
                    await save(a)
            return c.seconds

        return self.loop.run_until_complete(run())

    def time_load(self, store: Any, ids: list[str], loops: int = 1) -> tuple[float, list[Any]]:
        out: list[Any] = []
        if self.api == "sync":
            load = store.load
            with Clock() as c:
                for _ in range(loops):
                    for i in ids:
                        out.append(load(Cart, i))
            return c.seconds, out

        async def run() -> float:
            load = store.load
            with Clock() as c:
                for _ in range(loops):
                    for i in ids:
                        out.append(await load(Cart, i))
            return c.seconds

        return self.loop.run_until_complete(run()), out

    def time_load_events(self, store: Any, ids: list[str]) -> tuple[float, list[Any]]:
        out: list[Any] = []
        if self.api == "sync":
            load_events = store.load_events
            with Clock() as c:
                for i in ids:
                    out.append(load_events(i))
            return c.seconds, out

        async def run() -> float:
            load_events = store.load_events
            with Clock() as c:
                for i in ids:
                    out.append(await load_events(i))
            return c.seconds

        return self.loop.run_until_complete(run()), out

    def check_aggregate(self, agg: Any, n_events: int) -> None:
        if agg is None or agg.version != n_events or agg.items != expected_items(n_events):
            raise AssertionError(f"{self.name}: loaded {agg!r}, expected version {n_events}")


class Eventsourcing(Contender):
    """The eventsourcing package (9.5.6) with its own Aggregate and the same events."""

    kind = "peer"
    name = "eventsourcing"

    def __init__(self, storages: Storages) -> None:
        from eventsourcing.application import Application
        from eventsourcing.domain import Aggregate as ESAggregate
        from eventsourcing.domain import event

        class ESCart(ESAggregate):
            @event("CartOpened")
            def __init__(self, customer: str) -> None:
                self.customer = customer
                self.items = 0
                self.total = 0.0

            @event("ItemAdded")
            def add_item(self, sku: str, quantity: int, price: float) -> None:
                self.items += quantity
                self.total += quantity * price

        class Shop(Application):
            pass

        self.ESCart = ESCart
        self.Shop = Shop
        self.storages = storages

    def env(self, loc: Location) -> dict[str, str]:
        if loc.storage == "memory":
            return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
        if loc.storage == "sqlite":
            assert loc.path
            return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": loc.path}
        parts = urlsplit(pg_plain_url(self.storages.postgres_url))
        self.storages.create_schema(loc)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": loc.schema or "",
        }

    def build(self, n_aggs: int, n_events: int, first: int = 0) -> list[Any]:
        carts = []
        ESCart = self.ESCart
        for i in range(first, first + n_aggs):
            cart = ESCart(CUSTOMERS[i % 1000])
            for j in range(1, n_events):
                sku, qty, price = item_args(j)
                cart.add_item(sku, qty, price)
            carts.append(cart)
        return carts

    def open(self, loc: Location) -> Any:
        return self.Shop(env=self.env(loc))

    def close(self, store: Any) -> None:
        store.close()

    def ids(self, aggs: list[Any]) -> list[Any]:
        return [a.id for a in aggs]

    def time_save(self, store: Any, aggs: list[Any]) -> float:
        save = store.save
        with Clock() as c:
            for a in aggs:
                save(a)
        return c.seconds

    def time_load(self, store: Any, ids: list[Any], loops: int = 1) -> tuple[float, list[Any]]:
        out: list[Any] = []
        get = store.repository.get
        with Clock() as c:
            for _ in range(loops):
                for i in ids:
                    out.append(get(i))
        return c.seconds, out

    def time_load_events(self, store: Any, ids: list[Any]) -> tuple[float, list[Any]]:
        out: list[Any] = []
        get = store.events.get
        with Clock() as c:
            for i in ids:
                out.append(list(get(i)))
        return c.seconds, out

    def check_aggregate(self, agg: Any, n_events: int) -> None:
        if agg is None or agg.version != n_events or agg.items != expected_items(n_events):
            raise AssertionError(f"eventsourcing: loaded {agg!r}, expected version {n_events}")


# --- the pydantic floor --------------------------------------------------------------------


def floor_create(n_aggs: int, n_events: int) -> float:
    """Constructing (= validating) the same events, with nothing else."""
    with Clock() as c:
        for i in range(n_aggs):
            CartOpened(customer=CUSTOMERS[i % 1000])
            for j in range(1, n_events):
                sku, qty, price = item_args(j)
                ItemAdded(sku=sku, quantity=qty, price=price)
    return c.seconds


def stamped_events(n_aggs: int, n_events: int) -> list[Event]:
    return [e for cart in build_carts(n_aggs, n_events) for e in cart.get_uncommitted_events()]


def floor_dump(events: list[Event]) -> float:
    with Clock() as c:
        for e in events:
            e.model_dump_json()
    return c.seconds


def floor_validate(payloads: list[tuple[type[Event], str]]) -> float:
    with Clock() as c:
        for cls, p in payloads:
            cls.model_validate_json(p)
    return c.seconds


# --- the run -------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One row of results: how to time one pass, with optional setup/teardown around all passes."""

    workload: str
    storage: str
    contender: str
    kind: str
    events: int
    one_pass: Callable[[], float]
    setup: Callable[[], None] | None = None
    teardown: Callable[[], None] | None = None
    ops: int | None = None
    note: str = ""


class LoadFixture:
    """A store holding aggregates written once, reopened for reading, shared by the load passes."""

    def __init__(self, c: Contender, storages: Storages, storage: str, n_aggs: int,
                 n_events: int, tag: str) -> None:
        self.c, self.storages, self.storage = c, storages, storage
        self.n_aggs, self.n_events, self.tag = n_aggs, n_events, tag
        self.store: Any = None
        self.ids: list[Any] = []
        self.loc: Location | None = None

    def setup(self) -> None:
        if self.store is not None:
            return
        c = self.c
        self.loc = self.storages.fresh(self.storage, f"{c.name}-{self.tag}")
        store = c.open(self.loc)
        aggs = c.build(self.n_aggs, self.n_events)
        c.time_save(store, aggs)
        self.ids = c.ids(aggs)
        if self.loc.storage != "memory":  # read through a new connection; memory cannot reopen
            c.close(store)
            store = c.open(self.loc)
        self.store = store

    def teardown(self) -> None:
        if self.store is not None:
            self.c.close(self.store)
            self.store = None
        if self.loc is not None:
            self.storages.cleanup(self.loc)
            self.loc = None


class Bench:
    """Builds the measurements of each workload and runs them interleaved.

    Within a workload, pass ``r`` of every contender runs before pass ``r + 1``
    of any: on a shared, noisy machine a burst of load then hits all
    contenders alike instead of one, which keeps the ratios honest.
    """

    def __init__(self, args: argparse.Namespace, counts: Counts, doc: dict[str, Any],
                 storages: Storages, contenders: list[tuple[Contender, list[str]]]) -> None:
        self.counts = counts
        self.doc = doc
        self.storages = storages
        self.contenders = contenders
        self.repeats = args.repeats
        self.workloads = [w for w in WORKLOADS if w in set(args.workloads)]
        self._fixtures: dict[tuple[str, str, str], LoadFixture] = {}

    def plan(self) -> dict[str, list[Measurement]]:
        return {w: getattr(self, f"_plan_{w}")() for w in self.workloads}

    def run(self, progress: Any) -> None:
        try:
            self._run(progress)
        finally:
            for fx in self._fixtures.values():  # idempotent; frees stores a failure left open
                fx.teardown()

    def _run(self, progress: Any) -> None:
        plan = self.plan()
        total = sum(len(ms) * (self.repeats + 1) for ms in plan.values())
        task = progress.add_task("starting", total=total)
        for workload, ms in plan.items():
            times: list[list[float]] = [[] for _ in ms]
            try:
                for m in ms:
                    progress.update(task, description=f"{workload}: setting up {m.contender} "
                                                      f"on {m.storage}")
                    if m.setup:
                        m.setup()
                for r in range(self.repeats + 1):  # pass 0 is the warm-up
                    # A seeded shuffle per pass: no contender always runs first (cold
                    # caches) or right after the heaviest one.
                    order = list(range(len(ms)))
                    random.Random(r).shuffle(order)
                    for i in order:
                        m = ms[i]
                        label = "warm-up" if r == 0 else f"pass {r}/{self.repeats}"
                        progress.update(task, description=f"{workload} {label}: {m.contender} "
                                                          f"on {m.storage}")
                        seconds = m.one_pass()
                        if r:
                            times[i].append(seconds)
                        progress.advance(task)
            finally:
                for m in ms:
                    if m.teardown:
                        m.teardown()
            for m, ts in zip(ms, times, strict=True):
                self.doc["results"].append(result_format.result_row(
                    workload=m.workload, storage=m.storage, contender=m.contender, kind=m.kind,
                    events=m.events, seconds=ts, ops=m.ops, note=m.note))
        progress.update(task, description="done", completed=total)

    # --- one plan per workload -----------------------------------------------------------

    def _plan_create(self) -> list[Measurement]:
        k = self.counts
        ms = [Measurement("create", "-", "pydantic", "floor", k.many,
                          lambda: floor_create(k.aggregates, k.events_per_aggregate),
                          note="construct + validate the same events")]
        seen = set()
        for c, _ in self.contenders:
            # Creation does not touch the engine: one row for eventuali, one for the peer.
            name = "eventuali" if c.kind == "eventuali" else c.name
            if name in seen:
                continue
            seen.add(name)

            def one_pass(c: Contender = c) -> float:
                with Clock() as clock:
                    c.build(k.aggregates, k.events_per_aggregate)
                return clock.seconds

            ms.append(Measurement("create", "-", name, c.kind, k.many, one_pass))
        return ms

    def _plan_save(self, workload: str, n_aggs: int, n_events: int) -> list[Measurement]:
        events = stamped_events(n_aggs, n_events)
        ms = [Measurement(workload, "-", "pydantic", "floor", n_aggs * n_events,
                          lambda: floor_dump(events), note="model_dump_json")]
        for c, served in self.contenders:
            for storage in served:

                def one_pass(c: Contender = c, storage: str = storage) -> float:
                    loc = self.storages.fresh(storage, f"{c.name}-{workload}")
                    store = c.open(loc)
                    try:
                        aggs = c.build(n_aggs, n_events)
                        return c.time_save(store, aggs)
                    finally:
                        c.close(store)
                        self.storages.cleanup(loc)

                ms.append(Measurement(workload, storage, c.name, c.kind, n_aggs * n_events,
                                      one_pass))
        return ms

    def _plan_save_100x100(self) -> list[Measurement]:
        k = self.counts
        return self._plan_save("save_100x100", k.aggregates, k.events_per_aggregate)

    def _plan_save_10000x1(self) -> list[Measurement]:
        return self._plan_save("save_10000x1", self.counts.singles, 1)

    def _fixture(self, c: Contender, storage: str, n_aggs: int, n_events: int,
                 tag: str) -> LoadFixture:
        key = (c.name, storage, tag)
        if key not in self._fixtures:
            self._fixtures[key] = LoadFixture(c, self.storages, storage, n_aggs, n_events, tag)
        return self._fixtures[key]

    def _plan_loads(self, workload: str) -> list[Measurement]:
        k = self.counts
        payloads = [(type(e), e.model_dump_json())
                    for e in stamped_events(k.aggregates, k.events_per_aggregate)]
        ms = [Measurement(workload, "-", "pydantic", "floor", k.many,
                          lambda: floor_validate(payloads), note="model_validate_json")]
        # load_100x100 and load_events_100x100 read the same written store; the
        # last workload that uses it closes it.
        last = "load_events_100x100" if "load_events_100x100" in self.workloads else "load_100x100"
        for c, served in self.contenders:
            for storage in served:
                fx = self._fixture(c, storage, k.aggregates, k.events_per_aggregate, "loads")
                if workload == "load_100x100":

                    def one_pass(c: Contender = c, fx: LoadFixture = fx) -> float:
                        seconds, loaded = c.time_load(fx.store, fx.ids)
                        for agg in loaded:
                            c.check_aggregate(agg, k.events_per_aggregate)
                        return seconds
                else:

                    def one_pass(c: Contender = c, fx: LoadFixture = fx) -> float:
                        seconds, lists = c.time_load_events(fx.store, fx.ids)
                        if sum(map(len, lists)) != k.many:
                            raise AssertionError(f"{c.name}: load_events lost events")
                        return seconds

                ms.append(Measurement(workload, storage, c.name, c.kind, k.many, one_pass,
                                      setup=fx.setup,
                                      teardown=fx.teardown if workload == last else None))
        return ms

    def _plan_load_100x100(self) -> list[Measurement]:
        return self._plan_loads("load_100x100")

    def _plan_load_events_100x100(self) -> list[Measurement]:
        return self._plan_loads("load_events_100x100")

    def _plan_rebuild_1000(self) -> list[Measurement]:
        k = self.counts
        long = [(type(e), e.model_dump_json()) for e in stamped_events(1, k.rebuild_events)]
        long_payloads = long * k.rebuild_loops
        n = k.rebuild_events * k.rebuild_loops
        ms = [Measurement("rebuild_1000", "-", "pydantic", "floor", n,
                          lambda: floor_validate(long_payloads), ops=k.rebuild_loops,
                          note="model_validate_json")]
        for c, served in self.contenders:
            for storage in served:
                fx = self._fixture(c, storage, 1, k.rebuild_events, "rebuild")

                def one_pass(c: Contender = c, fx: LoadFixture = fx) -> float:
                    seconds, loaded = c.time_load(fx.store, fx.ids, loops=k.rebuild_loops)
                    for agg in loaded:
                        c.check_aggregate(agg, k.rebuild_events)
                    return seconds

                ms.append(Measurement("rebuild_1000", storage, c.name, c.kind, n, one_pass,
                                      setup=fx.setup, teardown=fx.teardown,
                                      ops=k.rebuild_loops))
        return ms


def probe_engine(engine: str, storage: str, storages: Storages) -> str | None:
    """Why ``engine`` cannot serve ``storage`` here, or None when it can."""
    loc = storages.fresh(storage, f"probe-{engine}")
    try:
        c = Eventuali(engine, "sync", asyncio.new_event_loop(), storages)
        store = c.open(loc)
        store.close()
        return None
    except (BackendNotFoundError, BackendUnavailableError, UnknownSchemeError, ImportError) as exc:
        # Not installed, does not load, or does not serve this scheme: a listed skip.
        # Anything else (a store that fails to open) is a real failure and propagates.
        return f"{type(exc).__name__}: {exc}"
    finally:
        storages.cleanup(loc)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="eventuali end to end, beside the pydantic floor and eventsourcing, in one run.")
    p.add_argument("--quick", action="store_true",
                   help="small counts and 2 repeats: checks the harness, numbers mean little")
    p.add_argument("--json", metavar="PATH", help="write the eventuali-bench/1 JSON here")
    p.add_argument("--backends", default="python,c",
                   help="eventuali engines to try (default python,c; one that does not load is "
                        "skipped and listed)")
    p.add_argument("--api", default="async,sync", help="async (EventStore), sync (SyncEventStore)")
    p.add_argument("--storages", default="memory,sqlite", help="memory,sqlite (postgres is added "
                   "by --postgres)")
    p.add_argument("--postgres", metavar="URL",
                   help="also measure PostgreSQL (eventuali and eventsourcing.postgres), each "
                        "measurement in a fresh schema that is dropped afterwards")
    p.add_argument("--no-eventsourcing", action="store_true", help="leave the peer out")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="subset of " + ",".join(WORKLOADS))
    p.add_argument("--repeats", type=int, help="timed passes after one warm-up (default 5, quick 2)")
    p.add_argument("--gc", choices=("on", "off"), default="on",
                   help="on: gc enabled, collected before every pass (default); off: disabled "
                        "while timing; the same for every contender")
    p.add_argument("--sqlite-sync", choices=("default", "normal", "full"), default="default",
                   help="eventuali's PRAGMA synchronous on SQLite (default: the engine's own "
                        "default, NORMAL; eventsourcing always runs at sqlite3's default, FULL)")
    p.add_argument("--dir", help="where the SQLite files go (default: a temp dir on the same disk "
                   "as the system temp dir)")
    p.add_argument("--aggregates", type=int)
    p.add_argument("--events-per-aggregate", type=int)
    p.add_argument("--singles", type=int)
    p.add_argument("--rebuild-events", type=int)
    p.add_argument("--rebuild-loops", type=int)
    args = p.parse_args(argv)
    args.workloads = [w for w in args.workloads.split(",") if w]
    bad = sorted(set(args.workloads) - set(WORKLOADS))
    if bad:
        p.error(f"--workloads: unknown {bad}; choose from {', '.join(WORKLOADS)}")
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def counts_from(args: argparse.Namespace) -> Counts:
    base = Counts(20, 50, 1000, 200, 5) if args.quick else Counts()
    return Counts(
        aggregates=args.aggregates or base.aggregates,
        events_per_aggregate=args.events_per_aggregate or base.events_per_aggregate,
        singles=args.singles or base.singles,
        rebuild_events=args.rebuild_events or base.rebuild_events,
        rebuild_loops=args.rebuild_loops or base.rebuild_loops,
    )


def print_summary(console: Any, doc: dict[str, Any]) -> None:
    from rich.table import Table

    rows = doc["results"]
    rat = {(r["workload"], r["storage"], r["contender"], r["ratio"]): r["value"]
           for r in result_format.ratios(doc)}
    for workload in WORKLOADS:
        wrows = [r for r in rows if r["workload"] == workload]
        if not wrows:
            continue
        t = Table(title=WORKLOAD_TITLES[workload], title_justify="left")
        for col in ("storage", "contender", "best ev/s", "median ev/s", "× floor",
                    "vs eventsourcing", "c vs python", "ms/rebuild"):
            t.add_column(col, justify="left" if col in ("storage", "contender") else "right")
        for r in wrows:
            key = (r["workload"], r["storage"], r["contender"])

            def fmt(name: str, key: tuple[str, str, str] = key) -> str:
                v = rat.get((*key, name))
                return f"{v:.2f}×" if v is not None else ""

            t.add_row(r["storage"], r["contender"], f"{r['best']:,.0f}", f"{r['median']:,.0f}",
                      fmt("x_floor"), fmt("vs_eventsourcing"), fmt("c_vs_python"),
                      f"{r['ms_per_op']:.2f}" if r.get("ms_per_op") else "")
        console.print(t)
    for s in doc["skipped"]:
        console.print(f"[yellow]skipped[/] {s['contender']} on {s['storage']}: {s['reason']}")


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    args = parse_args(argv)
    counts = counts_from(args)
    Clock.gc_off = args.gc == "off"
    # Wide enough for the summary tables when the output is a pipe or a log file.
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)

    storages_wanted = [s for s in args.storages.split(",") if s]
    if args.postgres and "postgres" not in storages_wanted:
        storages_wanted.append("postgres")
    for s in storages_wanted:
        if s not in ("memory", "sqlite", "postgres"):
            console.print(f"[red]--storages: unknown storage {s!r}; choose memory, sqlite, postgres")
            return 2
        if s == "postgres" and not args.postgres:
            console.print("[red]--storages postgres needs --postgres URL")
            return 2

    root = Path(tempfile.mkdtemp(prefix="eventuali-bench-", dir=args.dir))
    storages = Storages(root, args.sqlite_sync, args.postgres)
    settings = {
        "quick": args.quick,
        "repeats": args.repeats,
        "warmup_passes": 1,
        "statistic": "best",
        "gc": args.gc,
        "counts": counts.__dict__,
        "apis": args.api.split(","),
        "storages": storages_wanted,
        "sqlite_synchronous": {
            "eventuali": "NORMAL (engine default)" if args.sqlite_sync == "default"
            else args.sqlite_sync.upper(),
            "eventsourcing": "FULL (sqlite3 default)",
        },
        "sqlite_journal_mode": "WAL (both)",
        "sqlite_dir": str(root),
        "workloads": {w: WORKLOAD_TITLES[w] for w in args.workloads},
    }
    doc = result_format.new_document("bench_e2e.py", settings)

    # Which engine serves which storage, probed once (a skip is listed, never silent).
    loop = asyncio.new_event_loop()
    contenders: list[tuple[Contender, list[str]]] = []
    for engine in [e for e in args.backends.split(",") if e]:
        served = []
        for s in storages_wanted:
            why = probe_engine(engine, s, storages)
            if why is None:
                served.append(s)
            else:
                doc["skipped"].append({"contender": f"eventuali-{engine}", "storage": s,
                                       "reason": why})
        if served:
            for api in args.api.split(","):
                contenders.append((Eventuali(engine, api, loop, storages), served))
    if not args.no_eventsourcing:
        try:
            contenders.append((Eventsourcing(storages), storages_wanted))
        except ImportError as exc:
            doc["skipped"].append({"contender": "eventsourcing", "storage": "*",
                                   "reason": f"{exc}; pip install eventsourcing==9.5.6"})

    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            Bench(args, counts, doc, storages, contenders).run(progress)
    finally:
        loop.close()
        shutil.rmtree(root, ignore_errors=True)

    doc["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    problems = result_format.validate(doc)
    print_summary(console, doc)
    if args.json:
        result_format.dump(doc, args.json)
        console.print(f"wrote {args.json}")
    if problems:
        for p in problems:
            console.print(f"[red]{p}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
