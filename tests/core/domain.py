"""A small domain shared by the core tests."""

from __future__ import annotations

from eventuali import Aggregate, Event


class UserRegistered(Event):
    name: str
    email: str


class UserEmailChanged(Event):
    new_email: str


class UserDeactivated(Event):
    reason: str | None = None


class User(Aggregate):
    name: str = ""
    email: str = ""
    is_active: bool = False

    def register(self, name: str, email: str) -> None:
        self.apply(UserRegistered(name=name, email=email))

    def change_email(self, new_email: str) -> None:
        if "@" not in new_email:
            raise ValueError(f"invalid email {new_email!r}")
        self.apply(UserEmailChanged(new_email=new_email))

    def apply_user_registered(self, event: UserRegistered) -> None:
        self.name = event.name
        self.email = event.email
        self.is_active = True

    def apply_user_email_changed(self, event: UserEmailChanged) -> None:
        self.email = event.new_email

    def apply_user_deactivated(self, event: UserDeactivated) -> None:
        self.is_active = False


def registered_user(uid: str = "user-1", n_changes: int = 0) -> User:
    u = User(id=uid)
    u.register("Ada", "ada@example.com")
    for i in range(n_changes):
        u.change_email(f"ada{i}@example.com")
    return u
