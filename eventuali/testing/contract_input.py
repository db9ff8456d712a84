"""Conformance tests: bad input is refused with ``InvalidInputError`` and writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from eventuali.errors import InvalidInputError
from eventuali.protocol import Backend
from eventuali.records import (
    MAX_NAME_LENGTH,
    MAX_STREAM_ID_LENGTH,
    NO_STREAM,
    NewRecord,
    ReadFilter,
    Snapshot,
)

from .fixtures import BackendFixtures, new_id, new_record, write
from .marks import requires

_OK = new_record()
_LONG_ID = "x" * (MAX_STREAM_ID_LENGTH + 1)
_LONG_NAME = "n" * (MAX_NAME_LENGTH + 1)


def _rec(**changes: Any) -> NewRecord:
    return _OK._replace(**{"event_id": new_id(), **changes})


BAD_CALLS: list[Any] = [
    pytest.param(lambda b: b.append([write("", NO_STREAM, 1)]), id="append-empty-stream-id"),
    pytest.param(lambda b: b.append([write(_LONG_ID, NO_STREAM, 1)]), id="append-long-stream-id"),
    pytest.param(lambda b: b.append([write(42, NO_STREAM, 1)]), id="append-int-stream-id"),  # type: ignore[arg-type]
    pytest.param(lambda b: b.append([write("a\x00b", NO_STREAM, 1)]), id="append-nul-stream-id"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_id=b"x" * 15)])]), id="event-id-15-bytes"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_id=b"x" * 17)])]), id="event-id-17-bytes"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_id=str(uuid.uuid4()))])]), id="event-id-str"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_id=uuid.uuid4())])]), id="event-id-uuid"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_type="")])]), id="empty-event-type"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_type=_LONG_NAME)])]), id="long-event-type"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_type=7)])]), id="int-event-type"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(schema_version=-1)])]), id="negative-schema-version"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(schema_version="1")])]), id="str-schema-version"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(timestamp=1.5)])]), id="float-timestamp"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(timestamp=2**63)])]), id="huge-timestamp"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(metadata="{}")])]), id="str-metadata"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(payload=None)])]), id="none-payload"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(), ("too", "short")])]), id="short-record"),  # type: ignore[list-item]
    pytest.param(lambda b: b.append([write("s", -4, 1)]), id="unknown-negative-expected"),
    pytest.param(lambda b: b.append([write("s", "0", 1)]), id="str-expected"),  # type: ignore[arg-type]
    pytest.param(lambda b: b.append([write("s", None, 1)]), id="none-expected"),  # type: ignore[arg-type]
    pytest.param(lambda b: b.append([write("s", NO_STREAM, 1, _LONG_NAME)]), id="long-stream-type"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, 1, "T", _LONG_NAME)]), id="long-tenant"),
    pytest.param(lambda b: b.append(write("s", NO_STREAM, 1)), id="write-not-in-a-list"),
    pytest.param(lambda b: b.append("s"), id="writes-a-str"),
    pytest.param(lambda b: b.append([write("ok", NO_STREAM, 1), write("", NO_STREAM, 1)]), id="second-write-bad"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, 1)], checkpoint=("", 1)), id="checkpoint-empty-name", marks=requires("checkpoints")),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, 1)], checkpoint=("c", -1)), id="checkpoint-negative", marks=requires("checkpoints")),
    pytest.param(lambda b: b.read_stream(""), id="read-empty-stream-id"),
    pytest.param(lambda b: b.read_stream(_LONG_ID), id="read-long-stream-id"),
    pytest.param(lambda b: b.read_stream("s", 0), id="from-version-0"),
    pytest.param(lambda b: b.read_stream("s", -1), id="from-version-negative"),
    pytest.param(lambda b: b.read_stream("s", 5, 4), id="to-below-from"),
    pytest.param(lambda b: b.read_stream("s", 1, None, 0), id="read-stream-limit-0"),
    pytest.param(lambda b: b.read_all(-1), id="negative-position"),
    pytest.param(lambda b: b.read_all(1, 0), id="read-all-limit-0"),
    pytest.param(lambda b: b.read_all(1, -5), id="read-all-negative-limit"),
    pytest.param(lambda b: b.read_all(1, None, {"event_types": ["x"]}), id="filter-a-dict"),
    pytest.param(lambda b: b.read_all(1, None, ReadFilter(event_types="Placed")), id="filter-types-a-str"),  # type: ignore[arg-type]
    pytest.param(lambda b: b.stream_version(""), id="version-empty-stream-id"),
    pytest.param(lambda b: b.wait_for(-1, 0), id="wait-negative-position"),
    pytest.param(lambda b: b.wait_for(0, -1), id="wait-negative-timeout"),
    pytest.param(lambda b: b.save_snapshot(Snapshot("s", 0, 1, 0, b"")), id="snapshot-version-0", marks=requires("snapshots")),
    pytest.param(lambda b: b.save_snapshot(Snapshot("", 1, 1, 0, b"")), id="snapshot-empty-id", marks=requires("snapshots")),
    pytest.param(lambda b: b.save_snapshot(Snapshot("s", 1, 1, 0, "x")), id="snapshot-str-payload", marks=requires("snapshots")),  # type: ignore[arg-type]
    pytest.param(lambda b: b.load_snapshot("s", -1), id="snapshot-negative-max", marks=requires("snapshots")),
    pytest.param(lambda b: b.prune_snapshots("s", -1), id="prune-negative-keep", marks=requires("snapshots")),
    pytest.param(lambda b: b.get_checkpoint(""), id="get-checkpoint-empty", marks=requires("checkpoints")),
    pytest.param(lambda b: b.set_checkpoint("c", -1), id="set-checkpoint-negative", marks=requires("checkpoints")),
    pytest.param(lambda b: b.set_checkpoint(_LONG_NAME, 1), id="set-checkpoint-long-name", marks=requires("checkpoints")),
    pytest.param(lambda b: b.delete_stream(""), id="delete-empty-stream-id", marks=requires("delete")),
    pytest.param(lambda b: b.truncate_stream("s", 0), id="truncate-before-0", marks=requires("truncate")),
    pytest.param(lambda b: b.truncate_stream("", 1), id="truncate-empty-stream-id", marks=requires("truncate")),
]


class BadInputContract(BackendFixtures):
    @pytest.mark.parametrize("call", BAD_CALLS)
    def test_bad_input_is_refused_and_writes_nothing(self, backend: Backend, call: Callable[[Backend], object]) -> None:
        backend.append([write("s", NO_STREAM, 2)])
        before = backend.read_all()
        with pytest.raises(InvalidInputError) as err:
            call(backend)
        assert str(err.value)  # a message that says what is wrong
        assert backend.read_all() == before
        assert backend.stream_version("s") == 2
