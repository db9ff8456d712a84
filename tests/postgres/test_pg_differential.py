"""Differential test: random workloads give identical results on memory:// and PostgreSQL.

memory:// is the oracle (see eventuali.testing.differential).  Each hypothesis
example gets a fresh PostgreSQL schema, dropped when the example ends.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from eventuali.testing.differential import BackendComparison, open_url

from .conftest import drop_schema, fresh_schema_url

pytestmark = pytest.mark.postgres


class MemoryVsPostgres(BackendComparison):
    def open_left(self):
        return open_url("python", "memory://")

    def open_right(self):
        url, self.schema = fresh_schema_url(pool_size="1", max_overflow="1")
        return open_url("python", url)

    def teardown(self) -> None:
        super().teardown()
        drop_schema(self.schema)


TestMemoryVsPostgres = MemoryVsPostgres.TestCase
TestMemoryVsPostgres.settings = settings(
    max_examples=15,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
