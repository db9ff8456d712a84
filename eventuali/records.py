"""Value types that cross the backend boundary: records, writes, filters, snapshots.

A backend only ever sees these (ints, strings, bytes) - never a pydantic model
or a user class.  ``Record`` and ``NewRecord`` are ``NamedTuple``s so that a
backend can build thousands of them cheaply (``tuple.__new__(Record, row)``
runs no Python code) and so that they compare equal field by field across
backends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

# Expected-version sentinels.  Non-negative ints are exact versions (0 means
# "the stream has no events"); the sentinels are negative so that every engine,
# C included, can carry them in a signed 64-bit integer.
ANY = -1
"""Append whatever the stream's current version is (no concurrency check)."""
NO_STREAM = -2
"""The stream must not exist yet (same check as exact version 0)."""
STREAM_EXISTS = -3
"""The stream must already have at least one event."""

_SENTINEL_NAMES = {ANY: "ANY", NO_STREAM: "NO_STREAM", STREAM_EXISTS: "STREAM_EXISTS"}

MAX_STREAM_ID_LENGTH = 255
"""Longest stream id, in characters.  Longer ids are refused with InvalidInputError."""
MAX_NAME_LENGTH = 255
"""Longest event type, stream type, tenant or checkpoint name, in characters."""


def expected_version_matches(expected: int, current: int) -> bool:
    """The expected-version rule every engine applies (``current`` is 0 for no stream)."""
    return (
        expected == ANY
        or expected == current
        or (expected == NO_STREAM and current == 0)
        or (expected == STREAM_EXISTS and current > 0)
    )


def expected_version_name(expected: int) -> str:
    """``ANY``/``NO_STREAM``/``STREAM_EXISTS`` for a sentinel, the number otherwise."""
    return _SENTINEL_NAMES.get(expected, str(expected))


class NewRecord(NamedTuple):
    """One event to append.  The backend assigns position and version."""

    event_id: bytes
    """16 bytes (a UUID); unique in the store."""
    event_type: str
    schema_version: int
    timestamp: int
    """Microseconds since the epoch, UTC."""
    metadata: bytes
    """JSON object (correlation, causation, user, …); may be b''."""
    payload: bytes
    """The serialized event, possibly compressed/encrypted by the core."""


class StreamWrite(NamedTuple):
    """Records to append to one stream, with the version the writer expects it to have."""

    stream_id: str
    stream_type: str
    expected_version: int
    records: Sequence[NewRecord]
    tenant: str = ""


class Record(NamedTuple):
    """One stored event, as every backend returns it."""

    position: int
    """Global position: strictly increasing, in commit order."""
    event_id: bytes
    stream_id: str
    stream_type: str
    version: int
    """1-based, contiguous within the stream."""
    event_type: str
    schema_version: int
    timestamp: int
    tenant: str
    metadata: bytes
    payload: bytes


@dataclass(frozen=True)
class ReadFilter:
    """Which records ``read_all`` returns.  ``None`` means "no restriction"."""

    event_types: frozenset[str] | None = None
    stream_types: frozenset[str] | None = None
    stream_id_prefix: str | None = None
    tenant: str | None = None

    def matches(self, record: Record) -> bool:
        """Reference semantics of the filter (backends may push it into SQL/C)."""
        return (
            (self.event_types is None or record.event_type in self.event_types)
            and (self.stream_types is None or record.stream_type in self.stream_types)
            and (self.stream_id_prefix is None or record.stream_id.startswith(self.stream_id_prefix))
            and (self.tenant is None or record.tenant == self.tenant)
        )

    @property
    def is_empty(self) -> bool:
        return (
            self.event_types is None
            and self.stream_types is None
            and self.stream_id_prefix is None
            and self.tenant is None
        )


class Snapshot(NamedTuple):
    """A stored snapshot: the core's encoded aggregate state at ``version``."""

    stream_id: str
    version: int
    schema_version: int
    timestamp: int
    payload: bytes


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL.  The core parses; every backend interprets the same fields.

    ``sqlite://events.db`` -> scheme ``sqlite``, path ``events.db`` (relative);
    ``sqlite:///abs/x.db`` -> path ``/abs/x.db``; ``sqlite://:memory:`` -> path
    ``:memory:``; ``memory://`` or ``memory://name`` -> scheme ``memory``, path
    ``name`` (``''`` means a private store); ``postgresql://u:p@h:5432/db?opt=v``
    fills user/password/host/port/database.  Any other scheme (a third-party
    engine's) keeps its location as written in ``path``: ``jsonl://Events.jsonl``
    -> path ``Events.jsonl``, ``jsonl:///data/e.jsonl`` -> ``/data/e.jsonl``
    (host/port/user/password/database are filled too when the location reads as
    ``user:pass@host:port/db``).  ``backend`` is the ``+name`` of a scheme such
    as ``sqlite+c://``, or ``None``.
    """

    raw: str
    scheme: str
    backend: str | None = None
    path: str = ""
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def redacted(self) -> str:
        """The URL with any password replaced by ``***`` (for messages and logs)."""
        if self.password is None:
            return self.raw
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", self.raw, count=1)

    def __repr__(self) -> str:
        return f"StoreURL({self.redacted()!r})"
