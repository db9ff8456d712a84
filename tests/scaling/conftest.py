"""Fixtures for the scale-out tests: the feature tests' stores, on every (engine, scheme) target,
and ``shared_url``: a store that several processes open (SQLite file, PostgreSQL)."""


import pytest

from eventuali.testing.urls import url_factory
from tests.features.conftest import TARGETS, store, store_url  # noqa: F401  (fixtures)

SHARED = [t for t in TARGETS if t.scheme in ("sqlite", "postgresql")]


@pytest.fixture(params=SHARED, ids=str)
def shared_url(request, tmp_path):
    """(url, backend name) of a fresh store that several processes can open at once."""
    target = request.param
    for url in url_factory(target.scheme).provision(tmp_path):
        yield url, target.backend
