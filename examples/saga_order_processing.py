"""Order processing across three aggregates with a saga: reserve stock, charge, confirm.

Run it: ``python examples/saga_order_processing.py [store-url]`` (default: a
private in-memory store).

- ``Order``, ``Inventory`` and ``Payment`` are independent aggregates, each
  changed only by its command handler.
- ``OrderSaga`` reacts to ``OrderPlaced``: it reserves stock, charges the
  customer and confirms the order.  When a step fails (card declined,
  not enough stock) the steps already done are compensated in reverse order
  (the charge refunded, the stock released) and the order is rejected.
- The saga runs in an ``EventStreamer`` like any projection; its progress is
  stored as events, so it survives restarts without repeating steps.
"""

from __future__ import annotations

import asyncio
import sys

from eventuali import Aggregate, Event, EventStore, EventStreamer
from eventuali.sagas import Command, CommandBus, Saga

# --- events -------------------------------------------------------------------------


class OrderPlaced(Event):
    customer: str
    sku: str
    quantity: int
    amount: int


class OrderConfirmed(Event):
    payment_id: str


class OrderRejected(Event):
    reason: str


class StockAdded(Event):
    quantity: int


class StockReserved(Event):
    order_id: str
    quantity: int


class StockReleased(Event):
    order_id: str
    quantity: int


class PaymentCharged(Event):
    order_id: str
    customer: str
    amount: int


class PaymentRefunded(Event):
    order_id: str
    amount: int


# --- aggregates ----------------------------------------------------------------------


class DomainError(Exception):
    """A business rule said no."""


class Order(Aggregate):
    customer: str = ""
    sku: str = ""
    quantity: int = 0
    amount: int = 0
    status: str = "new"
    reason: str | None = None

    def place(self, customer: str, sku: str, quantity: int, amount: int) -> None:
        self.apply(OrderPlaced(customer=customer, sku=sku, quantity=quantity, amount=amount))

    def apply_order_placed(self, e: OrderPlaced) -> None:
        self.customer, self.sku, self.quantity, self.amount = e.customer, e.sku, e.quantity, e.amount
        self.status = "placed"

    def apply_order_confirmed(self, e: OrderConfirmed) -> None:
        self.status = "confirmed"

    def apply_order_rejected(self, e: OrderRejected) -> None:
        self.status, self.reason = "rejected", e.reason


class Inventory(Aggregate):
    available: int = 0
    reservations: dict[str, int] = {}

    def reserve(self, order_id: str, quantity: int) -> None:
        if order_id in self.reservations:
            return  # idempotent: the saga may send a command again after a crash
        if quantity > self.available:
            raise DomainError(f"only {self.available} of {self.id} left, {quantity} wanted")
        self.apply(StockReserved(order_id=order_id, quantity=quantity))

    def release(self, order_id: str) -> None:
        if order_id in self.reservations:
            self.apply(StockReleased(order_id=order_id, quantity=self.reservations[order_id]))

    def apply_stock_added(self, e: StockAdded) -> None:
        self.available += e.quantity

    def apply_stock_reserved(self, e: StockReserved) -> None:
        self.available -= e.quantity
        self.reservations[e.order_id] = e.quantity

    def apply_stock_released(self, e: StockReleased) -> None:
        self.available += e.quantity
        del self.reservations[e.order_id]


class Payment(Aggregate):
    """One payment per order (id ``payment-<order id>``)."""

    amount: int = 0
    status: str = "none"

    def apply_payment_charged(self, e: PaymentCharged) -> None:
        self.amount, self.status = e.amount, "charged"

    def apply_payment_refunded(self, e: PaymentRefunded) -> None:
        self.status = "refunded"


CARD_LIMIT = 500
"""The payment provider declines charges above this (the example's failure path)."""

# --- commands and their handlers ------------------------------------------------------------


class ReserveStock(Command):
    sku: str
    order_id: str
    quantity: int


class ReleaseStock(Command):
    sku: str
    order_id: str


class ChargePayment(Command):
    order_id: str
    customer: str
    amount: int


class RefundPayment(Command):
    order_id: str


class ConfirmOrder(Command):
    order_id: str
    payment_id: str


class RejectOrder(Command):
    order_id: str
    reason: str = "could not be fulfilled"


def build_bus(store: EventStore) -> CommandBus:
    bus = CommandBus(store)

    @bus.handler(ReserveStock)
    async def reserve(cmd: ReserveStock, store: EventStore) -> None:
        inv = await store.load(Inventory, cmd.sku)
        if inv is None:
            raise DomainError(f"unknown sku {cmd.sku!r}")
        inv.reserve(cmd.order_id, cmd.quantity)
        await store.save(inv)

    @bus.handler(ReleaseStock)
    async def release(cmd: ReleaseStock, store: EventStore) -> None:
        inv = await store.load(Inventory, cmd.sku)
        inv.release(cmd.order_id)
        await store.save(inv)

    @bus.handler(ChargePayment)
    async def charge(cmd: ChargePayment, store: EventStore) -> str:
        pid = f"payment-{cmd.order_id}"
        payment = await store.load(Payment, pid) or Payment(id=pid)
        if payment.status == "charged":
            return pid  # already charged: idempotent
        if cmd.amount > CARD_LIMIT:
            raise DomainError(f"card of {cmd.customer} declined for {cmd.amount}")
        payment.apply(PaymentCharged(order_id=cmd.order_id, customer=cmd.customer, amount=cmd.amount))
        await store.save(payment)
        return pid

    @bus.handler(RefundPayment)
    async def refund(cmd: RefundPayment, store: EventStore) -> None:
        payment = await store.load(Payment, f"payment-{cmd.order_id}")
        if payment is not None and payment.status == "charged":
            payment.apply(PaymentRefunded(order_id=cmd.order_id, amount=payment.amount))
            await store.save(payment)

    @bus.handler(ConfirmOrder)
    async def confirm(cmd: ConfirmOrder, store: EventStore) -> None:
        order = await store.load(Order, cmd.order_id)
        if order.status == "placed":
            order.apply(OrderConfirmed(payment_id=cmd.payment_id))
            await store.save(order)

    @bus.handler(RejectOrder)
    async def reject(cmd: RejectOrder, store: EventStore) -> None:
        order = await store.load(Order, cmd.order_id)
        if order.status == "placed":
            order.apply(OrderRejected(reason=cmd.reason))
            await store.save(order)

    return bus


# --- the saga ---------------------------------------------------------------------------


class OrderSaga(Saga):
    """Reserve stock, charge, confirm; on failure undo what was done and reject the order."""

    async def handle_order_placed(self, event: OrderPlaced) -> None:
        order_id = event.aggregate_id
        async with self.transaction(
            order_id, on_failure=lambda reason: RejectOrder(order_id=order_id, reason=reason)
        ) as tx:
            await tx.run(
                ReserveStock(sku=event.sku, order_id=order_id, quantity=event.quantity),
                compensate=ReleaseStock(sku=event.sku, order_id=order_id),
            )
            payment_id = await tx.run(
                ChargePayment(order_id=order_id, customer=event.customer, amount=event.amount),
                compensate=RefundPayment(order_id=order_id),
            )
            await tx.run(ConfirmOrder(order_id=order_id, payment_id=payment_id))
        if tx.failed:
            print(f"  saga for {order_id}: compensated and rejected ({tx.error})")
        else:
            print(f"  saga for {order_id}: confirmed")


async def main(url: str = "memory://") -> dict[str, str]:
    """Run three orders through the saga; return each order's final status."""
    store = await EventStore.create(url)
    try:
        inv = Inventory(id="sku-widget")
        inv.apply(StockAdded(quantity=10))
        await store.save(inv)

        streamer = EventStreamer(store)
        saga = OrderSaga(build_bus(store))
        await streamer.subscribe(saga, event_types=[OrderPlaced])
        await streamer.start()

        orders = [
            ("order-1", "alice", 3, 120),  # fine
            ("order-2", "bob", 2, 900),  # card declined: stock released, order rejected
            ("order-3", "carol", 50, 100),  # not enough stock: nothing to undo, order rejected
        ]
        print("placing orders:")
        for oid, customer, qty, amount in orders:
            order = Order(id=oid)
            order.place(customer, "sku-widget", qty, amount)
            await store.save(order)
        await streamer.wait_until(timeout=10)
        await streamer.stop()

        statuses = {}
        print("outcome:")
        for oid, *_ in orders:
            order = await store.load(Order, oid)
            statuses[oid] = order.status
            state = await saga.state_of(oid)
            print(f"  {oid}: order {order.status}, saga {state.status}"
                  + (f" ({order.reason})" if order.reason else ""))
        inv = await store.load(Inventory, "sku-widget")
        print(f"  stock left: {inv.available} (reserved: {inv.reservations})")
        payment = await store.load(Payment, "payment-order-1")
        print(f"  payment-order-1: {payment.status} {payment.amount}")
        statuses["stock"] = str(inv.available)
        return statuses
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "memory://"))
