"""A fresh store URL per test, for each scheme the suite knows how to provision.

A *URL factory* is a generator function ``(tmp_path) -> Iterator[str]`` that
yields the URL of a new, empty store and cleans up after the test.  The suite
opens that URL once or several times (reopen tests).  Built in: ``memory``
(a uniquely named ``memory://`` store), ``sqlite`` (a file in ``tmp_path``) and
``sqlite-memory`` (``sqlite://:memory:``).

Adding a scheme (e.g. PostgreSQL with a fresh schema per test)::

    @register_url_factory("postgresql", scheme="postgresql",
                          required_by="EVENTUALI_REQUIRE_POSTGRES")
    def postgresql_url(tmp_path):
        ... create a schema, or raise SchemeUnavailable("server unreachable: ...")
        yield f"postgresql://postgres@127.0.0.1:5432/test?schema={name}"
        ... drop the schema

placed in this module, in a module listed in :data:`FACTORY_MODULES`, or in a
third party's ``conftest.py``.  A factory that raises :class:`SchemeUnavailable`
skips the test with the reason, unless the environment variable named by
``required_by`` is ``1``, in which case the test fails.

A scheme with no factory gets a generic one: ``SCHEME://<tmp_path>/store``
(a file path for a file-based engine, a unique name for an in-memory one).
"""

from __future__ import annotations

import contextlib
import importlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


class SchemeUnavailable(Exception):
    """A URL factory cannot provision a store here (server down, driver missing, …)."""


@dataclass(frozen=True)
class UrlFactory:
    name: str
    """What ``--eventuali-scheme`` names, e.g. ``sqlite-memory``."""
    scheme: str
    """The URL scheme the store uses, e.g. ``sqlite``: a backend must serve it."""
    make: Callable[[Path], Iterator[str]]
    required_by: str | None = None
    """Env var that, when ``1``, turns ``SchemeUnavailable`` into a failure."""

    def url(self, tmp_path: Path) -> contextlib.AbstractContextManager[str]:
        return contextlib.contextmanager(self.make)(tmp_path)

    def provision(self, tmp_path: Path) -> Iterator[str]:
        """For a generator fixture (``yield from``): a new store's URL; when none can be
        had here, skip the test with the reason - or fail it, when ``required_by`` is 1."""
        import os

        import pytest

        try:
            with self.url(tmp_path) as url:
                yield url
        except SchemeUnavailable as exc:
            if self.required_by and os.environ.get(self.required_by) == "1":
                pytest.fail(f"{self.name} store unavailable and {self.required_by}=1: {exc}")
            pytest.skip(f"{self.name} store unavailable: {exc}")


_FACTORIES: dict[str, UrlFactory] = {}

FACTORY_MODULES: list[str] = ["eventuali.testing.postgres_urls"]
"""Modules imported on first use that register more factories (engines add theirs)."""
_loaded_modules = False


def register_url_factory(
    name: str, scheme: str | None = None, required_by: str | None = None
) -> Callable[[Callable[[Path], Iterator[str]]], Callable[[Path], Iterator[str]]]:
    """Decorator: register a URL factory under ``name`` (its URLs use ``scheme``, default ``name``)."""

    def decorate(make: Callable[[Path], Iterator[str]]) -> Callable[[Path], Iterator[str]]:
        _FACTORIES[name] = UrlFactory(name, scheme or name, make, required_by)
        return make

    return decorate


def url_factories() -> dict[str, UrlFactory]:
    """Every registered factory, by name."""
    global _loaded_modules
    if not _loaded_modules:
        _loaded_modules = True
        for module in FACTORY_MODULES:
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
    return dict(_FACTORIES)


def url_factory(name: str) -> UrlFactory:
    """The factory ``name``, or the generic one for a scheme nobody registered."""
    found = url_factories().get(name)
    if found is not None:
        return found

    def generic(tmp_path: Path) -> Iterator[str]:
        yield f"{name}://{tmp_path / 'store'}"

    return UrlFactory(name, name, generic)


@register_url_factory("memory")
def memory_url(tmp_path: Path) -> Iterator[str]:
    # A unique name: named memory stores live as long as the process.
    yield f"memory://conformance-{uuid.uuid4().hex}"


@register_url_factory("sqlite")
def sqlite_file_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite://{tmp_path / 'store.db'}"


@register_url_factory("sqlite-memory", scheme="sqlite")
def sqlite_memory_url(tmp_path: Path) -> Iterator[str]:
    yield "sqlite://:memory:"
