"""Fixtures for the feature tests: one fresh store per installed (backend, scheme) target.

Targets and URLs come from the conformance package (:mod:`eventuali.testing`),
so every engine registered under ``eventuali.backends`` — the C engine,
PostgreSQL — is covered as soon as it is installed, without touching these
tests.  ``sqlite-memory`` is left out: those stores vanish when closed, and
several tests close and reopen their store to prove persistence.
"""

from __future__ import annotations

import pytest

from eventuali import EventStore, SyncEventStore
from eventuali.testing.targets import installed_targets
from eventuali.testing.urls import url_factory

TARGETS = [t for t in installed_targets()[0] if t.scheme != "sqlite-memory"]


@pytest.fixture(params=TARGETS, ids=str)
def store_url(request, tmp_path):
    """(url, backend name) of a fresh store; open it as many times as a test needs."""
    target = request.param
    for url in url_factory(target.scheme).provision(tmp_path):
        yield url, target.backend


@pytest.fixture
async def store(store_url):
    url, backend = store_url
    s = await EventStore.create(url, backend=backend)
    yield s
    await s.close()


@pytest.fixture
def sync_store(store_url):
    url, backend = store_url
    s = SyncEventStore.create(url, backend=backend)
    yield s
    s.close()
