"""The performance guide's "Multi-Tenant Performance" (scaling pattern 3), measured.

Run it: ``python examples/30_tenant_isolation_architecture.py [--url BASE_URL]
[--tenants N] [--orders N]`` (default: SQLite files in a temporary folder, one
per tenant; 8 tenants with 200 orders each).

The guide's ``TenantManager`` configuration (database isolation: a store per
tenant) serves tenants that all use the same order ids.  The program measures
what the section claims:

1. Tenant validation overhead: a load through the tenant's store against the
   same load on a plain store of the same database (interleaved, best of 5).
2. Isolation: every tenant reads back exactly its own orders, never another's
   (the isolation success rate is the share of reads that hold).
3. Scaling: time per tenant when 1/4, 1/2 and all of the tenants do the same
   work (linear scaling keeps it flat).
4. Per-tenant metrics: events written, as counted for each tenant.

Every number is measured by this run on this machine; a check that does not
hold is printed with ❌.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from eventuali import Aggregate, Event, EventStore
from eventuali.tenancy import TenantManager


class OrderPlaced(Event):
    amount: int


class Order(Aggregate):
    total: int = 0

    def apply_order_placed(self, event: OrderPlaced) -> None:
        self.total += event.amount


def ok(flag: bool) -> str:
    return "✅" if flag else "❌"


def amount(tenant: int, order: int) -> int:
    return tenant * 100_000 + order  # tells every tenant's orders apart


async def place_orders(manager: TenantManager, tenant: int, orders: int) -> None:
    store = await manager.get_store(f"tenant-{tenant}")
    batch = []
    for o in range(orders):
        order = Order(id=f"order-{o}")  # the same ids in every tenant
        order.apply(OrderPlaced(amount=amount(tenant, o)))
        batch.append(order)
    await store.save(*batch)


async def run(manager: TenantManager, tenants: int, orders: int) -> None:
    t_all = time.perf_counter()
    for t in range(tenants):
        await place_orders(manager, t, orders)
    written_s = time.perf_counter() - t_all

    print("1. Tenant validation overhead:")
    tenant_store = await manager.get_store("tenant-0")
    plain = await EventStore.create(manager.tenant_url("tenant-0"))
    try:
        best_tenant = best_plain = float("inf")
        for _ in range(5):  # interleaved, so both see the same machine load
            t0 = time.perf_counter()
            for o in range(orders):
                await tenant_store.load(Order, f"order-{o}")
            best_tenant = min(best_tenant, (time.perf_counter() - t0) / orders)
            t0 = time.perf_counter()
            for o in range(orders):
                await plain.load(Order, f"order-{o}")
            best_plain = min(best_plain, (time.perf_counter() - t0) / orders)
    finally:
        await plain.close()
    overhead = best_tenant - best_plain
    print(f"   ✅ Load through the tenant store: {best_tenant * 1000:.3f}ms; plain store: "
          f"{best_plain * 1000:.3f}ms")
    print(f"   {ok(overhead < 0.0001)} Tenant overhead: {overhead * 1000:.3f}ms per operation "
          f"(<0.1ms: {'yes' if overhead < 0.0001 else 'no'})")

    print("\n2. Isolation:")
    reads = held = 0
    for t in range(tenants):
        store = await manager.get_store(f"tenant-{t}")
        for o in range(orders):
            order = await store.load(Order, f"order-{o}")
            reads += 1
            held += order is not None and order.total == amount(t, o)
        events = await store.load_events_by_type("Order")
        reads += 1
        held += len(events) == orders and all(e.amount // 100_000 == t for e in events)
    rate = held / reads * 100
    print(f"   {ok(held == reads)} Isolation success rate: {rate:.1f}% ({held:,} of {reads:,} reads "
          f"saw their own tenant's data only; {tenants} tenants sharing {orders} order ids)")

    print("\n3. Scaling with tenant count:")
    per_tenant = []
    base = tenants
    for count in sorted({max(1, tenants // 4), max(1, tenants // 2), tenants}):
        t0 = time.perf_counter()
        for t in range(base, base + count):  # fresh tenants, the same work each
            await place_orders(manager, t, orders)
        per_tenant.append((count, (time.perf_counter() - t0) / count))
        base += count
    steps = ", ".join(f"{c} tenants: {s * 1000:.1f}ms/tenant" for c, s in per_tenant)
    spread = max(s for _, s in per_tenant) / min(s for _, s in per_tenant)
    print(f"   {ok(spread < 2)} {'Linear' if spread < 2 else 'Not linear'} scaling: time per tenant "
          f"stays within {spread:.2f}x ({steps})")

    print("\n4. Per-tenant metrics:")
    counted = [manager.get_tenant_metrics(f"tenant-{t}").events_written for t in range(tenants)]
    print(f"   {ok(counted == [orders] * tenants)} Events written per tenant: "
          f"{', '.join(map(str, counted))} (first pass: {tenants * orders:,} events in {written_s:.3f} s)")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="base store URL; each tenant gets its own database beside it "
                        "(default: SQLite files in a temporary folder)")
    parser.add_argument("--tenants", type=int, default=8, help="tenants")
    parser.add_argument("--orders", type=int, default=200, help="orders per tenant")
    args = parser.parse_args(argv)
    if args.tenants < 1 or args.orders < 1:
        parser.error("--tenants and --orders must be >= 1")
    print("=== Eventuali Tenant Isolation ===\n")
    with tempfile.TemporaryDirectory() as tmp:
        tenant_manager = TenantManager({
            "isolation_level": "database",       # Database-level isolation
            "connection_pool_per_tenant": True,  # Dedicated pools
            "cache_tenant_config": True,         # Cache tenant settings
            "metrics_collection": True,          # Per-tenant metrics
            "base_url": args.url or f"sqlite://{Path(tmp) / 'events.db'}",
        })
        try:
            if await (await tenant_manager.get_store("tenant-0")).head() != 0:
                print("tenant-0's store is not empty; give an empty base URL", file=sys.stderr)
                return 2
            await run(tenant_manager, args.tenants, args.orders)
        finally:
            await tenant_manager.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
