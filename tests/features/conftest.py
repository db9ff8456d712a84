"""Fixtures for the feature tests: one store per (installed backend, scheme) pair.

Every backend registered under ``eventuali.backends`` that loads is used, for
the ``memory`` and ``sqlite`` schemes it serves, so a newly installed engine
(the C one, say) is covered without touching these tests.
"""

from __future__ import annotations

import itertools
import uuid

import pytest

from eventuali import EventStore, SyncEventStore, registry
from eventuali.errors import BackendUnavailableError

_SCHEMES = ("memory", "sqlite")


def _pairs() -> list[tuple[str, str]]:
    pairs = []
    for name in registry.names():
        try:
            provider = registry.load(name)
        except BackendUnavailableError:
            continue
        pairs.extend((name, s) for s in _SCHEMES if s in provider.schemes)
    return pairs


PAIRS = _pairs()
_counter = itertools.count()


def _url(scheme: str, tmp_path) -> str:
    if scheme == "memory":
        return f"memory://features-{uuid.uuid4().hex}"
    return f"sqlite:///{tmp_path}/features-{next(_counter)}.db"


@pytest.fixture(params=PAIRS, ids=[f"{b}-{s}" for b, s in PAIRS])
def store_url(request, tmp_path):
    """(url, backend name) of a fresh store; open it as many times as a test needs."""
    backend, scheme = request.param
    return _url(scheme, tmp_path), backend


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
