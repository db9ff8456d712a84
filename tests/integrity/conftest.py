"""Fixtures for the hash-chain tests: every engine that serves memory:// and sqlite://.

The c engine's cases skip with the reason when it does not load, and fail
instead under ``EVENTUALI_REQUIRE_C=1`` (CI).
"""

from __future__ import annotations

import os
import uuid

import pytest

from eventuali import registry
from eventuali.errors import BackendNotFoundError, BackendUnavailableError
from eventuali.records import ANY, NewRecord, StreamWrite
from eventuali.url import parse_url


def provider(name: str):
    try:
        return registry.load(name)
    except (BackendNotFoundError, BackendUnavailableError) as exc:
        if name == "c" and os.environ.get("EVENTUALI_REQUIRE_C") == "1":
            pytest.fail(f"EVENTUALI_REQUIRE_C=1 but the c backend does not load: {exc}")
        pytest.skip(f"the {name} backend is not available: {exc}")


@pytest.fixture(params=["python", "c"])
def engine(request):
    """The provider class of one engine."""
    return provider(request.param)


@pytest.fixture(params=["memory", "sqlite"])
def chained(request, engine, tmp_path):
    """An open ``?integrity=chain`` backend on each scheme of each engine."""
    url = (
        "memory://?integrity=chain"
        if request.param == "memory"
        else f"sqlite://{tmp_path / 'chained.db'}?integrity=chain"
    )
    backend = engine.open(parse_url(url))
    yield backend
    backend.close()


def write(stream_id: str, n: int = 1, payload: bytes = b'{"n": 1}', expected: int = ANY) -> StreamWrite:
    records = [
        NewRecord(uuid.uuid4().bytes, "Happened", 1, 1_700_000_000_000_000 + i, b"{}", payload)
        for i in range(n)
    ]
    return StreamWrite(stream_id, "Thing", expected, records, "")
