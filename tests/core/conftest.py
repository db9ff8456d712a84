"""Fixtures for the core API tests: a store on every (scheme) the reference engine serves."""

from __future__ import annotations

import pytest

from eventuali import EventStore, SyncEventStore


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request, tmp_path) -> str:
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path}/events.db"


@pytest.fixture
async def store(store_url):
    s = await EventStore.create(store_url)
    yield s
    await s.close()


@pytest.fixture
def sync_store(store_url):
    s = SyncEventStore.create(store_url)
    yield s
    s.close()
