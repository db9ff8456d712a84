"""Fixtures for the native engine's own tests (the shared suite is tests/conformance).

Without the ``c`` backend these tests skip with the reason; with
``EVENTUALI_REQUIRE_C=1`` (CI) a ``c`` backend that is missing or does not load
fails the run instead.
"""

from __future__ import annotations

import os

import pytest

from eventuali import registry
from eventuali.errors import BackendNotFoundError, BackendUnavailableError


def _load_c():
    try:
        return registry.load("c"), None
    except (BackendNotFoundError, BackendUnavailableError) as exc:
        return None, str(exc)


C_PROVIDER, C_ERROR = _load_c()


@pytest.fixture(scope="session")
def c_provider():
    if C_PROVIDER is None:
        if os.environ.get("EVENTUALI_REQUIRE_C") == "1":
            pytest.fail(f"EVENTUALI_REQUIRE_C=1 but the c backend does not load: {C_ERROR}")
        pytest.skip(f"the c backend is not available: {C_ERROR}")
    return C_PROVIDER


@pytest.fixture(scope="session")
def native(c_provider):
    """The loaded library module (ffi, lib)."""
    from eventuali_c import _native

    return _native


@pytest.fixture(params=["memory", "sqlite"])
def c_store(request, c_provider, tmp_path):
    from eventuali.url import parse_url

    url = "memory://" if request.param == "memory" else f"sqlite://{tmp_path / 'events.db'}"
    store = c_provider.open(parse_url(url))
    yield store
    store.close()
