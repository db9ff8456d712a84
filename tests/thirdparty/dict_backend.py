"""A deliberately tiny third-party backend: plain dicts and lists, one lock.

It exists only to prove the third-party path: registered through an
``eventuali.backends`` entry point by a package that is not eventuali, it runs
the shipped conformance suite with the one documented command.  It declares no
optional capability, so those tests are skipped with the reason.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from eventuali import record_validation as check
from eventuali.errors import (
    DuplicateEventError,
    OptimisticConcurrencyError,
    StoreClosedError,
)
from eventuali.records import ANY, NO_STREAM, STREAM_EXISTS, Record


class DictStore:
    capabilities = frozenset()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Record] = []
        self._versions: dict[str, int] = {}
        self._ids: set[bytes] = set()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("this dict store was closed")

    def append(self, writes, checkpoint=None):
        self._check_open()
        check.check_append(writes, checkpoint)
        with self._lock:
            versions = dict(self._versions)
            for w in writes:
                current = versions.get(w[0], 0)
                expected = w[2]
                if not (expected in (ANY, current) or (expected == NO_STREAM and current == 0)
                        or (expected == STREAM_EXISTS and current > 0)):
                    raise OptimisticConcurrencyError(w[0], expected, current)
                versions[w[0]] = current + len(w[3])
            for w in writes:
                for r in w[3]:
                    if r[0] in self._ids:
                        raise DuplicateEventError(r[0])
            positions = []
            for w in writes:
                tenant = w[4] if len(w) > 4 else ""
                for r in w[3]:
                    version = self._versions.get(w[0], 0) + 1
                    self._versions[w[0]] = version
                    position = len(self._events) + 1
                    self._events.append(Record(position, r[0], w[0], w[1], version, r[1], r[2],
                                               r[3], tenant, r[4], r[5]))
                    self._ids.add(r[0])
                    positions.append(position)
            return positions

    def read_stream(self, stream_id, from_version=1, to_version=None, limit=None):
        self._check_open()
        check.check_read_stream(stream_id, from_version, to_version, limit)
        with self._lock:
            out = [r for r in self._events if r.stream_id == stream_id and r.version >= from_version
                   and (to_version is None or r.version <= to_version)]
        return out[:limit]

    def read_all(self, from_position=1, limit=None, filter=None):
        self._check_open()
        check.check_read_all(from_position, limit, filter)
        with self._lock:
            out = [r for r in self._events[max(from_position - 1, 0):]
                   if filter is None or filter.matches(r)]
        return out[:limit]

    def stream_version(self, stream_id):
        self._check_open()
        check.check_stream_id(stream_id)
        return self._versions.get(stream_id, 0)

    def head(self):
        self._check_open()
        return len(self._events)

    def wait_for(self, after_position, timeout):
        self._check_open()
        check.check_wait(after_position, timeout)
        deadline = time.monotonic() + timeout
        while self.head() <= after_position and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.head()

    def close(self):
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DictBackend:
    """The provider an entry point names."""

    name: ClassVar[str] = "dict"
    schemes: ClassVar[frozenset[str]] = frozenset({"dict"})
    priority: ClassVar[int] = -10

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"version": "0.0.1", "storage": "a Python dict"}

    @classmethod
    def open(cls, url):
        return DictStore()
