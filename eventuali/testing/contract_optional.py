"""Conformance tests of the optional capabilities: snapshots, checkpoints, wait_for, delete, truncate.

Each test is marked ``@requires(capability)`` and skipped, with the reason, for
an engine that does not declare it (``wait_for`` timing out is required of all).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest

from eventuali.errors import DuplicateEventError, OptimisticConcurrencyError, StreamDeletedError
from eventuali.protocol import Backend
from eventuali.records import ANY, NO_STREAM, STREAM_EXISTS, Snapshot

from .fixtures import BackendFixtures, StoreHandles, append_later, new_record, write
from .marks import requires
from .targets import Target


class SnapshotContract(BackendFixtures):
    @requires("snapshots")
    def test_save_load_and_prune(self, backend: Backend) -> None:
        assert backend.load_snapshot("s") is None
        for v in (3, 10, 7):
            backend.save_snapshot(Snapshot("s", v, 1, 1000 + v, b"state-%d" % v))
        backend.save_snapshot(Snapshot("other", 1, 1, 0, b""))
        assert backend.load_snapshot("s") == Snapshot("s", 10, 1, 1010, b"state-10")
        assert backend.load_snapshot("s", max_version=9) == Snapshot("s", 7, 1, 1007, b"state-7")
        assert backend.load_snapshot("s", max_version=2) is None
        backend.save_snapshot(Snapshot("s", 10, 2, 5, b"replaced"))
        assert backend.load_snapshot("s") == Snapshot("s", 10, 2, 5, b"replaced")
        assert backend.prune_snapshots("s", keep=2) == 1
        assert backend.load_snapshot("s", max_version=6) is None
        assert backend.load_snapshot("s", max_version=7) is not None
        assert backend.prune_snapshots("s", keep=0) == 2
        assert backend.load_snapshot("s") is None
        assert backend.prune_snapshots("nobody", keep=1) == 0
        assert backend.load_snapshot("other") == Snapshot("other", 1, 1, 0, b"")

    @requires("snapshots")
    def test_large_snapshot(self, backend: Backend) -> None:
        state = os.urandom(1024 * 1024)
        backend.save_snapshot(Snapshot("big", 1, 1, 0, state))
        loaded = backend.load_snapshot("big")
        assert loaded is not None and loaded.payload == state


class CheckpointContract(BackendFixtures):
    @requires("checkpoints")
    def test_get_and_set(self, backend: Backend) -> None:
        assert backend.get_checkpoint("proj") is None
        backend.set_checkpoint("proj", 5)
        backend.set_checkpoint("other", 0)
        backend.set_checkpoint("proj", 3)  # overwrite, even backwards
        assert backend.get_checkpoint("proj") == 3
        assert backend.get_checkpoint("other") == 0

    @requires("checkpoints")
    def test_checkpoint_in_the_append_transaction(self, backend: Backend) -> None:
        positions = backend.append([write("s", NO_STREAM, 2)], checkpoint=("proj", 17))
        assert backend.get_checkpoint("proj") == 17 and len(positions) == 2
        with pytest.raises(OptimisticConcurrencyError):
            backend.append([write("s", NO_STREAM, 1)], checkpoint=("proj", 99))
        assert backend.get_checkpoint("proj") == 17
        with pytest.raises(DuplicateEventError):
            rec = backend.read_stream("s")[0]
            backend.append([write("t", NO_STREAM, [new_record(event_id=rec.event_id)])],
                           checkpoint=("proj", 98))
        assert backend.get_checkpoint("proj") == 17
        assert backend.append([], checkpoint=("proj", 20)) == []
        assert backend.get_checkpoint("proj") == 20

    @requires("checkpoints")
    def test_an_empty_write_fences_the_checkpoint(self, backend: Backend) -> None:
        # What leases rely on (eventuali.scaling): a write without records on the lease
        # stream, at the holder's version, guards the checkpoint stored with it.
        backend.append([write("$lease", NO_STREAM, 2)])
        backend.append([write("s", NO_STREAM, 1), write("$lease", 2, [])], checkpoint=("p", 5))
        assert backend.get_checkpoint("p") == 5
        backend.append([write("$lease", 2, 1)])  # another holder took the lease
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("s", 1, 1), write("$lease", 2, [])], checkpoint=("p", 9))
        assert err.value.stream_id == "$lease"
        assert backend.get_checkpoint("p") == 5 and backend.stream_version("s") == 1


class WaitForContract(BackendFixtures):
    def test_returns_at_once_when_already_past(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 2)])
        started = time.monotonic()
        assert backend.wait_for(0, 10) == 2
        assert time.monotonic() - started < 2

    def test_times_out_with_the_head(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 1)])
        started = time.monotonic()
        assert backend.wait_for(1, 0.2) == 1
        assert 0.15 <= time.monotonic() - started < 5
        assert backend.wait_for(5, 0) == 1

    @requires("wait_for")
    def test_wakes_on_commit(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 1)])
        timer = threading.Timer(0.3, lambda: backend.append([write("s", 1, 2)]))
        started = time.monotonic()
        timer.start()
        try:
            head = backend.wait_for(1, 30)
        finally:
            timer.join()
        assert head >= 2
        assert time.monotonic() - started < 10  # woken, not timed out

    @requires("wait_for", "persistent")
    def test_wakes_on_commit_through_another_open_store(self, open_store: StoreHandles) -> None:
        waiter, writer = open_store(), open_store()
        writer.append([write("s", NO_STREAM, 1)])
        timer = threading.Timer(0.3, lambda: writer.append([write("s", 1, 1)]))
        started = time.monotonic()
        timer.start()
        try:
            assert waiter.wait_for(1, 30) >= 2
        finally:
            timer.join()
        assert time.monotonic() - started < 10


    @requires("wait_for", "multi_process")
    def test_wakes_on_commit_from_another_process(
        self, backend: Backend, eventuali_target: Target, store_url: str
    ) -> None:
        backend.append([write("s", NO_STREAM, 1)])
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=append_later, args=(eventuali_target.backend, store_url, 0.5))
        child.start()
        try:
            started = time.monotonic()
            head = backend.wait_for(1, 60)
            waited = time.monotonic() - started
        finally:
            child.join(60)
        assert child.exitcode == 0
        assert head == 2
        assert waited < 30  # woken (or polled), not timed out


class RetentionContract(BackendFixtures):
    @requires("delete")
    def test_delete_stream(self, backend: Backend) -> None:
        backend.append([write("doomed", NO_STREAM, 3), write("kept", NO_STREAM, 1)])
        caps = backend.capabilities
        if "snapshots" in caps:
            backend.save_snapshot(Snapshot("doomed", 3, 1, 0, b"s"))
        assert backend.delete_stream("doomed") == 3
        assert backend.read_stream("doomed") == []
        assert backend.stream_version("doomed") == 0
        assert [r.stream_id for r in backend.read_all()] == ["kept"]
        if "snapshots" in caps:
            assert backend.load_snapshot("doomed") is None
        for expected in (ANY, NO_STREAM, STREAM_EXISTS, 0, 3):
            with pytest.raises(StreamDeletedError) as err:
                backend.append([write("doomed", expected, 1)])
            assert err.value.stream_id == "doomed"
        with pytest.raises(StreamDeletedError):  # and the whole call is refused
            backend.append([write("fresh", NO_STREAM, 1), write("doomed", ANY, 1)])
        assert backend.read_stream("fresh") == []
        assert backend.delete_stream("doomed") == 0
        assert backend.head() == 4  # positions are never reused
        assert backend.append([write("kept", 1, 1)]) == [5]

    @requires("delete")
    def test_deleting_an_unknown_stream_tombstones_it(self, backend: Backend) -> None:
        assert backend.delete_stream("never") == 0
        with pytest.raises(StreamDeletedError):
            backend.append([write("never", NO_STREAM, 1)])

    @requires("truncate")
    def test_truncate_stream(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 5), write("t", NO_STREAM, 2)])
        assert backend.truncate_stream("s", 3) == 2
        assert [r.version for r in backend.read_stream("s")] == [3, 4, 5]
        assert [r.version for r in backend.read_stream("s", 2, 3)] == [3]
        assert backend.stream_version("s") == 5
        backend.append([write("s", 5, 1)])
        assert [r.version for r in backend.read_stream("s")] == [3, 4, 5, 6]
        assert backend.truncate_stream("s", 3) == 0
        assert backend.truncate_stream("s", 100) == 4
        assert backend.read_stream("s") == [] and backend.stream_version("s") == 6
        backend.append([write("s", 6, 1)])
        assert [r.version for r in backend.read_stream("s")] == [7]
        assert backend.truncate_stream("unknown", 5) == 0
        assert [r.stream_id for r in backend.read_all()] == ["t", "t", "s"]
