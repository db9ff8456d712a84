"""Fixtures for the feature tests: one fresh store per installed (backend, scheme) target.

Targets and URLs come from the conformance package (:mod:`eventuali.testing`),
so every engine registered under ``eventuali.backends`` — the C engine,
PostgreSQL — is covered as soon as it is installed, without touching these
tests.  ``sqlite-memory`` is left out: those stores vanish when closed, and
several tests close and reopen their store to prove persistence.
"""

from __future__ import annotations

import os

import pytest

from eventuali import EventStore, SyncEventStore
from eventuali.testing.targets import installed_targets
from eventuali.testing.urls import SchemeUnavailable, url_factory

TARGETS = [t for t in installed_targets()[0] if t.scheme != "sqlite-memory"]


@pytest.fixture(params=TARGETS, ids=str)
def store_url(request, tmp_path):
    """(url, backend name) of a fresh store; open it as many times as a test needs."""
    target = request.param
    factory = url_factory(target.scheme)
    try:
        with factory.url(tmp_path) as url:
            yield url, target.backend
    except SchemeUnavailable as exc:
        if factory.required_by and os.environ.get(factory.required_by) == "1":
            pytest.fail(f"{factory.required_by}=1 but {target} is unavailable: {exc}")
        pytest.skip(f"{target} unavailable here: {exc}")


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
