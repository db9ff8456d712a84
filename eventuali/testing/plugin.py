"""pytest plugin: options that pick the backend and scheme the conformance suite runs on.

Loaded automatically through the ``pytest11`` entry point ``eventuali`` whenever
eventuali is installed (with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set, add
``-p eventuali.testing.plugin``).  Importing it is cheap: it only declares
options, the ``requires`` marker, the default ``eventuali_target`` fixture and
the per-test timeout of the conformance tests.

    --eventuali-backend=NAME   registry name (default: $EVENTUALI_BACKEND, else ``python``)
    --eventuali-scheme=NAME    URL factory: memory, sqlite, sqlite-memory, … or any
                               scheme your backend serves.  Required, except for the
                               reference backend ``python`` (default ``memory``)
    --eventuali-url=TEMPLATE   a store URL instead of a factory; ``{tmp_path}`` and
                               ``{unique}`` are replaced per test
    --eventuali-timeout=SECS   per-test timeout of the conformance tests (default 60;
                               0 turns it off)

Before the first test, the plugin checks that the backend loads and serves the
scheme (or the template's scheme) and stops the run with a usage error if not,
so a typo cannot quietly test another store.  Every conformance test runs in a
directory of its own (see :mod:`eventuali.testing.fixtures`).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

DEFAULT_TIMEOUT = 60.0
"""Seconds a conformance test may take before it fails (a hung engine must not hang the run)."""
REFERENCE_BACKEND = "python"
"""The one backend for which ``--eventuali-scheme`` may be left out (it means ``memory``)."""


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
        default=None,
        help="store kind: a URL factory name (memory, sqlite, sqlite-memory, …) or a URL "
        "scheme the backend serves; required except for the 'python' backend (default memory)",
    )
    group.addoption(
        "--eventuali-url",
        default=None,
        help="store URL template used instead of the scheme's factory; {tmp_path} and {unique} "
        "are filled in per test",
    )
    group.addoption(
        "--eventuali-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"per-test timeout of the conformance tests in seconds (default {DEFAULT_TIMEOUT:g}; "
        "0 turns it off)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): needs backend capabilities; skipped with the reason otherwise",
    )


def _is_conformance_test(item: pytest.Item) -> bool:
    from .fixtures import BackendFixtures

    cls = getattr(item, "cls", None)
    return cls is not None and issubclass(cls, BackendFixtures)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every conformance test the timeout, through pytest-timeout when it is installed."""
    seconds = config.getoption("--eventuali-timeout")
    if not seconds or not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if _is_conformance_test(item) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(seconds))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Without pytest-timeout, enforce the timeout with SIGALRM (POSIX, main thread)."""
    seconds = item.config.getoption("--eventuali-timeout")
    usable = (
        seconds
        and not item.config.pluginmanager.hasplugin("timeout")
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and _is_conformance_test(item)
    )
    if not usable:
        return (yield)

    def expire(signum: int, frame: object) -> None:
        pytest.fail(f"conformance test timed out after {seconds:g} s (--eventuali-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def target_from_options(config: pytest.Config):
    """The (backend, scheme) named on the command line, checked: the backend must load
    and serve the scheme.  Raises ``pytest.UsageError`` with the fix otherwise."""
    from eventuali.errors import BackendUnavailableError, ConfigurationError
    from eventuali.registry import load as load_backend
    from eventuali.url import parse_url

    from .targets import Target
    from .urls import url_factory

    backend = config.getoption("--eventuali-backend")
    if not backend:
        env = os.environ.get("EVENTUALI_BACKEND", "").strip()
        backend = env if env and env != "auto" else REFERENCE_BACKEND
    try:
        provider = load_backend(backend)
    except (BackendUnavailableError, ConfigurationError) as exc:
        raise pytest.UsageError(f"--eventuali-backend={backend}: {exc}") from None
    served = ", ".join(sorted(provider.schemes)) or "none"
    template = config.getoption("--eventuali-url")
    scheme = config.getoption("--eventuali-scheme")
    if template is not None:
        try:
            url_scheme = parse_url(template.format(tmp_path="/tmp/x", unique="u")).scheme
        except (ConfigurationError, KeyError, IndexError, ValueError) as exc:
            raise pytest.UsageError(f"--eventuali-url={template!r} is not a store URL template: {exc}") from None
        if url_scheme not in provider.schemes:
            raise pytest.UsageError(
                f"--eventuali-url={template!r} uses scheme {url_scheme!r}, which backend "
                f"{backend!r} does not serve (it serves: {served})"
            )
        scheme = scheme or url_scheme
    elif scheme is None:
        if backend != REFERENCE_BACKEND:
            raise pytest.UsageError(
                f"--eventuali-scheme is required for backend {backend!r}: pass one of the schemes "
                f"it serves ({served}), e.g. --eventuali-scheme={min(provider.schemes, default='NAME')}"
            )
        scheme = "memory"
    else:
        factory_scheme = url_factory(scheme).scheme
        if factory_scheme not in provider.schemes:
            raise pytest.UsageError(
                f"--eventuali-scheme={scheme}: backend {backend!r} does not serve the "
                f"{factory_scheme!r} scheme (it serves: {served}); nothing was run"
            )
    return Target(backend=backend, scheme=scheme, url=template)


@pytest.fixture(scope="session")
def _eventuali_checked_target(request: pytest.FixtureRequest):
    try:
        return target_from_options(request.config)
    except pytest.UsageError as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture
def eventuali_target(_eventuali_checked_target):
    """The (backend, scheme) the suite runs on, from the command-line options."""
    return _eventuali_checked_target
