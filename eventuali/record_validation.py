"""Protocol-level input checks, shared by every backend that wants them.

The Backend protocol promises ``InvalidInputError`` (and ``DuplicateEventError``
for an event id given twice in one call) *before* anything is written, the same
way on every engine.  Doing the checks in one place keeps the engines identical
(the differential tests compare exception types) and lets a third-party backend
reuse them.  The record checks are batch-shaped: a few C-level passes over the
columns (``map(type, ...)``, ``map(len, ...)``) instead of Python code per record,
so they cost little on the append hot path; only when a batch fails does a slow
pass run to name the offending record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import DuplicateEventError, InvalidInputError
from .records import (
    ANY,
    MAX_NAME_LENGTH,
    MAX_STREAM_ID_LENGTH,
    NO_STREAM,
    STREAM_EXISTS,
    ReadFilter,
    Snapshot,
)

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63) + 1  # symmetric range: |value| < 2**63
_SENTINELS = (ANY, NO_STREAM, STREAM_EXISTS)


def _text(value: object, what: str, max_length: int, allow_empty: bool) -> None:
    if type(value) is not str:
        raise InvalidInputError(f"{what} must be a str, got {type(value).__name__} {value!r}")
    if not value and not allow_empty:
        raise InvalidInputError(f"{what} is empty; give a non-empty string")
    if len(value) > max_length:
        raise InvalidInputError(
            f"{what} {value[:40]!r}… is {len(value)} characters long; the limit is {max_length}"
        )
    if "\x00" in value:
        raise InvalidInputError(f"{what} {value!r} contains a NUL character, which is not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{what} {value!r} is not valid Unicode text ({exc})") from None


def check_stream_id(stream_id: object, what: str = "stream id") -> None:
    """A non-empty str of at most ``MAX_STREAM_ID_LENGTH`` characters."""
    _text(stream_id, what, MAX_STREAM_ID_LENGTH, allow_empty=False)


def check_name(value: object, what: str, allow_empty: bool = False) -> None:
    """An event type, stream type, tenant or checkpoint name."""
    _text(value, what, MAX_NAME_LENGTH, allow_empty)


def check_int(value: object, what: str, minimum: int, maximum: int = INT64_MAX) -> None:
    """An int (not a bool) in ``[minimum, maximum]``."""
    if type(value) is not int:
        raise InvalidInputError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum or value > maximum:
        raise InvalidInputError(f"{what} is {value}; it must be between {minimum} and {maximum}")


def check_optional_int(value: object, what: str, minimum: int) -> None:
    if value is not None:
        check_int(value, what, minimum)


def check_expected_version(expected: object, stream_id: str) -> None:
    if type(expected) is not int or not (0 <= expected <= INT64_MAX or expected in _SENTINELS):
        raise InvalidInputError(
            f"expected version {expected!r} for stream {stream_id!r} is not valid; use an int >= 0 "
            "(0 = the stream has no events) or ANY, NO_STREAM or STREAM_EXISTS"
        )


def _bad_record(stream_id: str, index: int, problem: str) -> InvalidInputError:
    return InvalidInputError(f"record {index} of the write to stream {stream_id!r}: {problem}")


def _check_records_slowly(stream_id: str, records: Sequence[Any]) -> None:
    """Name the first offending record (only runs once the fast pass found a problem)."""
    for i, rec in enumerate(records):
        if not isinstance(rec, tuple) or len(rec) != 6:
            raise _bad_record(stream_id, i, f"expected a NewRecord (6 fields), got {rec!r}")
        event_id, event_type, schema_version, timestamp, metadata, payload = rec
        if type(event_id) is not bytes or len(event_id) != 16:
            raise _bad_record(
                stream_id, i, f"event id {event_id!r} must be 16 bytes (uuid.UUID(...).bytes)"
            )
        try:
            check_name(event_type, "event type")
            check_int(schema_version, "schema version", 0)
            check_int(timestamp, "timestamp (microseconds since the epoch)", INT64_MIN)
        except InvalidInputError as exc:
            raise _bad_record(stream_id, i, str(exc)) from None
        for what, value in (("metadata", metadata), ("payload", payload)):
            if type(value) is not bytes:
                raise _bad_record(
                    stream_id, i, f"{what} must be bytes, got {type(value).__name__} {value!r:.60}"
                )
    raise InvalidInputError(  # pragma: no cover - the fast pass is stricter only at int64 edges
        f"records of the write to stream {stream_id!r} are malformed; give NewRecord tuples"
    )


def check_records(stream_id: str, records: Sequence[Any]) -> tuple[bytes, ...]:
    """Check a write's records; return their event ids (for the duplicate check).

    Column-wise, a few C-level passes per column; ``int.bit_length`` checks type
    and range in one pass (it raises TypeError on anything but an int).
    """
    try:
        columns = list(zip(*records, strict=False))
        if len(columns) != 6:
            raise TypeError
        ids, types, schema_versions, timestamps, metadata, payloads = columns
        ok = (
            set(map(type, ids)) == {bytes}
            and max(map(len, ids)) == 16 == min(map(len, ids))
            and max(map(int.bit_length, schema_versions)) < 64
            and min(schema_versions) >= 0
            and max(map(int.bit_length, timestamps)) < 64
        )
        ok = ok and set(map(type, metadata)) == {bytes} == set(map(type, payloads))
        if ok:
            # Event types repeat: checking the distinct ones is enough.
            for event_type in set(types):
                check_name(event_type, "event type")
    except (TypeError, InvalidInputError):
        ok = False
    if not ok:
        _check_records_slowly(stream_id, records)
    return ids


def check_append(writes: object, checkpoint: object) -> None:
    """Everything ``Backend.append`` must refuse before touching storage.

    Raises ``InvalidInputError`` for malformed input and ``DuplicateEventError``
    for an event id that appears twice in this call.
    """
    if not isinstance(writes, (list, tuple)):
        raise InvalidInputError(
            f"writes must be a list of StreamWrite, got {type(writes).__name__} {writes!r:.80}"
        )
    id_columns: list[tuple[bytes, ...]] = []
    for write in writes:
        if not isinstance(write, tuple) or len(write) not in (4, 5):
            raise InvalidInputError(
                f"each write must be a StreamWrite(stream_id, stream_type, expected_version, "
                f"records, tenant), got {write!r:.80}"
            )
        stream_id, stream_type, expected, records = write[:4]
        tenant = write[4] if len(write) == 5 else ""
        check_stream_id(stream_id)
        check_name(stream_type, f"stream type of stream {stream_id!r}", allow_empty=True)
        check_name(tenant, f"tenant of stream {stream_id!r}", allow_empty=True)
        check_expected_version(expected, stream_id)
        if not isinstance(records, (list, tuple)):
            raise InvalidInputError(
                f"records of the write to stream {stream_id!r} must be a list of NewRecord, "
                f"got {type(records).__name__}"
            )
        if records:
            id_columns.append(check_records(stream_id, records))
    ids = id_columns[0] if len(id_columns) == 1 else [i for col in id_columns for i in col]
    if len(set(ids)) != len(ids):
        seen: set[bytes] = set()
        for event_id in ids:
            if event_id in seen:
                raise DuplicateEventError(
                    event_id,
                    f"event id {event_id.hex()} is given twice in one append; "
                    "event ids must be unique",
                )
            seen.add(event_id)
    if checkpoint is not None:
        if not isinstance(checkpoint, tuple) or len(checkpoint) != 2:
            raise InvalidInputError(
                f"checkpoint must be a (name, position) tuple, got {checkpoint!r:.80}"
            )
        check_checkpoint(*checkpoint)


def check_checkpoint(name: object, position: object) -> None:
    check_name(name, "checkpoint name")
    check_int(position, f"position of checkpoint {name!r}", 0)


def check_read_stream(
    stream_id: object, from_version: object, to_version: object, limit: object
) -> None:
    check_stream_id(stream_id)
    check_int(from_version, "from_version", 1)
    if to_version is not None:
        check_int(to_version, "to_version", 1)
        if to_version < from_version:  # type: ignore[operator]
            raise InvalidInputError(
                f"to_version {to_version} is below from_version {from_version}; "
                "give to_version >= from_version or None"
            )
    check_optional_int(limit, "limit", 1)


def check_read_all(from_position: object, limit: object, filter: object) -> None:
    check_int(from_position, "from_position", 0)
    check_optional_int(limit, "limit", 1)
    if filter is None:
        return
    if not isinstance(filter, ReadFilter):
        raise InvalidInputError(
            f"filter must be an eventuali.records.ReadFilter or None, got {filter!r:.80}"
        )
    for what, values in (("event type", filter.event_types), ("stream type", filter.stream_types)):
        if values is None:
            continue
        if isinstance(values, (str, bytes)) or not isinstance(values, (set, frozenset, list, tuple)):
            raise InvalidInputError(
                f"ReadFilter {what}s must be a set of str, got {values!r:.80}; "
                "e.g. frozenset({'OrderPlaced'})"
            )
        for value in values:
            if value == "":
                # The rule every engine follows (see Backend.read_all): a type name in a
                # filter names a type, so an empty one is a mistake, not "matches nothing".
                raise InvalidInputError(
                    f"ReadFilter {what}s {sorted(values)!r:.80} contain an empty name; "
                    f"give non-empty {what} names (no filter on {what}s: None)"
                )
            check_name(value, f"ReadFilter {what}")
    if filter.stream_id_prefix is not None:
        check_name(filter.stream_id_prefix, "ReadFilter stream_id_prefix", allow_empty=True)
    if filter.tenant is not None:
        check_name(filter.tenant, "ReadFilter tenant", allow_empty=True)


def check_snapshot(snapshot: object) -> None:
    if not isinstance(snapshot, tuple) or len(snapshot) != 5:
        raise InvalidInputError(f"expected a Snapshot, got {snapshot!r:.80}")
    snapshot = Snapshot(*snapshot)
    check_stream_id(snapshot.stream_id)
    check_int(snapshot.version, f"snapshot version of stream {snapshot.stream_id!r}", 1)
    check_int(snapshot.schema_version, "snapshot schema version", 0)
    check_int(snapshot.timestamp, "snapshot timestamp", INT64_MIN)
    if type(snapshot.payload) is not bytes:
        raise InvalidInputError(
            f"snapshot payload must be bytes, got {type(snapshot.payload).__name__}"
        )


def check_wait(after_position: object, timeout: object) -> None:
    check_int(after_position, "after_position", 0)
    if type(timeout) not in (int, float) or not (0 <= timeout < float("inf")):  # type: ignore[operator]
        raise InvalidInputError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
