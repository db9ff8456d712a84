"""PostgreSQL benchmark: eventuali's postgresql:// engine beside eventsourcing's PostgreSQL module.

The same workloads as the SQLite section, in one run, against one server:

- ``save_100x100``  100 aggregates × 100 events, one save (one transaction) per aggregate
- ``load_100x100``  ``load`` of those 100 aggregates
- ``rebuild_1000``  ``load`` of one 1,000-event aggregate (ms per rebuild)

Contenders: eventuali ``SyncEventStore`` and async ``EventStore`` (psycopg's
async pool), eventuali at the record level (``Backend.append``/``read_stream``
with pre-encoded records: the engine alone, without pydantic), the
``eventsourcing`` package 9.5.6 (``eventsourcing.postgres``) with the same
events, and ``postgres-alone``: the same appends and reads with every row made
or consumed inside the server (see :func:`server_alone`) - the ceiling any
client can reach on this machine, as the pydantic floor is on the client side.  Each contender writes into a fresh schema that is dropped afterwards.
Numbers are for comparing contenders within one run on one machine, not for
publishing.

Usage: ``python bench/bench_postgres.py [--quick] [--postgres URL] [--repeats N] [--json PATH]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg
from eventuali_python import PythonBackend

from eventuali import Aggregate, Event, EventStore, SyncEventStore
from eventuali.ids import uuid7
from eventuali.records import NO_STREAM, NewRecord, StreamWrite
from eventuali.serialization import EventCodec
from eventuali.url import parse_url


class ItemAdded(Event):
    sku: str
    quantity: int
    price: float


class Cart(Aggregate):
    items: int = 0
    total: float = 0.0

    def apply_item_added(self, event: ItemAdded) -> None:
        self.items += event.quantity
        self.total += event.quantity * event.price


SKUS = [f"sku-{i:04d}" for i in range(50)]


def item(j: int) -> tuple[str, int, float]:
    return SKUS[j % 50], j % 5 + 1, 1.25 + (j % 50) * 0.5


# --- one place per contender ------------------------------------------------------------


class Schema:
    def __init__(self, url: str):
        self.url = url
        self.name = f"bench_{uuid.uuid4().hex[:10]}"

    def store_url(self) -> str:
        return f"{self.url}?schema={self.name}"

    def drop(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --- contenders: each returns {workload: seconds} ----------------------------------------


def eventuali_sync(url: str, aggs: int, per: int, rebuild: int) -> dict[str, float]:
    s = Schema(url)
    try:
        with SyncEventStore.create(s.store_url()) as store:
            carts = []
            for i in range(aggs):
                c = Cart(id=f"cart-{i}")
                for j in range(per):
                    c.apply(ItemAdded(sku=item(j)[0], quantity=item(j)[1], price=item(j)[2]))
                carts.append(c)
            big = Cart(id="big")
            for j in range(rebuild):
                big.apply(ItemAdded(sku=item(j)[0], quantity=item(j)[1], price=item(j)[2]))
            out = {"save_100x100": timed(lambda: [store.save(c) for c in carts])}
            store.save(big)
            out["load_100x100"] = timed(lambda: [store.load(Cart, f"cart-{i}") for i in range(aggs)])
            out["rebuild_1000"] = timed(lambda: store.load(Cart, "big"))
            assert store.load(Cart, "big").version == rebuild
        return out
    finally:
        s.drop()


def eventuali_async(url: str, aggs: int, per: int, rebuild: int) -> dict[str, float]:
    async def run() -> dict[str, float]:
        s = Schema(url)
        store = await EventStore.create(s.store_url())
        try:
            carts = []
            for i in range(aggs):
                c = Cart(id=f"cart-{i}")
                for j in range(per):
                    c.apply(ItemAdded(sku=item(j)[0], quantity=item(j)[1], price=item(j)[2]))
                carts.append(c)
            big = Cart(id="big")
            for j in range(rebuild):
                big.apply(ItemAdded(sku=item(j)[0], quantity=item(j)[1], price=item(j)[2]))
            gc.collect()
            t = time.perf_counter()
            for c in carts:
                await store.save(c)
            out = {"save_100x100": time.perf_counter() - t}
            await store.save(big)
            gc.collect()
            t = time.perf_counter()
            for i in range(aggs):
                await store.load(Cart, f"cart-{i}")
            out["load_100x100"] = time.perf_counter() - t
            t = time.perf_counter()
            loaded = await store.load(Cart, "big")
            out["rebuild_1000"] = time.perf_counter() - t
            assert loaded.version == rebuild
            return out
        finally:
            await store.close()
            s.drop()

    return asyncio.run(run())


def server_alone(url: str, aggs: int, per: int, rebuild: int) -> dict[str, float]:
    """The server's own share: the same appends and reads, with every row made or consumed
    inside PostgreSQL.

    Each save is one call of the real ``eventuali_append`` whose arrays the server builds
    itself (``array_fill``/``generate_series``: same row count, sizes and indexes, event
    ids increasing like uuid7), each load reads the stream's rows in version order and
    only counts them.  What is left is the server's work plus one small round trip per
    call: a ceiling for any client on this machine.
    """
    s = Schema(url)
    event = ItemAdded(sku=item(7)[0], quantity=item(7)[1], price=item(7)[2])
    Cart(id="cart-0").apply(event)  # stamps the envelope (id, aggregate, version, time)
    sample = EventCodec().encode(event)
    with PythonBackend.open(parse_url(s.store_url())):
        pass  # creates the schema and its append function
    q = f'"{s.name}"'
    save = (
        f"SELECT {q}.eventuali_append(ARRAY[%(sid)s], ARRAY['Cart'], ARRAY[''], ARRAY[-2]::int8[], "
        "ARRAY[%(n)s]::int4[], array_fill(1, ARRAY[%(n)s]), "
        "(SELECT array_agg(g) FROM generate_series(1, %(n)s) g), "
        "(SELECT array_agg(decode(lpad(to_hex(%(base)s::int8 + g), 32, '0'), 'hex')) "
        " FROM generate_series(1, %(n)s) g), "
        "array_fill('ItemAdded'::text, ARRAY[%(n)s]), array_fill(1, ARRAY[%(n)s]), "
        "array_fill(%(ts)s::int8, ARRAY[%(n)s]), array_fill(%(md)s::bytea, ARRAY[%(n)s]), "
        "array_fill(%(pl)s::bytea, ARRAY[%(n)s]), NULL, NULL, %(ch)s)"
    )
    load = (
        f"SELECT count(*), sum(length(payload)) FROM (SELECT * FROM {q}.eventuali_events "
        "WHERE stream_id = %s AND version >= 1 ORDER BY version) rows"
    )
    common = {"ts": sample.timestamp, "md": sample.metadata, "pl": sample.payload,
              "ch": f"eventuali_{s.name}"}  # fmt: skip
    try:
        with psycopg.connect(url, autocommit=True) as conn:

            def save_all() -> None:
                for i in range(aggs):
                    conn.execute(save, {"sid": f"cart-{i}", "n": per, "base": (i + 1) << 32, **common})

            out = {"save_100x100": timed(save_all)}
            conn.execute(save, {"sid": "big", "n": rebuild, "base": 1 << 62, **common})
            out["load_100x100"] = timed(lambda: [conn.execute(load, (f"cart-{i}",)).fetchone()
                                                 for i in range(aggs)])  # fmt: skip
            out["rebuild_1000"] = timed(lambda: conn.execute(load, ("big",)).fetchone())
            assert conn.execute(load, ("big",)).fetchone()[0] == rebuild
        return out
    finally:
        s.drop()


def eventuali_records(url: str, aggs: int, per: int, rebuild: int) -> dict[str, float]:
    s = Schema(url)
    payload = b'{"sku":"sku-0001","quantity":3,"price":12.5}'
    writes = [
        StreamWrite(f"cart-{i}", "Cart", NO_STREAM,
                    [NewRecord(uuid7().bytes, "ItemAdded", 1, 1_700_000_000_000_000, b"{}", payload)
                     for _ in range(per)])
        for i in range(aggs)
    ]  # fmt: skip
    big = StreamWrite("big", "Cart", NO_STREAM,
                      [NewRecord(uuid7().bytes, "ItemAdded", 1, 0, b"{}", payload) for _ in range(rebuild)])  # fmt: skip
    try:
        with PythonBackend.open(parse_url(s.store_url())) as b:
            out = {"save_100x100": timed(lambda: [b.append([w]) for w in writes])}
            b.append([big])
            out["load_100x100"] = timed(lambda: [b.read_stream(w.stream_id) for w in writes])
            out["rebuild_1000"] = timed(lambda: b.read_stream("big"))
        return out
    finally:
        s.drop()


_ES: dict[str, type] = {}


def _es_cart() -> type:
    """eventsourcing's aggregate for the same events (defined once: it registers a topic)."""
    if "cart" not in _ES:
        from eventsourcing.domain import Aggregate as ESAggregate
        from eventsourcing.domain import event

        class ESCart(ESAggregate):
            def __init__(self) -> None:
                self.items = 0
                self.total = 0.0

            @event("ItemAdded")
            def add_item(self, sku: str, quantity: int, price: float) -> None:
                self.items += quantity
                self.total += quantity * price

        _ES["cart"] = ESCart
    return _ES["cart"]


def eventsourcing_pg(url: str, aggs: int, per: int, rebuild: int) -> dict[str, float]:
    from eventsourcing.application import Application

    ESCart = _es_cart()

    s = Schema(url)
    parts = urlsplit(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{s.name}"')
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": parts.username or "postgres",
        "POSTGRES_PASSWORD": parts.password or "",
        "POSTGRES_SCHEMA": s.name,
    }
    try:
        app = Application(env=env)
        carts = []
        for _ in range(aggs):
            c = ESCart()
            for j in range(per - 1):  # the created event counts as one
                c.add_item(*item(j))
            carts.append(c)
        big = ESCart()
        for j in range(rebuild - 1):
            big.add_item(*item(j))
        out = {"save_100x100": timed(lambda: [app.save(c) for c in carts])}
        app.save(big)
        out["load_100x100"] = timed(lambda: [app.repository.get(c.id) for c in carts])
        out["rebuild_1000"] = timed(lambda: app.repository.get(big.id))
        assert app.repository.get(big.id).version == rebuild
        app.close()
        return out
    finally:
        s.drop()


# name -> (kind for the report, function)
CONTENDERS: dict[str, tuple[str, Callable[..., dict[str, float]]]] = {
    "eventuali-python-sync": ("eventuali", eventuali_sync),
    "eventuali-python": ("eventuali", eventuali_async),
    "records-python": ("record", eventuali_records),
    "postgres-alone": ("server", server_alone),
    "eventsourcing": ("peer", eventsourcing_pg),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--postgres", "--url", dest="url", metavar="URL",
                   default=os.environ.get("EVENTUALI_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
                   help="server to measure on (each contender gets a fresh schema there)")
    p.add_argument("--quick", action="store_true", help="20 aggregates × 50 events, rebuild 200")
    p.add_argument("--repeats", type=int, default=None, help="timed passes (default 3; --quick 1)")
    p.add_argument("--json", metavar="PATH", help="write an eventuali-bench/1 document (bench/README.md)")
    args = p.parse_args()
    url = args.url.split("?", 1)[0]
    aggs, per, rebuild = (20, 50, 200) if args.quick else (100, 100, 1000)
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"PostgreSQL at {url}: {aggs} aggregates × {per} events, rebuild {rebuild}; "
          f"{repeats} interleaved pass(es), best shown")  # fmt: skip
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CONTENDERS}
    skipped: list[dict[str, str]] = []
    # Passes are interleaved (pass r of every contender before pass r+1 of any), so a
    # burst of load from elsewhere on the machine hits all contenders alike.
    for _ in range(repeats):
        for name, (_, fn) in CONTENDERS.items():
            if name in {s["contender"] for s in skipped}:
                continue
            try:
                runs[name].append(fn(url, aggs, per, rebuild))
            except ImportError as exc:
                skipped.append({"contender": name, "storage": "postgres",
                                "reason": f"{exc}; pip install eventsourcing==9.5.6"})  # fmt: skip
    print(f"{'contender':24} {'save ev/s':>12} {'load ev/s':>12} {'rebuild ms':>11}")
    n = aggs * per
    for name, passes in runs.items():
        if not passes:
            print(f"{name:24} skipped")
            continue
        best = {k: min(r[k] for r in passes) for k in passes[0]}
        print(f"{name:24} {n / best['save_100x100']:>12,.0f} {n / best['load_100x100']:>12,.0f} "
              f"{best['rebuild_1000'] * 1000:>11.1f}")  # fmt: skip
    if args.json:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import result_format

        doc = result_format.new_document(
            "bench_postgres.py",
            {"repeats": repeats, "statistic": "best", "aggregates": aggs,
             "events_per_aggregate": per, "rebuild_events": rebuild, "server": url},
        )  # fmt: skip
        doc["skipped"] = skipped
        for name, passes in runs.items():
            kind = CONTENDERS[name][0]
            for workload, events, ops in (("save_100x100", n, None), ("load_100x100", n, None),
                                          ("rebuild_1000", rebuild, 1)):  # fmt: skip
                row = result_format.result_row(
                    workload=workload, storage="postgres", contender=name, kind=kind,
                    events=events, seconds=[r[workload] for r in passes], ops=ops,
                )
                doc["results"].append(row)
        problems = result_format.validate(doc)
        if problems:
            print("invalid result document: " + "; ".join(problems), file=sys.stderr)
            return 1
        result_format.dump(doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
