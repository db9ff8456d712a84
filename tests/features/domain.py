"""Events and aggregates shared by the feature tests."""

from __future__ import annotations

from eventuali import Aggregate, Event


class UserRegistered(Event):
    # The event registry is process-wide and other test modules define their own
    # UserRegistered; a distinct stored name keeps both, and snake_case maps it to
    # the same handle_user_registered / apply_user_registered methods.
    __event_type__ = "user_registered"

    name: str
    email: str


class UserRenamed(Event):
    name: str


class Deposited(Event):
    amount: int


class Withdrawn(Event):
    amount: int


class User(Aggregate):
    name: str = ""
    email: str = ""

    def apply_user_registered(self, e: UserRegistered) -> None:
        self.name, self.email = e.name, e.email

    def apply_user_renamed(self, e: UserRenamed) -> None:
        self.name = e.name


class Account(Aggregate):
    balance: int = 0
    history: list[int] = []
    owner: str = "nobody"

    def apply_deposited(self, e: Deposited) -> None:
        self.balance += e.amount
        self.history.append(e.amount)

    def apply_withdrawn(self, e: Withdrawn) -> None:
        self.balance -= e.amount
        self.history.append(-e.amount)
