"""A worked example of a third-party storage engine: one JSON-lines file per store.

``jsonl://events.jsonl`` (relative to the working directory) or
``jsonl:///data/events.jsonl``.  Every change is one JSON line appended to the
file; opening a store replays the file into memory.  The line is the only
truth: the in-memory state is always what :meth:`_State.apply` makes of the
lines, at run time and on replay alike, so what is served and what is stored
cannot drift apart.

Handles opened on one file in one process share one state (one lock, one
condition for ``wait_for``), and that state is dropped when the last handle
closes: the next open replays the file.  No file locking, so it does not
declare ``multi_process``: one process at a time.

It passes the conformance suite; see docs/backends.md and this directory's
pyproject.toml for how it is registered and tested.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, ClassVar

from eventuali import record_validation as check
from eventuali.errors import (
    ConfigurationError,
    DuplicateEventError,
    OptimisticConcurrencyError,
    StorageError,
    StoreClosedError,
    StreamDeletedError,
)
from eventuali.records import (
    ReadFilter,
    Record,
    Snapshot,
    StoreURL,
    StreamWrite,
    expected_version_matches,
)


def _b(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb(text: str) -> bytes:
    return base64.b64decode(text)


class _State:
    """What the lines of one file say, and the lock that guards it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.log: list[Record] = []  # stored records in position order
        self.streams: dict[str, dict[str, Any]] = {}  # id -> version, deleted, records
        self.ids: set[bytes] = set()
        self.snapshots: dict[str, dict[int, Snapshot]] = {}
        self.checkpoints: dict[str, int] = {}
        self.last_position = 0
        self.handles = 0
        try:
            self.file = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - closed with the last handle
        except OSError as exc:
            raise StorageError(f"cannot open jsonl store {path!r}: {exc}") from exc
        self.file.seek(0)
        *lines, torn = self.file.read().split("\n")
        with self.lock:  # apply() notifies waiters, which needs the lock
            for number, line in enumerate(lines, 1):
                try:
                    self.apply(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    self.file.close()
                    raise StorageError(f"{path}:{number}: not a jsonl store line ({exc})") from exc
        if torn:  # a last line cut short by a crash was never acknowledged: drop it
            self.file.truncate(self.file.tell() - len(torn.encode("utf-8")))

    def stream(self, stream_id: str) -> dict[str, Any]:
        return self.streams.setdefault(stream_id, {"version": 0, "deleted": False, "records": []})

    def commit(self, op: dict[str, Any]) -> Any:
        """Store ``op`` as one line, then apply it; the caller holds the lock."""
        self.file.write(json.dumps(op, separators=(",", ":")) + "\n")
        self.file.flush()
        return self.apply(op)

    def apply(self, op: dict[str, Any]) -> Any:
        kind = op["op"]
        if kind == "append":
            return self._apply_append(op)
        if kind == "delete":
            stream = self.stream(op["stream"])
            stream["deleted"] = True
            self.snapshots.pop(op["stream"], None)
            return self._forget(op["stream"], len(stream["records"]))
        if kind == "truncate":
            records = self.stream(op["stream"])["records"]
            return self._forget(op["stream"], bisect_left([r.version for r in records], op["before"]))
        if kind == "checkpoint":
            self.checkpoints[op["name"]] = op["position"]
        elif kind == "snapshot":
            snap = Snapshot(op["stream"], op["version"], op["schema_version"], op["timestamp"],
                            _unb(op["payload"]))
            self.snapshots.setdefault(snap.stream_id, {})[snap.version] = snap
        elif kind == "prune":
            snaps = self.snapshots.get(op["stream"], {})
            doomed = sorted(snaps, reverse=True)[op["keep"]:]
            for version in doomed:
                del snaps[version]
            return len(doomed)
        return None

    def _apply_append(self, op: dict[str, Any]) -> list[int]:
        positions = []
        for w in op["writes"]:
            stream = self.stream(w["stream"])
            for r in w["records"]:
                self.last_position += 1
                stream["version"] += 1
                rec = Record(self.last_position, _unb(r[0]), w["stream"], w["type"], stream["version"],
                             r[1], r[2], r[3], w["tenant"], _unb(r[4]), _unb(r[5]))
                stream["records"].append(rec)
                self.log.append(rec)
                self.ids.add(rec.event_id)
                positions.append(rec.position)
        if op["checkpoint"] is not None:
            self.checkpoints[op["checkpoint"][0]] = op["checkpoint"][1]
        if positions:
            self.changed.notify_all()
        return positions

    def _forget(self, stream_id: str, count: int) -> int:
        """Drop the stream's ``count`` oldest records from everything that indexes them."""
        stream = self.stream(stream_id)
        removed, stream["records"] = stream["records"][:count], stream["records"][count:]
        gone = {r.position for r in removed}
        self.ids.difference_update(r.event_id for r in removed)
        self.log = [r for r in self.log if r.position not in gone]
        return len(removed)


_open_states: dict[str, _State] = {}
_open_lock = threading.Lock()


class JsonlStore:
    """One open handle on a JSON-lines store (an :class:`eventuali.protocol.Backend`)."""

    capabilities = frozenset({"persistent", "snapshots", "checkpoints", "delete", "truncate", "wait_for"})
    state_class: ClassVar[type[_State]] = _State

    def __init__(self, path: str) -> None:
        self._path = os.path.abspath(path)
        with _open_lock:
            state = _open_states.get(self._path)
            if state is None:
                state = _open_states[self._path] = self.state_class(self._path)
            state.handles += 1
        self._state: _State | None = state

    def _open(self) -> _State:
        if self._state is None:
            raise StoreClosedError(f"jsonl store {self._path!r} was closed; open it again")
        return self._state

    # --- writes ----------------------------------------------------------------

    def append(self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None) -> list[int]:
        state = self._open()
        check.check_append(writes, checkpoint)  # input, and ids given twice in this call
        with state.lock:
            self._check(state, writes)
            return state.commit(self._append_op(writes, checkpoint))

    def _check(self, state: _State, writes: Sequence[StreamWrite]) -> None:
        """Tombstones and expected versions of every write, then stored ids: the protocol's order."""
        planned: dict[str, int] = {}
        for w in writes:
            stream = state.streams.get(w[0])
            if stream is not None and stream["deleted"]:
                raise StreamDeletedError(w[0])
            current = planned.get(w[0], stream["version"] if stream else 0)
            if not expected_version_matches(w[2], current):
                raise OptimisticConcurrencyError(w[0], w[2], current)
            planned[w[0]] = current + len(w[3])
        for w in writes:
            for r in w[3]:
                if r[0] in state.ids:
                    raise DuplicateEventError(r[0])

    @staticmethod
    def _append_op(writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None) -> dict[str, Any]:
        return {
            "op": "append",
            "writes": [
                {"stream": w[0], "type": w[1], "tenant": w[4] if len(w) > 4 else "",
                 "records": [[_b(r[0]), r[1], r[2], r[3], _b(r[4]), _b(r[5])] for r in w[3]]}
                for w in writes
            ],
            "checkpoint": list(checkpoint) if checkpoint is not None else None,
        }

    # --- reads -----------------------------------------------------------------

    def read_stream(self, stream_id: str, from_version: int = 1, to_version: int | None = None,
                    limit: int | None = None) -> list[Record]:
        state = self._open()
        check.check_read_stream(stream_id, from_version, to_version, limit)
        with state.lock:
            stream = state.streams.get(stream_id)
            out = [r for r in (stream["records"] if stream else ())
                   if r.version >= from_version and (to_version is None or r.version <= to_version)]
        return out[:limit]

    def read_all(self, from_position: int = 1, limit: int | None = None,
                 filter: ReadFilter | None = None) -> list[Record]:
        state = self._open()
        check.check_read_all(from_position, limit, filter)
        with state.lock:
            start = bisect_left([r.position for r in state.log], from_position)
            out = [r for r in state.log[start:] if filter is None or filter.matches(r)]
        return out[:limit]

    def stream_version(self, stream_id: str) -> int:
        state = self._open()
        check.check_stream_id(stream_id)
        with state.lock:
            stream = state.streams.get(stream_id)
            return 0 if stream is None or stream["deleted"] else stream["version"]

    def head(self) -> int:
        state = self._open()
        with state.lock:
            return state.last_position

    # --- snapshots and checkpoints ----------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        state = self._open()
        check.check_snapshot(snapshot)
        with state.lock:
            stream = state.streams.get(snapshot[0])
            if stream is not None and stream["deleted"]:
                raise StreamDeletedError(snapshot[0])
            state.commit({"op": "snapshot", "stream": snapshot[0], "version": snapshot[1],
                          "schema_version": snapshot[2], "timestamp": snapshot[3],
                          "payload": _b(snapshot[4])})

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        state = self._open()
        check.check_stream_id(stream_id)
        check.check_optional_int(max_version, "max_version", 0)
        with state.lock:
            snaps = state.snapshots.get(stream_id, {})
            versions = [v for v in snaps if max_version is None or v <= max_version]
            return snaps[max(versions)] if versions else None

    def prune_snapshots(self, stream_id: str, keep: int) -> int:
        state = self._open()
        check.check_stream_id(stream_id)
        check.check_int(keep, "keep", 0)
        with state.lock:
            return state.commit({"op": "prune", "stream": stream_id, "keep": keep})

    def get_checkpoint(self, name: str) -> int | None:
        state = self._open()
        check.check_name(name, "checkpoint name")
        with state.lock:
            return state.checkpoints.get(name)

    def set_checkpoint(self, name: str, position: int) -> None:
        state = self._open()
        check.check_checkpoint(name, position)
        with state.lock:
            state.commit({"op": "checkpoint", "name": name, "position": position})

    # --- live and retention -------------------------------------------------------

    def wait_for(self, after_position: int, timeout: float) -> int:
        state = self._open()
        check.check_wait(after_position, timeout)
        with state.changed:
            state.changed.wait_for(lambda: state.last_position > after_position, timeout)
            return state.last_position

    def delete_stream(self, stream_id: str) -> int:
        state = self._open()
        check.check_stream_id(stream_id)
        with state.lock:
            return state.commit({"op": "delete", "stream": stream_id})

    def truncate_stream(self, stream_id: str, before_version: int) -> int:
        state = self._open()
        check.check_stream_id(stream_id)
        check.check_int(before_version, "before_version", 1)
        with state.lock:
            return state.commit({"op": "truncate", "stream": stream_id, "before": before_version})

    # --- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        state, self._state = self._state, None
        if state is None:
            return
        with _open_lock:
            state.handles -= 1
            if state.handles == 0:  # the last handle: the next open replays the file
                del _open_states[state.path]
                state.file.close()

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonlBackend:
    """The provider the ``eventuali.backends`` entry point names."""

    name: ClassVar[str] = "jsonl"
    schemes: ClassVar[frozenset[str]] = frozenset({"jsonl"})
    priority: ClassVar[int] = 0
    store_class: ClassVar[type[JsonlStore]] = JsonlStore

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"version": "0.1.0", "storage": "one JSON-lines file per store"}

    @classmethod
    def open(cls, url: StoreURL) -> JsonlStore:
        if url.options:
            raise ConfigurationError(
                f"store URL {url.redacted()!r}: the jsonl engine takes no options, got "
                f"{', '.join(sorted(url.options))}"
            )
        if not url.path:
            raise ConfigurationError(f"store URL {url.redacted()!r} names no file; use jsonl://events.jsonl")
        return cls.store_class(url.path)
