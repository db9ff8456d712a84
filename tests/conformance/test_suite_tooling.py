"""The suite's own machinery: real reopens, the capability probe, a directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventuali.errors import StoreClosedError
from eventuali.protocol import Backend
from eventuali.testing.fixtures import BackendFixtures, StoreHandles, write
from eventuali.testing.marks import requires
from eventuali.testing.targets import Target


def _is_closed(backend: Backend) -> bool:
    try:
        backend.head()
    except StoreClosedError:
        return True
    return False


class TestFixtures(BackendFixtures):
    @pytest.fixture
    def eventuali_target(self) -> Target:
        return Target(backend="python", scheme="sqlite")

    @requires("persistent")
    def test_the_capability_probe_leaves_no_handle_open(self, open_store: StoreHandles) -> None:
        assert len(open_store.opened) == 1, "the probe is the only handle opened so far"
        assert _is_closed(open_store.opened[0]), "the probe must be closed before the test runs"

    def test_reopen_closes_every_handle_first(self, open_store: StoreHandles) -> None:
        one, two = open_store(), open_store()
        one.append([write("s", 0, 1)])
        again = open_store.reopen()
        assert _is_closed(one) and _is_closed(two)
        assert again.stream_version("s") == 1 and not _is_closed(again)

    def test_each_test_runs_in_a_directory_of_its_own(self, tmp_path: Path) -> None:
        assert Path.cwd() == tmp_path / "cwd"
