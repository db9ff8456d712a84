"""The conformance suite against every (backend, scheme) pair installed here.

Pairs come from :func:`eventuali.testing.targets.installed_targets`, i.e. from the
``eventuali.backends`` entry points: the C engine and PostgreSQL join the run as
soon as they are installed, with no change here.  A backend that is registered
but cannot load is reported by ``test_required_backends_are_present`` when the
environment demands it (``EVENTUALI_REQUIRE_C=1``, ``EVENTUALI_REQUIRE_POSTGRES=1``).
"""

from __future__ import annotations

import os

import pytest

from eventuali.testing.contract import BackendContract
from eventuali.testing.targets import Target, installed_targets

TARGETS, BROKEN = installed_targets()


@pytest.fixture(params=TARGETS, ids=str)
def eventuali_target(request: pytest.FixtureRequest) -> Target:
    return request.param


class TestConformance(BackendContract):
    """Every conformance test, for every installed (backend, scheme)."""


def test_reference_backend_serves_memory_and_sqlite() -> None:
    assert {str(t) for t in TARGETS} >= {"python-memory", "python-sqlite", "python-sqlite-memory"}


@pytest.mark.parametrize(
    "env, backend, scheme",
    [("EVENTUALI_REQUIRE_C", "c", "sqlite"), ("EVENTUALI_REQUIRE_POSTGRES", None, "postgresql")],
)
def test_required_backends_are_present(env: str, backend: str | None, scheme: str) -> None:
    """With the env var set, a missing or unloadable engine fails the run instead of vanishing."""
    if os.environ.get(env) != "1":
        pytest.skip(f"{env} is not 1: the {backend or scheme} targets run only when installed")
    if backend is not None and backend in BROKEN:
        pytest.fail(f"{env}=1 but backend {backend!r} does not load: {BROKEN[backend]}")
    served = [t for t in TARGETS if (backend is None or t.backend == backend) and t.scheme == scheme]
    assert served, (
        f"{env}=1 but no installed backend{f' named {backend!r}' if backend else ''} serves "
        f"{scheme!r} with a URL factory; installed targets: {', '.join(map(str, TARGETS))}; "
        f"unloadable: {BROKEN or 'none'}"
    )
