"""Projections: read models built from the event stream by ``handle_<snake_case_event>`` methods.

Two kinds:

- :class:`Projection` keeps its read model wherever it likes (a dict, another
  database, a search index).  The streamer stores its checkpoint in the event
  store; delivery is **at least once**: after a crash, the events since the
  last checkpoint are handled again.
- :class:`StoredProjection` keeps its read model (a key -> JSON value map,
  :class:`ReadModel`) *in the event store itself*, and every batch's changes
  are committed in the same backend ``append`` call as its checkpoint.  Its
  read model therefore reflects every event **exactly once**, across crashes
  and restarts, on every backend (it uses only the Backend protocol: a change
  log stream, ``append(..., checkpoint=...)``, and snapshots to compact).

Records the library writes for its own bookkeeping (read-model change logs,
parked events) have stream type :data:`RESERVED_STREAM_TYPE`; projections
never see them.
"""

from __future__ import annotations

import inspect
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from .errors import ConfigurationError, InvalidInputError
from .event import snake_case

RESERVED_STREAM_TYPE = "$eventuali"
"""Stream type of the library's own bookkeeping records (skipped by every projection)."""

ON_ERROR_POLICIES = ("park", "stop")


class Projection:
    """Base class of projections.

    ::

        class UserDirectory(Projection):
            def __init__(self):
                self.users = {}

            async def handle_user_registered(self, event):   # or a plain def
                self.users[event.aggregate_id] = event.name

    Optional class attributes: ``name`` (the checkpoint name; default the class
    name), ``event_types`` / ``aggregate_types`` (only these are read — the
    filter runs in the backend), ``raw = True`` (handlers get the stored
    :class:`~eventuali.records.Record` instead of a decoded event: no pydantic
    work, several times faster), ``on_error`` / ``max_retries`` (override the
    streamer's failure policy).  A ``handle_any(event)`` method receives every
    event that has no specific handler.

    Optional hooks: ``reset()`` (clear the read model before a rebuild; the
    default re-runs ``__init__()`` without arguments) and
    ``before_checkpoint(position)`` (flush external writes before the
    checkpoint is stored — keeps at-least-once true for external sinks).
    """

    name: ClassVar[str | None] = None
    event_types: ClassVar[Any] = None
    aggregate_types: ClassVar[Any] = None
    raw: ClassVar[bool] = False
    on_error: ClassVar[str | None] = None
    max_retries: ClassVar[int | None] = None

    def projection_name(self) -> str:
        return type(self).name or type(self).__name__

    async def reset(self) -> None:
        """Clear the read model (called by ``EventStreamer.rebuild``)."""
        try:
            type(self).__init__(self)
        except TypeError as exc:
            raise ConfigurationError(
                f"{type(self).__name__}.__init__ needs arguments, so the default reset() cannot "
                f"clear the projection ({exc}); define 'async def reset(self)' on it"
            ) from exc


def handler_for(projection: Projection, event_type: str) -> tuple[Any, bool] | None:
    """The bound handler for ``event_type`` and whether it is a coroutine function, or None."""
    cls = type(projection)
    cache = cls.__dict__.get("__handler_names__")
    if cache is None:
        cache = {}
        cls.__handler_names__ = cache  # type: ignore[attr-defined]  # per class
    try:
        name = cache[event_type]
    except KeyError:
        name = "handle_" + snake_case(event_type)
        if not callable(getattr(cls, name, None)):
            name = "handle_any" if callable(getattr(cls, "handle_any", None)) else None
        cache[event_type] = name
    if name is None:
        return None
    fn = getattr(projection, name)
    return fn, inspect.iscoroutinefunction(fn)


# --- the stored read model ----------------------------------------------------------

_MISSING = object()


class ReadModel:
    """A key -> JSON-value map kept in the event store, changed only by its projection's handlers.

    Keys are strings; values are anything ``json.dumps`` accepts (after a
    restart they come back as JSON types: lists, dicts, str, numbers, bools,
    None).  Changes made by a handler that raises are rolled back.
    """

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._changes: dict[str, Any] = {}  # key -> new value, or _MISSING for a delete
        self._reset = False
        self._undo: list[tuple] | None = None

    # reading
    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def items(self):
        return self._data.items()

    def keys(self):
        return self._data.keys()

    def values(self):
        return self._data.values()

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    # writing (from handlers)
    def put(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise InvalidInputError(f"read model keys are strings, got {type(key).__name__} {key!r}")
        self._remember(key)
        self._data[key] = value
        self._changes[key] = value

    __setitem__ = put

    def delete(self, key: str) -> None:
        if key in self._data:
            self._remember(key)
            del self._data[key]
            self._changes[key] = _MISSING

    __delitem__ = delete

    def _remember(self, key: str) -> None:
        if self._undo is not None:
            self._undo.append((key, self._data.get(key, _MISSING), self._changes.get(key, _MISSING)))

    # used by the streamer
    def _begin(self) -> None:
        self._undo = []

    def _rollback(self) -> None:
        for key, old, old_change in reversed(self._undo or ()):
            if old is _MISSING:
                self._data.pop(key, None)
            else:
                self._data[key] = old
            if old_change is _MISSING:
                self._changes.pop(key, None)
            else:
                self._changes[key] = old_change
        self._undo = None

    def _end(self) -> None:
        self._undo = None

    def _clear_for_rebuild(self) -> None:
        self._data.clear()
        self._changes.clear()
        self._reset = True

    def _take_changes(self) -> bytes | None:
        """The pending changes as one change-log payload (and forget them), or None."""
        if not self._changes and not self._reset:
            return None
        sets = {k: v for k, v in self._changes.items() if v is not _MISSING}
        dels = [k for k, v in self._changes.items() if v is _MISSING]
        doc: dict[str, Any] = {"set": sets, "del": dels}
        if self._reset:
            doc["reset"] = True
        try:
            payload = json.dumps(doc, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"a read model value is not JSON-serializable ({exc}); store only JSON types "
                "(dict, list, str, int, float, bool, None) with ReadModel.put"
            ) from exc
        self._changes.clear()
        self._reset = False
        return payload

    def _apply_log(self, payload: bytes) -> bool:
        """Apply one change-log record; True if it reset the read model (a rebuild's start)."""
        doc = json.loads(payload)
        reset = bool(doc.get("reset"))
        if reset:
            self._data.clear()
        self._data.update(doc["set"])
        for k in doc["del"]:
            self._data.pop(k, None)
        return reset

    def _snapshot_payload(self) -> bytes:
        return zlib.compress(json.dumps(self._data, separators=(",", ":")).encode())

    def _load_snapshot(self, payload: bytes) -> None:
        self._data = json.loads(zlib.decompress(payload))


class StoredProjection(Projection):
    """A projection whose read model lives in the event store: exactly-once updates.

    Handlers change ``self.state`` (a :class:`ReadModel`)::

        class OrderTotals(StoredProjection):
            def handle_order_placed(self, event):
                self.state.put(event.aggregate_id, {"total": event.total})

    ``state`` is loaded from the store when the streamer starts the
    subscription; read it any time (``projection.state.get(key)``).
    """

    compact_every: ClassVar[int] = 500
    """Store a compacted copy of the read model every this many change-log records."""

    # cached_property, not property: after the first access ``self.state`` is a
    # plain instance attribute, which handlers touch on every event.
    @cached_property
    def state(self) -> ReadModel:
        return ReadModel()

    async def reset(self) -> None:
        self.state._clear_for_rebuild()


@dataclass(frozen=True)
class ParkedEvent:
    """An event whose handler kept failing and that the streamer set aside (policy ``park``)."""

    projection: str
    position: int
    stream_id: str
    version: int
    event_type: str
    error: str
    attempts: int
    parked_at: int
    """Microseconds since the epoch."""

    def to_payload(self) -> bytes:
        return json.dumps(self.__dict__, separators=(",", ":")).encode()

    @classmethod
    def from_payload(cls, payload: bytes) -> ParkedEvent:
        return cls(**json.loads(payload))


def changelog_stream(name: str) -> str:
    return f"$projection:{name}"


def parked_stream(name: str) -> str:
    return f"$parked:{name}"
