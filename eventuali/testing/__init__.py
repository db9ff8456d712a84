"""Reusable tests for eventuali storage engines: the conformance suite and its tooling.

Third-party backends run the whole suite with one command (see docs/backends.md)::

    pytest --pyargs eventuali.testing.suite --eventuali-backend=NAME --eventuali-scheme=SCHEME

or subclass :class:`eventuali.testing.contract.BackendContract` in their own tests.
Modules: ``contract`` (the tests, as base classes, with ``contract_*`` holding
the groups by job: concurrency, persistence, optional capabilities, rules,
bad input), ``fixtures`` (record builders and the store fixtures: every handle
closed before a reopen, a working directory per test), ``marks``
(``requires``), ``urls`` (a fresh store URL per test, per scheme), ``targets``
(which (backend, scheme) pairs are installed), ``plugin`` (pytest options, the
scheme check and the per-test timeout), ``suite`` (the binding the command
above runs), ``differential`` (hypothesis state machine comparing two
backends), ``vectors/`` (golden data as JSON).
Needs pytest (and hypothesis for ``differential``): ``pip install eventuali[test]``.
"""

from __future__ import annotations

try:  # rewrite asserts in the shipped tests too, so failures show values
    import pytest as _pytest

    _pytest.register_assert_rewrite(
        "eventuali.testing.contract",
        "eventuali.testing.contract_concurrency",
        "eventuali.testing.contract_input",
        "eventuali.testing.contract_optional",
        "eventuali.testing.contract_persistence",
        "eventuali.testing.contract_rules",
        "eventuali.testing.differential",
        "eventuali.testing.fixtures",
    )
except ImportError:  # pragma: no cover - the suite needs pytest; importing the package does not
    pass
