"""Fixtures for the data-trap tests: the public API on every installed (engine, scheme) pair.

Pairs come from :func:`eventuali.testing.targets.installed_targets` (python and c
on memory and SQLite, PostgreSQL when the server answers); an unavailable
server skips with the reason, or fails when its ``EVENTUALI_REQUIRE_*`` is 1.
"""

from __future__ import annotations

import pytest

from eventuali.testing.targets import installed_targets
from eventuali.testing.urls import url_factory

TARGETS = [t for t in installed_targets()[0] if t.scheme != "sqlite-memory"]


@pytest.fixture(params=TARGETS, ids=str)
def target(request, tmp_path):
    """(backend name, URL of a new empty store)."""
    t = request.param
    for url in url_factory(t.scheme).provision(tmp_path):
        yield t.backend, url


@pytest.fixture
def sync_store(target):
    from eventuali import SyncEventStore

    backend, url = target
    store = SyncEventStore.create(url, backend=backend)
    yield store
    store.close()


# The real-Redis fixture of the caching tests (skips without Redis, fails with
# EVENTUALI_REQUIRE_REDIS=1), shared rather than copied.
from tests.test_caching import redis_prefix  # noqa: E402, F401
