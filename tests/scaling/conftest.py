"""Fixtures for the scale-out tests: the feature tests' stores, on every (engine, scheme) target."""

from tests.features.conftest import TARGETS, store, store_url  # noqa: F401  (fixtures)

__all__ = ["TARGETS"]
