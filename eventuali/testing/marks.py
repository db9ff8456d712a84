"""``requires(capability)``: mark a conformance test as needing a backend capability.

A test so marked is skipped, with the reason, when the open backend does not
list the capability in ``backend.capabilities`` (the SQLAlchemy dialect-suite
model: a backend declares what it can do instead of overriding tests).
"""

from __future__ import annotations

import pytest

from eventuali.protocol import CAPABILITIES


def requires(*capabilities: str) -> pytest.MarkDecorator:
    """``@requires("snapshots")``: skip unless the backend declares every capability given."""
    unknown = sorted(set(capabilities) - CAPABILITIES)
    if unknown:
        raise ValueError(
            f"unknown capability {', '.join(unknown)}; known: {', '.join(sorted(CAPABILITIES))}"
        )
    return pytest.mark.requires(*capabilities)


def missing_capabilities(item: pytest.Item, declared: frozenset[str]) -> list[str]:
    """The capabilities ``item``'s ``requires`` marks ask for that ``declared`` lacks."""
    wanted = [cap for mark in item.iter_markers("requires") for cap in mark.args]
    return sorted(set(wanted) - set(declared))
