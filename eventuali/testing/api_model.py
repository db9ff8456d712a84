"""The event and aggregate classes the conformance suite saves through the public API.

Kept in their own module, imported only by those tests, so that importing the
suite does not register event types with the core.
"""

from __future__ import annotations

from eventuali import Aggregate, Event


class ConformanceItemAdded(Event):
    sku: str
    quantity: int


class ConformanceCart(Aggregate):
    items: dict[str, int] = {}

    def apply_conformance_item_added(self, event: ConformanceItemAdded) -> None:
        self.items = {**self.items, event.sku: self.items.get(event.sku, 0) + event.quantity}
