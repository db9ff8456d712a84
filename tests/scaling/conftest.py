"""Fixtures for the scale-out tests: the feature tests' stores, on every (engine, scheme) target,
and ``shared_url``: a store that several processes open (SQLite file, PostgreSQL)."""

import os

import pytest

from eventuali.testing.urls import SchemeUnavailable, url_factory
from tests.features.conftest import TARGETS, store, store_url  # noqa: F401  (fixtures)

SHARED = [t for t in TARGETS if t.scheme in ("sqlite", "postgresql")]


@pytest.fixture(params=SHARED, ids=str)
def shared_url(request, tmp_path):
    """(url, backend name) of a fresh store that several processes can open at once."""
    target = request.param
    factory = url_factory(target.scheme)
    try:
        with factory.url(tmp_path) as url:
            yield url, target.backend
    except SchemeUnavailable as exc:
        if factory.required_by and os.environ.get(factory.required_by) == "1":
            pytest.fail(f"{factory.required_by}=1 but {target} is unavailable: {exc}")
        pytest.skip(f"{target} unavailable here: {exc}")
