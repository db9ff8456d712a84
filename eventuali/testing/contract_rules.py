"""Conformance tests: the finer rules of ``eventuali.protocol``, each stated in its docstrings.

Rules that the differential state machine (:mod:`eventuali.testing.differential`)
would otherwise be the only one to enforce: which error a multi-write append
raises first, ``load_snapshot(max_version=0)``, snapshots and empty writes on a
deleted stream, event ids freed by delete/truncate, values not checked against
the log, and ``read_all`` order after records were removed.
"""

from __future__ import annotations

import pytest

from eventuali.errors import (
    DuplicateEventError,
    InvalidInputError,
    OptimisticConcurrencyError,
    StreamDeletedError,
)
from eventuali.protocol import Backend
from eventuali.records import ANY, NO_STREAM, STREAM_EXISTS, ReadFilter, Snapshot

from .fixtures import BackendFixtures, StoreHandles, new_record, read_everything, write
from .marks import requires


class RulesContract(BackendFixtures):
    # --- which error a multi-write append raises ---------------------------------

    @requires("delete")
    def test_append_checks_every_version_and_tombstone_before_stored_ids(self, backend: Backend) -> None:
        stored = new_record()
        backend.append([write("a", NO_STREAM, [stored]), write("gone", NO_STREAM, 1)])
        backend.delete_stream("gone")
        dup = lambda: [new_record(event_id=stored.event_id)]  # noqa: E731
        with pytest.raises(StreamDeletedError) as deleted:
            backend.append([write("b", NO_STREAM, dup()), write("gone", ANY, 1)])
            pytest.fail("append must check every write's tombstone before stored event ids")
        assert deleted.value.stream_id == "gone"
        with pytest.raises(OptimisticConcurrencyError) as conflict:
            backend.append([write("b", NO_STREAM, dup()), write("a", 5, 1)])
            pytest.fail("append must check every write's expected version before stored event ids")
        assert (conflict.value.stream_id, conflict.value.expected, conflict.value.actual) == ("a", 5, 1)
        with pytest.raises(DuplicateEventError):
            backend.append([write("b", NO_STREAM, dup()), write("a", 1, 1)])
        assert backend.head() == 2 and backend.read_stream("b") == []

    def test_the_first_stored_duplicate_in_call_order_is_reported(self, backend: Backend) -> None:
        one, two = new_record(), new_record()
        backend.append([write("s", NO_STREAM, [one, two])])
        again = lambda rec: new_record(event_id=rec.event_id)  # noqa: E731
        with pytest.raises(DuplicateEventError) as err:
            backend.append([write("t", NO_STREAM, [new_record(), again(two)]), write("u", ANY, [again(one)])])
        assert err.value.event_id == two.event_id, "DuplicateEventError names the first stored id given"

    def test_append_checks_versions_in_the_order_given(self, backend: Backend) -> None:
        backend.append([write("x", NO_STREAM, 1), write("y", NO_STREAM, 1)])
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("y", 7, 1), write("x", 9, 1)])
        assert err.value.stream_id == "y", "the first write that fails its check is the one reported"

    def test_input_and_in_call_duplicate_checks_come_first(self, backend: Backend) -> None:
        backend.append([write("x", NO_STREAM, 1)])
        twice = new_record()
        with pytest.raises(DuplicateEventError):
            backend.append([write("x", 9, 1), write("y", NO_STREAM, [twice, twice])])
            pytest.fail("an id given twice in one call is refused before any version check")
        with pytest.raises(InvalidInputError):
            backend.append([write("x", 9, 1), write("", NO_STREAM, 1)])
            pytest.fail("invalid input is refused before any version check")
        assert backend.head() == 1

    # --- deleted streams ------------------------------------------------------------

    @requires("delete")
    def test_a_write_without_records_on_a_deleted_stream_is_refused(self, backend: Backend) -> None:
        backend.delete_stream("gone")
        with pytest.raises(StreamDeletedError):
            backend.append([write("gone", ANY, [])])
            pytest.fail("a write with no records still checks the tombstone")

    @requires("delete", "snapshots")
    def test_save_snapshot_on_a_deleted_stream_raises(self, backend: Backend) -> None:
        backend.append([write("gone", NO_STREAM, 2)])
        backend.delete_stream("gone")
        with pytest.raises(StreamDeletedError) as err:
            backend.save_snapshot(Snapshot("gone", 2, 1, 0, b"state"))
            pytest.fail("save_snapshot on a deleted stream must raise StreamDeletedError")
        assert err.value.stream_id == "gone"
        assert backend.load_snapshot("gone") is None and backend.prune_snapshots("gone", 0) == 0

    @requires("delete", "truncate")
    def test_truncating_a_deleted_stream_removes_nothing(self, backend: Backend) -> None:
        backend.append([write("gone", NO_STREAM, 3)])
        backend.delete_stream("gone")
        assert backend.truncate_stream("gone", 10) == 0
        with pytest.raises(StreamDeletedError):
            backend.append([write("gone", ANY, 1)])

    @requires("delete", "truncate")
    def test_ids_of_removed_records_may_be_stored_again(self, backend: Backend) -> None:
        deleted, truncated = new_record(), new_record()
        backend.append([write("gone", NO_STREAM, [deleted]), write("t", NO_STREAM, [truncated])])
        backend.delete_stream("gone")
        backend.truncate_stream("t", 2)
        positions = backend.append([write("new", NO_STREAM, [new_record(event_id=deleted.event_id),
                                                              new_record(event_id=truncated.event_id)])])
        assert positions == [3, 4], "an event id is refused only while a record with it is stored"

    @requires("delete", "truncate")
    def test_head_never_goes_back_after_the_newest_records_are_removed(self, backend: Backend) -> None:
        backend.append([write("kept", NO_STREAM, 1)])
        backend.append([write("deleted", NO_STREAM, 2)])
        backend.append([write("truncated", NO_STREAM, 2)])
        backend.delete_stream("deleted")
        backend.truncate_stream("truncated", 3)
        assert backend.head() == 5, "head() never goes back, even when the newest records are removed"
        assert backend.append([write("kept", 1, 1)]) == [6], "positions are never reused"
        assert backend.wait_for(5, 0) == 6

    @requires("truncate")
    def test_a_fully_truncated_stream_still_exists(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 3)])
        backend.truncate_stream("s", 10)
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("s", NO_STREAM, 1)])
            pytest.fail("a stream whose records were all truncated keeps its version: NO_STREAM must fail")
        assert err.value.actual == 3
        backend.append([write("s", STREAM_EXISTS, 1)])
        assert [r.version for r in backend.read_stream("s")] == [4]

    # --- snapshots and checkpoints ------------------------------------------------

    @requires("snapshots")
    def test_load_snapshot_max_version_zero_is_valid(self, backend: Backend) -> None:
        backend.save_snapshot(Snapshot("s", 1, 1, 0, b"one"))
        assert backend.load_snapshot("s", max_version=0) is None, (
            "load_snapshot(max_version=0) is valid and finds nothing (snapshot versions start at 1)"
        )
        assert backend.load_snapshot("s", max_version=1) == Snapshot("s", 1, 1, 0, b"one")

    @requires("snapshots")
    def test_snapshots_are_ordered_by_version_not_by_when_they_were_saved(self, backend: Backend) -> None:
        for v in (7, 3, 9, 2):
            backend.save_snapshot(Snapshot("s", v, 1, 0, b"v%d" % v))
        assert backend.load_snapshot("s") == Snapshot("s", 9, 1, 0, b"v9"), "the highest version wins"
        assert backend.load_snapshot("s", 8) == Snapshot("s", 7, 1, 0, b"v7")
        assert backend.prune_snapshots("s", keep=2) == 2
        assert [backend.load_snapshot("s", m) for m in (6, 8)] == [None, Snapshot("s", 7, 1, 0, b"v7")], (
            "prune_snapshots keeps the highest versions, not the last saved"
        )

    @requires("snapshots")
    def test_snapshot_version_is_not_checked_against_the_stream(self, backend: Backend) -> None:
        backend.save_snapshot(Snapshot("no-events-yet", 7, 1, 0, b"s"))
        assert backend.load_snapshot("no-events-yet") == Snapshot("no-events-yet", 7, 1, 0, b"s")

    @requires("checkpoints")
    def test_checkpoint_position_is_not_checked_against_the_head(self, backend: Backend) -> None:
        backend.set_checkpoint("ahead", 10**12)
        assert backend.get_checkpoint("ahead") == 10**12

    def test_wait_for_with_no_timeout_returns_the_head_at_once(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 2)])
        assert [backend.wait_for(n, 0) for n in (0, 1, 2, 50)] == [2, 2, 2, 2]

    # --- read_all after records were removed ---------------------------------------

    @requires("delete", "truncate")
    def test_read_all_stays_in_position_order_after_delete_and_truncate(
        self, open_store: StoreHandles
    ) -> None:
        backend = open_store()
        for i in range(6):  # interleaved: every stream's records are spread over the log
            backend.append([write(s, ANY, 1 + (i + n) % 2, "T") for n, s in enumerate(("a", "b", "c", "d"))])
        before = backend.read_all()
        backend.delete_stream("b")
        backend.truncate_stream("c", 5)
        backend.truncate_stream("a", 3)
        backend.append([write("d", ANY, 2), write("a", ANY, 1)])
        kept = [r for r in before if r.stream_id not in ("b",)
                and not (r.stream_id == "c" and r.version < 5)
                and not (r.stream_id == "a" and r.version < 3)]
        self._check_order(backend, kept, "")
        if "persistent" in backend.capabilities:
            self._check_order(open_store.reopen(), kept, " after reopen")

    def _check_order(self, backend: Backend, kept: list, when: str) -> None:
        everything = backend.read_all()
        positions = [r.position for r in everything]
        assert positions == sorted(set(positions)), (
            f"read_all must return records in position order after delete/truncate{when}; "
            f"got positions {positions}"
        )
        assert everything[: len(kept)] == kept, (
            f"read_all after delete/truncate{when} must return exactly the remaining records, "
            "in their original positions"
        )
        assert [r.stream_id for r in everything[len(kept):]] == ["d", "d", "a"]
        for page in (1, 3, 7):
            assert read_everything(backend, page) == everything, (
                f"paging read_all (from = last.position + 1, {page} per page) after "
                f"delete/truncate{when} must return every remaining record once, in order"
            )
        only_a = ReadFilter(stream_id_prefix="a")
        assert read_everything(backend, 2, only_a) == [r for r in everything if r.stream_id == "a"]
