"""pytest plugin: options that pick the backend and scheme the conformance suite runs on.

Loaded automatically through the ``pytest11`` entry point ``eventuali`` whenever
eventuali is installed (with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set, add
``-p eventuali.testing.plugin``).  Importing it is cheap: it only declares
options, the ``requires`` marker and the default ``eventuali_target`` fixture.

    --eventuali-backend=NAME   registry name (default: $EVENTUALI_BACKEND, else ``python``)
    --eventuali-scheme=NAME    URL factory: memory, sqlite, sqlite-memory, … or any
                               scheme your backend serves (default: ``memory``)
    --eventuali-url=TEMPLATE   a store URL instead of a factory; ``{tmp_path}`` and
                               ``{unique}`` are replaced per test
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eventuali", "eventuali conformance suite")
    group.addoption(
        "--eventuali-backend",
        default=None,
        help="backend (registry name) the conformance suite runs against; "
        "default $EVENTUALI_BACKEND or 'python'",
    )
    group.addoption(
        "--eventuali-scheme",
        default="memory",
        help="store kind: a URL factory name (memory, sqlite, sqlite-memory, …) or a URL "
        "scheme the backend serves; default 'memory'",
    )
    group.addoption(
        "--eventuali-url",
        default=None,
        help="store URL template used instead of the scheme's factory; {tmp_path} and {unique} "
        "are filled in per test",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): needs backend capabilities; skipped with the reason otherwise",
    )


@pytest.fixture
def eventuali_target(request: pytest.FixtureRequest):
    """The (backend, scheme) the suite runs on, from the command-line options."""
    from .targets import Target

    config = request.config
    backend = config.getoption("--eventuali-backend")
    if not backend:
        env = os.environ.get("EVENTUALI_BACKEND", "").strip()
        backend = env if env and env != "auto" else "python"
    return Target(
        backend=backend,
        scheme=config.getoption("--eventuali-scheme"),
        url=config.getoption("--eventuali-url"),
    )
