"""Conformance tests: what a ``persistent`` engine stores survives close and reopen.

Every reopen here is real: :meth:`StoreHandles.reopen` closes every handle the
test opened before it opens the store again, and one test reopens the store in
a fresh process.  An engine may share state between handles open at the same
time in one process, but what it holds only in memory must not outlive the
last ``close()``: deletions, truncations, metadata, the event-id index,
checkpoints, snapshots and the position counter are checked across a reopen.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from typing import Any

import pytest

from eventuali.errors import (
    DuplicateEventError,
    EventualiError,
    OptimisticConcurrencyError,
    StreamDeletedError,
)
from eventuali.protocol import Backend
from eventuali.records import ANY, NO_STREAM, NewRecord, Record, Snapshot
from eventuali.registry import load as load_backend
from eventuali.url import parse_url

from .fixtures import (
    BackendFixtures,
    StoreHandles,
    new_id,
    new_record,
    record_from_json,
    vector,
    write,
)
from .marks import requires
from .targets import Target

STREAMS = ("a", "b", "c", "d")
CHECKPOINTS = ("proj", "back")


def write_history(backend: Backend) -> list[bytes]:
    """A small history touching everything that must be stored; returns the ids of the
    records that are still stored at the end."""
    caps = backend.capabilities
    recs = [
        NewRecord(new_id(), "Placed", 3, 1_700_000_000_123_456, b'{"user":"u","trace":"t-1"}', b'{"a":1}'),
        NewRecord(new_id(), "Empty", 0, -5, b"", b""),
        NewRecord(new_id(), "Binary", 2, 2**62, b"\x00\xffmeta", bytes(range(256))),
    ]
    backend.append([write("a", NO_STREAM, recs[:2], "Order", "tenant-a"), write("b", NO_STREAM, 2, "User")])
    backend.append([write("c", NO_STREAM, 2, "Cart", "tenant-c"), write("a", 2, recs[2:], "Order", "tenant-a")])
    backend.append([write("b", 2, 1, "User"), write("c", 2, 3, "Cart", "tenant-c"), write("d", ANY, 1)])
    if "snapshots" in caps:
        backend.save_snapshot(Snapshot("a", 1, 1, 10, b"one"))
        backend.save_snapshot(Snapshot("a", 3, 1, 30, b"three"))
        backend.save_snapshot(Snapshot("a", 3, 2, 31, b"three, replaced"))
        backend.save_snapshot(Snapshot("c", 4, 1, 40, b"four"))
        backend.save_snapshot(Snapshot("b", 3, 1, 30, b"gone with b"))
        assert backend.prune_snapshots("a", keep=1) == 1
    if "checkpoints" in caps:
        backend.set_checkpoint("proj", 7)
        backend.set_checkpoint("back", 9)
        backend.set_checkpoint("back", 2)  # overwritten backwards
    if "delete" in caps:
        backend.delete_stream("b")
    if "truncate" in caps:
        backend.truncate_stream("c", 3)
    return [r.event_id for r in backend.read_all()]


def store_state(backend: Backend) -> dict[str, Any]:
    """Everything a reader can see of the history above, as plain (picklable) values."""
    caps = backend.capabilities
    return {
        "read_all": [tuple(r) for r in backend.read_all()],
        "head": backend.head(),
        "stream versions": {s: backend.stream_version(s) for s in STREAMS},
        "read_stream": {s: [tuple(r) for r in backend.read_stream(s)] for s in STREAMS},
        "checkpoints": {c: backend.get_checkpoint(c) for c in CHECKPOINTS} if "checkpoints" in caps else {},
        "snapshots": {s: backend.load_snapshot(s) for s in STREAMS} if "snapshots" in caps else {},
        "oldest snapshot of a": backend.load_snapshot("a", 1) if "snapshots" in caps else None,
    }


def assert_same_state(before: dict[str, Any], after: dict[str, Any], how: str) -> None:
    for part in before:
        assert after[part] == before[part], (
            f"data must survive close and reopen: {part} differs {how}\n"
            f" before: {before[part]!r}\n after:  {after[part]!r}"
        )


def _state_in_a_fresh_process(backend_name: str, url: str, stored_id: bytes) -> tuple:
    """Child process body: open the store, describe it, then try to store ``stored_id`` again."""
    backend = load_backend(backend_name).open(parse_url(url))
    try:
        state = store_state(backend)
        try:
            backend.append([write("probe", ANY, [new_record(event_id=stored_id)])])
            outcome = "accepted"
        except EventualiError as exc:
            outcome = type(exc).__name__
        return state, outcome
    finally:
        backend.close()


class PersistenceContract(BackendFixtures):
    @requires("persistent")
    def test_reopening_sees_everything_acknowledged(self, open_store: StoreHandles) -> None:
        first = open_store()
        caps = first.capabilities
        cp = ("projector", 4) if "checkpoints" in caps else None
        first.append([write("a", NO_STREAM, 3), write("b", NO_STREAM, 1)])
        first.append([write("a", 3, 2)], checkpoint=cp)
        before = first.read_all()
        if "snapshots" in caps:
            first.save_snapshot(Snapshot("a", 5, 1, 123, b"state"))
        second = open_store.reopen()
        assert second.read_all() == before, "appended records must survive close and reopen"
        assert second.head() == before[-1].position
        assert second.stream_version("a") == 5
        if cp is not None:
            assert second.get_checkpoint("projector") == 4, (
                "a checkpoint set by append(…, checkpoint=…) must survive close and reopen")
        if "snapshots" in caps:
            assert second.load_snapshot("a") == Snapshot("a", 5, 1, 123, b"state")
        positions = second.append([write("a", 5, 1)])
        assert positions[0] > before[-1].position

    @requires("persistent")
    def test_two_open_stores_see_each_others_writes(self, open_store: StoreHandles) -> None:
        one, two = open_store(), open_store()
        one.append([write("s", NO_STREAM, 1)])
        assert two.stream_version("s") == 1
        with pytest.raises(OptimisticConcurrencyError):
            two.append([write("s", NO_STREAM, 1)])
        two.append([write("s", 1, 1)])
        assert [r.version for r in one.read_stream("s")] == [1, 2]

    @requires("persistent")
    def test_every_field_of_every_record_survives_reopen(self, open_store: StoreHandles) -> None:
        backend = open_store()
        write_history(backend)
        before = store_state(backend)
        after = store_state(open_store.reopen())
        for field in ("metadata", "payload", "event_type", "schema_version", "timestamp", "tenant",
                      "stream_type", "event_id", "version", "position"):
            index = Record._fields.index(field)
            assert [r[index] for r in after["read_all"]] == [r[index] for r in before["read_all"]], (
                f"every field must be stored: after reopen the records' {field} differ "
                "(kept in memory but not written?)"
            )
        assert_same_state(before, after, "after a reopen in this process")

    @requires("persistent", "delete")
    def test_delete_survives_reopen(self, open_store: StoreHandles) -> None:
        backend = open_store()
        backend.append([write("doomed", NO_STREAM, 3), write("kept", NO_STREAM, 1)])
        if "snapshots" in backend.capabilities:
            backend.save_snapshot(Snapshot("doomed", 3, 1, 0, b"s"))
        assert backend.delete_stream("doomed") == 3
        assert backend.delete_stream("never-written") == 0
        again = open_store.reopen()
        assert again.read_stream("doomed") == [] and again.stream_version("doomed") == 0, (
            "delete_stream must be persisted: the deleted stream's records came back after reopen"
        )
        assert [r.stream_id for r in again.read_all()] == ["kept"], (
            "delete_stream must be persisted: read_all shows deleted records after reopen"
        )
        for stream_id in ("doomed", "never-written"):
            with pytest.raises(StreamDeletedError):
                again.append([write(stream_id, ANY, 1)])
                pytest.fail(f"a tombstone must be persisted: {stream_id!r} accepted an append after reopen")
        if "snapshots" in again.capabilities:
            assert again.load_snapshot("doomed") is None, (
                "delete_stream must remove the stream's snapshots for good: one is back after reopen"
            )

    @requires("persistent", "truncate")
    def test_truncate_survives_reopen(self, open_store: StoreHandles) -> None:
        backend = open_store()
        backend.append([write("s", NO_STREAM, 5), write("t", NO_STREAM, 2)])
        assert backend.truncate_stream("s", 4) == 3
        assert backend.truncate_stream("t", 10) == 2
        again = open_store.reopen()
        assert [r.version for r in again.read_stream("s")] == [4, 5], (
            "truncate_stream must be persisted: truncated records came back after reopen"
        )
        assert again.read_stream("t") == [] and [r.stream_id for r in again.read_all()] == ["s", "s"], (
            "truncate_stream must be persisted: read_all shows truncated records after reopen"
        )
        assert (again.stream_version("s"), again.stream_version("t")) == (5, 2), (
            "truncation keeps the stream's version, also across a reopen"
        )
        again.append([write("t", 2, 1)])
        assert [r.version for r in again.read_stream("t")] == [3]

    @requires("persistent")
    def test_stored_event_ids_are_refused_after_reopen(self, open_store: StoreHandles) -> None:
        backend = open_store()
        rec = new_record()
        backend.append([write("s", NO_STREAM, [rec, new_record()])])
        again = open_store.reopen()
        with pytest.raises(DuplicateEventError) as err:
            again.append([write("other", NO_STREAM, [new_record(), new_record(event_id=rec.event_id)])])
            pytest.fail("the event-id index must survive reopen: a stored event id was accepted again")
        assert err.value.event_id == rec.event_id
        assert again.read_stream("other") == [] and again.head() == 2

    @requires("persistent", "checkpoints")
    def test_checkpoints_survive_reopen(self, open_store: StoreHandles) -> None:
        backend = open_store()
        backend.set_checkpoint("proj", 7)
        backend.set_checkpoint("back", 9)
        backend.set_checkpoint("back", 2)
        backend.set_checkpoint("zero", 0)
        again = open_store.reopen()
        got = {n: again.get_checkpoint(n) for n in ("proj", "back", "zero", "unset")}
        assert got == {"proj": 7, "back": 2, "zero": 0, "unset": None}, (
            f"set_checkpoint must be persisted: after reopen the checkpoints read {got}"
        )

    @requires("persistent", "snapshots")
    def test_snapshots_survive_reopen(self, open_store: StoreHandles) -> None:
        backend = open_store()
        for v in (2, 5, 9):
            backend.save_snapshot(Snapshot("s", v, 1, v, b"v%d" % v))
        backend.save_snapshot(Snapshot("s", 5, 2, 55, b"replaced"))
        assert backend.prune_snapshots("s", keep=2) == 1
        again = open_store.reopen()
        got = [again.load_snapshot("s", m) for m in (None, 8, 4)]
        assert got == [Snapshot("s", 9, 1, 9, b"v9"), Snapshot("s", 5, 2, 55, b"replaced"), None], (
            "save_snapshot (replace) and prune_snapshots must be persisted: after reopen "
            f"load_snapshot gives {got}"
        )

    @requires("persistent", "delete")
    def test_positions_are_never_reused_after_reopen(self, open_store: StoreHandles) -> None:
        backend = open_store()
        backend.append([write("kept", NO_STREAM, 2)])
        backend.append([write("newest", NO_STREAM, 3)])
        backend.delete_stream("newest")
        again = open_store.reopen()
        assert again.head() == 5, "head must not go back after the newest records are deleted and the store reopened"
        assert again.append([write("kept", 2, 1)]) == [6], (
            "positions are never reused, also after the newest records were deleted and the store reopened"
        )

    @requires("persistent")
    def test_a_fresh_process_sees_what_was_acknowledged(
        self, open_store: StoreHandles, eventuali_target: Target, store_url: str
    ) -> None:
        """The strongest reopen: another process, with no state of this one, opens the store."""
        if not self.opened_through_the_registry():
            pytest.skip("make_backend is overridden: a child process can only open through the registry")
        backend = open_store()
        kept = write_history(backend)
        before = store_state(backend)
        open_store.close_all()
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            state, outcome = pool.submit(
                _state_in_a_fresh_process, eventuali_target.backend, store_url, kept[0]
            ).result(timeout=120)
        assert_same_state(before, state, "when another process opens the store")
        assert outcome == "DuplicateEventError", (
            f"the event-id index must be stored: a fresh process {outcome} a stored event id"
        )

    def test_sqlite_file_format_is_the_shared_one(self, eventuali_target: Target, store_url: str) -> None:
        """A file written row by row as vectors/sqlite_v1.json says reads back as its records,
        and the engine's own appends land in the same columns (cross-engine compatibility)."""
        url = parse_url(store_url)
        if url.scheme != "sqlite" or url.path == ":memory:":
            pytest.skip("the SQLite file-format vector applies to sqlite:// files")
        data = vector("sqlite_v1")
        path = url.path
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        script = resources.files("eventuali").joinpath("schema/sqlite.sql").read_text("utf-8")
        with sqlite3.connect(path) as conn:
            conn.executescript(script)
            for table, rows in data["tables"].items():
                for row in rows:
                    row = {k: bytes.fromhex(v[4:]) if isinstance(v, str) and v.startswith("hex:") else v
                           for k, v in row.items()}
                    conn.execute(
                        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        list(row.values()),
                    )
        conn.close()
        reopened = self.make_backend(eventuali_target, store_url)
        try:
            expected = [record_from_json(r) for r in data["records"]]
            assert reopened.read_all() == expected
            for stream_id, version in data["stream_versions"].items():
                assert reopened.stream_version(stream_id) == version
            assert reopened.head() == data["head"]
            if "checkpoints" in reopened.capabilities:
                assert reopened.get_checkpoint("projector") == 3
            if "snapshots" in reopened.capabilities:
                assert reopened.load_snapshot("order-1") == Snapshot("order-1", 2, 1, 7, b'{"state":1}')
            with pytest.raises(StreamDeletedError):
                reopened.append([write("gone", ANY, 1)])
            rec = new_record("Appended", payload=b"p", metadata=b"m", timestamp=42)
            (position,) = reopened.append([write("order-1", 2, [rec], "Order", "acme")])
            assert position == data["head"] + 1
        finally:
            reopened.close()
        with sqlite3.connect(path) as conn:
            row = conn.execute(
                "SELECT position, event_id, stream_id, stream_type, version, event_type, "
                "schema_version, timestamp, tenant, metadata, payload FROM eventuali_events "
                "WHERE position = ?", (position,)
            ).fetchone()
            stream = conn.execute(
                "SELECT stream_type, tenant, version, deleted FROM eventuali_streams "
                "WHERE stream_id = 'order-1'"
            ).fetchone()
        conn.close()
        assert row == (position, rec.event_id, "order-1", "Order", 3, "Appended", 1, 42, "acme", b"m", b"p")
        assert stream == ("Order", "acme", 3, 0)
