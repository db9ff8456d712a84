"""Differential tests: the reference engine (python) and the native engine (c) agree.

The shared hypothesis machine (eventuali.testing.differential) sends the same
random commands - appends with right and wrong expected versions, reused event
ids, reads, filters, snapshots, checkpoints, deletions, truncations, bad
arguments - to both engines and requires equal results and equal exceptions.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from eventuali import registry
from eventuali.errors import BackendNotFoundError, BackendUnavailableError
from eventuali.testing.differential import BackendComparison, open_url

try:
    registry.load("c")
except (BackendNotFoundError, BackendUnavailableError) as exc:
    if os.environ.get("EVENTUALI_REQUIRE_C") == "1":
        raise RuntimeError(f"EVENTUALI_REQUIRE_C=1 but the c backend does not load: {exc}") from exc
    pytest.skip(f"the c backend is not available: {exc}", allow_module_level=True)

SETTINGS = settings(
    max_examples=int(os.environ.get("EVENTUALI_DIFFERENTIAL_EXAMPLES", "30")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class PythonVsCMemory(BackendComparison):
    def open_left(self):
        return open_url("python", "memory://")

    def open_right(self):
        return open_url("c", "memory://")


class PythonVsCSQLiteFile(BackendComparison):
    def open_left(self):
        return open_url("python", f"sqlite://{self.tmp_dir}/python.db")

    def open_right(self):
        return open_url("c", f"sqlite://{self.tmp_dir}/c.db")


class PythonVsCSQLiteMemory(BackendComparison):
    def open_left(self):
        return open_url("python", "sqlite://:memory:")

    def open_right(self):
        return open_url("c", "sqlite://:memory:")


TestPythonVsCMemory = PythonVsCMemory.TestCase
TestPythonVsCMemory.settings = SETTINGS
TestPythonVsCSQLiteFile = PythonVsCSQLiteFile.TestCase
TestPythonVsCSQLiteFile.settings = SETTINGS
TestPythonVsCSQLiteMemory = PythonVsCSQLiteMemory.TestCase
TestPythonVsCSQLiteMemory.settings = SETTINGS
