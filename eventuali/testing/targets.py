"""Which (backend, scheme) pairs the conformance suite can run against here.

A *target* is a registered backend plus a URL factory whose scheme it serves.
:func:`installed_targets` enumerates them through :mod:`eventuali.registry`, so
an engine that is installed (the C engine, PostgreSQL) is picked up without
changing any test.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventuali.errors import BackendUnavailableError
from eventuali.registry import load as load_backend
from eventuali.registry import names as backend_names

from .urls import url_factories


@dataclass(frozen=True)
class Target:
    backend: str
    """Registry name, e.g. ``python``."""
    scheme: str
    """URL factory name, e.g. ``sqlite`` or ``sqlite-memory``."""
    url: str | None = None
    """A URL template (``{tmp_path}``, ``{unique}``) that replaces the factory, if given."""

    def __str__(self) -> str:
        return f"{self.backend}-{self.scheme}"


def installed_targets() -> tuple[list[Target], dict[str, str]]:
    """(every loadable backend × every factory whose scheme it serves, {backend: load error})."""
    targets: list[Target] = []
    broken: dict[str, str] = {}
    factories = url_factories()
    for name in backend_names():
        try:
            provider = load_backend(name)
        except BackendUnavailableError as exc:
            broken[name] = str(exc)
            continue
        for factory in factories.values():
            if factory.scheme in provider.schemes:
                targets.append(Target(name, factory.name))
    return targets, broken
