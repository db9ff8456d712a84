"""Fixtures of the pytest-benchmark benches (bench/test_*.py): engines, storages, stores.

``pytest bench --benchmark-autosave`` saves a run under .benchmarks/;
``pytest bench --benchmark-compare`` (optionally ``=NNNN``) prints the change
against the last saved run, so a regression between two commits shows up as a
ratio.  Every benchmark puts ``workload``, ``storage``, ``contender``, ``kind``
and ``events`` into ``extra_info``, so ``--benchmark-json`` output also feeds
``bench/report.py``.  The ``c`` engine is benched when it loads; otherwise
its benches are skipped with the reason the registry gives.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_e2e's domain, as the scripts use it

from eventuali import registry  # noqa: E402
from eventuali.errors import BackendUnavailableError  # noqa: E402

ENGINES = ("python", "c")
STORAGES = ("memory", "sqlite")


def _loads(engine: str) -> str | None:
    """None when the engine loads, else why not."""
    try:
        registry.load(engine)
    except (BackendUnavailableError, LookupError) as exc:
        return str(exc)
    return None


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    why = _loads(request.param)
    if why is not None:
        pytest.skip(f"engine {request.param!r} does not load: {why}")
    return request.param


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def url(storage: str, tmp_path: Path) -> str:
    return "memory://" if storage == "memory" else f"sqlite://{tmp_path}/bench.db"


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def tag(benchmark: Any, *, workload: str, storage: str, contender: str, kind: str,
        events: int) -> None:
    """The grouping bench/report.py reads (and a reader of --benchmark-json)."""
    benchmark.extra_info.update(workload=workload, storage=storage, contender=contender,
                                kind=kind, events=events)
    benchmark.group = f"{workload} [{storage}]"
