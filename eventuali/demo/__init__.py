"""The demo domain: bank accounts and transfers, used by ``eventuali demo`` and the quick start."""

from __future__ import annotations

from eventuali import Aggregate, Event


class AccountOpened(Event):
    owner: str
    currency: str = "EUR"


class MoneyDeposited(Event):
    amount: float
    description: str = ""


class MoneyWithdrawn(Event):
    amount: float
    description: str = ""


class Account(Aggregate):
    owner: str = ""
    currency: str = "EUR"
    balance: float = 0.0
    transactions: int = 0

    def open(self, owner: str, currency: str = "EUR") -> None:
        self.apply(AccountOpened(owner=owner, currency=currency))

    def deposit(self, amount: float, description: str = "") -> None:
        if amount <= 0:
            raise ValueError(f"deposit amount must be positive, got {amount}")
        self.apply(MoneyDeposited(amount=amount, description=description))

    def withdraw(self, amount: float, description: str = "") -> None:
        if amount > self.balance:
            raise ValueError(f"insufficient funds: balance {self.balance}, withdrawal {amount}")
        self.apply(MoneyWithdrawn(amount=amount, description=description))

    def apply_account_opened(self, event: AccountOpened) -> None:
        self.owner = event.owner
        self.currency = event.currency

    def apply_money_deposited(self, event: MoneyDeposited) -> None:
        self.balance += event.amount
        self.transactions += 1

    def apply_money_withdrawn(self, event: MoneyWithdrawn) -> None:
        self.balance -= event.amount
        self.transactions += 1
