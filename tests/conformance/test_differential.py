"""Differential tests: the reference engines agree with each other on random workloads.

memory:// is the simplest implementation of the protocol, so it serves as the
oracle for the SQLite engine (file and ``:memory:``).  The C engine binds the
same machine (python vs c) in its own tests.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from eventuali.testing.differential import BackendComparison, open_url

FAST = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class MemoryVsSQLiteFile(BackendComparison):
    def open_left(self):
        return open_url("python", "memory://")

    def open_right(self):
        return open_url("python", f"sqlite://{self.tmp_dir}/differential.db")


class MemoryVsSQLiteMemory(BackendComparison):
    def open_left(self):
        return open_url("python", "memory://")

    def open_right(self):
        return open_url("python", "sqlite://:memory:")


TestMemoryVsSQLiteFile = MemoryVsSQLiteFile.TestCase
TestMemoryVsSQLiteFile.settings = FAST
TestMemoryVsSQLiteMemory = MemoryVsSQLiteMemory.TestCase
TestMemoryVsSQLiteMemory.settings = FAST
