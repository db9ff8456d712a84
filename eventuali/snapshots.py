"""Aggregate snapshots: ``SnapshotService`` (async), ``SyncSnapshotService`` and ``SnapshotConfig``.

A snapshot is an aggregate's state at a stored version, kept through the
backend's ``save_snapshot``/``load_snapshot``/``prune_snapshots``, so loading
costs one snapshot read plus the events after it instead of a full replay.

Trust rules (a snapshot may only ever make loading faster, never wrong):

- every snapshot carries a checksum; one that is corrupt or unreadable is
  ignored with a :class:`SnapshotWarning` and the aggregate is rebuilt from
  its events;
- every snapshot carries a fingerprint of the aggregate class layout (type
  name, field names and annotations, ``__snapshot_version__``); a snapshot
  taken under another layout is ignored the same way.  Raise
  ``__snapshot_version__`` when the *meaning* of the state changes without its
  fields changing (e.g. an apply method is fixed);
- a state that does not survive the JSON round trip exactly (a field whose
  type JSON cannot carry) is never stored: the service checks the round trip
  when it takes the snapshot and refuses, with the reason.

Stored payload layout (all integers big-endian)::

    b"ES" | format (1) | flags (1, bit 0 = zlib) | layout fingerprint (8) | blake2b-16 of body | body

where ``body`` is the aggregate's ``model_dump_json()``, zlib-compressed when
compression is enabled and saves space.
"""

from __future__ import annotations

import hashlib
import time
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .aggregate import Aggregate
from .errors import ConfigurationError, InvalidInputError, SerializationError
from .records import Snapshot, StreamWrite
from .serialization import EventCodec, RecordIdentity

if TYPE_CHECKING:
    from .store import EventStore, SyncEventStore

A = TypeVar("A", bound=Aggregate)

_MAGIC = b"ES"
_FORMAT = 1
_FLAG_ZLIB = 1
_HEADER = 2 + 1 + 1 + 8 + 16


class SnapshotWarning(UserWarning):
    """A stored snapshot was not used (corrupt, other class layout, …); events were replayed."""


@dataclass(frozen=True)
class SnapshotConfig:
    """When and how snapshots are taken.

    ``snapshot_frequency``: take a snapshot automatically each time a save
    carries an aggregate across a multiple of this many events (0 = only
    explicit ``create_snapshot`` calls).  ``compression_enabled``: zlib the
    state (kept only when it is smaller).  ``cleanup_enabled``/``max_snapshots``:
    keep only the newest ``max_snapshots`` per aggregate.
    """

    snapshot_frequency: int = 100
    compression_enabled: bool = True
    cleanup_enabled: bool = True
    max_snapshots: int = 5
    compression_level: int = 6

    def __post_init__(self) -> None:
        for name in ("snapshot_frequency", "max_snapshots"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigurationError(
                    f"SnapshotConfig {name}={v!r} is invalid; give a non-negative integer"
                )
        if self.cleanup_enabled and self.max_snapshots < 1:
            raise ConfigurationError(
                f"SnapshotConfig max_snapshots={self.max_snapshots!r} with cleanup_enabled=True "
                "would delete every snapshot; give max_snapshots >= 1 or cleanup_enabled=False"
            )
        if not (isinstance(self.compression_level, int) and -1 <= self.compression_level <= 9):
            raise ConfigurationError(
                f"SnapshotConfig compression_level={self.compression_level!r} is invalid; "
                "give -1 (zlib default) or 0..9"
            )


def layout_fingerprint(cls: type[Aggregate]) -> bytes:
    """8 bytes that change when the class's stored type, fields or ``__snapshot_version__`` change."""
    cached = cls.__dict__.get("__snapshot_fingerprint__")
    if cached is not None:
        return cached
    parts = [cls.__aggregate_type__, str(getattr(cls, "__snapshot_version__", 1))]
    for name, info in cls.model_fields.items():
        parts.append(f"{name}:{info.annotation!r}")
    digest = hashlib.blake2b("\n".join(parts).encode(), digest_size=8).digest()
    cls.__snapshot_fingerprint__ = digest  # type: ignore[attr-defined]  # per class
    return digest


def _checksum(flags: int, fingerprint: bytes, body: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(bytes((_FORMAT, flags)))
    h.update(fingerprint)
    h.update(body)
    return h.digest()


def integrity_problem(payload: bytes) -> str | None:
    """Why an unprotected snapshot payload is unreadable (format, checksum), or None.

    Needs no aggregate class: ``eventuali verify`` checks stored snapshots with it.
    """
    if len(payload) < _HEADER or payload[:2] != _MAGIC or payload[2] != _FORMAT:
        return "is not in a format this version reads"
    if _checksum(payload[3], payload[4:12], payload[28:]) != payload[12:28]:
        return "fails its checksum (corrupt)"
    return None


_PROTECTED = b"\xffSP"  # then one byte: how many payload transforms wrap the snapshot
_SNAPSHOT_EVENT_ID = b"eventuali-snapsh"  # the event id bound as associated data (16 bytes)


def protect(payload: bytes, codec: EventCodec, stream_id: str, version: int) -> bytes:
    """Run a snapshot payload through the store's payload transforms (encryption).

    A snapshot holds the aggregate's whole state, so a store that encrypts its
    events must not write that state in clear text.  The identity bound is the
    stream and version, so a snapshot moved to another stream fails to decrypt.
    """
    if not codec.transforms:
        return payload
    ident = RecordIdentity(_SNAPSHOT_EVENT_ID, stream_id, version)
    return _PROTECTED + bytes((len(codec.transforms),)) + codec.wrap(payload, ident)


def unprotect(payload: bytes, codec: EventCodec, stream_id: str, version: int) -> bytes:
    """Undo :func:`protect` (a payload written without transforms is returned as it is)."""
    if payload[: len(_PROTECTED)] != _PROTECTED or len(payload) <= len(_PROTECTED):
        return payload
    layers = payload[len(_PROTECTED)]
    ident = RecordIdentity(_SNAPSHOT_EVENT_ID, stream_id, version)
    return codec.unwrap(payload[len(_PROTECTED) + 1 :], ident, layers)


class SnapshotCodec:
    """Encodes aggregates into snapshot payloads and back, enforcing the trust rules."""

    def __init__(self, config: SnapshotConfig) -> None:
        self.config = config
        self.raw_bytes = 0
        """Total JSON bytes of the snapshots encoded so far (for the compression ratio)."""
        self.stored_bytes = 0
        """Total stored payload bytes of those snapshots."""

    def encode(self, aggregate: Aggregate) -> Snapshot:
        cls = type(aggregate)
        if aggregate.has_uncommitted_events():
            raise InvalidInputError(
                f"{cls.__name__} {aggregate.id!r} has unsaved events; a snapshot must match the "
                "stored stream: save the aggregate first, then snapshot it"
            )
        if aggregate.version < 1:
            raise InvalidInputError(
                f"{cls.__name__} {aggregate.id!r} is at version {aggregate.version}; only an "
                "aggregate with stored events can be snapshotted"
            )
        try:
            body = aggregate.model_dump_json().encode()
        except Exception as exc:  # pydantic raises several types for unserializable values
            raise SerializationError(
                f"{cls.__name__} {aggregate.id!r} cannot be snapshotted: its state does not "
                f"serialize to JSON ({exc}); make every field and extra attribute JSON-serializable"
            ) from exc
        restored = self._restore(cls, body)
        if restored.__dict__ != aggregate.__dict__ or restored.__pydantic_extra__ != aggregate.__pydantic_extra__:
            diff = sorted(
                k for k in set(aggregate.__dict__) | set(aggregate.__pydantic_extra__ or {})
                if getattr(restored, k, None) != getattr(aggregate, k, None)
            )
            raise SerializationError(
                f"{cls.__name__} {aggregate.id!r} cannot be snapshotted: attribute(s) {diff} do not "
                "come back equal from JSON, so a snapshot would load a different state; declare "
                "them as typed fields (e.g. set[str] rather than an untyped extra) or exclude them"
            )
        raw = len(body)
        flags = 0
        if self.config.compression_enabled:
            packed = zlib.compress(body, self.config.compression_level)
            if len(packed) < len(body):
                body, flags = packed, _FLAG_ZLIB
        fp = layout_fingerprint(cls)
        payload = _MAGIC + bytes((_FORMAT, flags)) + fp + _checksum(flags, fp, body) + body
        self.raw_bytes += raw
        self.stored_bytes += len(payload)
        return Snapshot(
            aggregate.id,
            aggregate.version,
            int(getattr(cls, "__snapshot_version__", 1)),
            time.time_ns() // 1000,
            payload,
        )

    @staticmethod
    def protected(snap: Snapshot, codec: EventCodec) -> Snapshot:
        """``snap`` as it is stored: through the store's payload transforms, if any."""
        return snap._replace(payload=protect(snap.payload, codec, snap.stream_id, snap.version))

    @staticmethod
    def unprotected(snap: Snapshot | None, codec: EventCodec) -> Snapshot | None:
        """A stored snapshot with the transforms undone; None (with a warning) if they fail."""
        if snap is None:
            return None
        try:
            return snap._replace(payload=unprotect(snap.payload, codec, snap.stream_id, snap.version))
        except SerializationError as exc:  # wrong/missing key, tampered ciphertext
            _ignore(
                f"snapshot of {snap.stream_id!r} at version {snap.version} cannot be decrypted ({exc})"
            )
            return None

    @staticmethod
    def _restore(cls: type[A], body: bytes) -> A:
        return cls.model_validate_json(body)

    def decode(self, cls: type[A], aggregate_id: str, snap: Snapshot) -> A | None:
        """The aggregate stored in ``snap``, or None (with a warning) when it must not be used."""
        where = f"snapshot of {cls.__name__} {aggregate_id!r} at version {snap.version}"
        payload = snap.payload
        problem = integrity_problem(payload)
        if problem is not None:
            _ignore(f"{where} {problem}")
            return None
        flags, fp, body = payload[3], payload[4:12], payload[28:]
        if fp != layout_fingerprint(cls) or snap.schema_version != int(
            getattr(cls, "__snapshot_version__", 1)
        ):
            _ignore(
                f"{where} was taken under another layout of the class (fields or "
                "__snapshot_version__ changed)"
            )
            return None
        try:
            if flags & _FLAG_ZLIB:
                body = zlib.decompress(body)
            agg = self._restore(cls, body)
        except Exception as exc:  # noqa: BLE001 - any decoding failure means: do not use it
            _ignore(f"{where} cannot be read ({exc})")
            return None
        if agg.id != aggregate_id or agg.version != snap.version:
            _ignore(f"{where} holds {agg.id!r} at version {agg.version}")
            return None
        return agg

    @property
    def compression_ratio(self) -> float | None:
        """Stored bytes / JSON bytes over every snapshot encoded so far (None before the first)."""
        return self.stored_bytes / self.raw_bytes if self.raw_bytes else None


def _ignore(reason: str) -> None:
    warnings.warn(f"{reason}; ignoring it and replaying the events", SnapshotWarning, stacklevel=4)
    return None


def _crossed(writes: Sequence[StreamWrite], frequency: int) -> dict[str, int]:
    """stream id -> new version, for the writes that cross a multiple of ``frequency``."""
    out = {}
    for w in writes:
        old = w.expected_version
        new = old + len(w.records)
        if new // frequency > old // frequency:
            out[w.stream_id] = new
    return out


def _check_store(store: Any, want_async: bool) -> None:
    from .store import EventStore, SyncEventStore

    if want_async and isinstance(store, SyncEventStore):
        raise ConfigurationError(
            "SnapshotService(store) got a SyncEventStore; use SyncSnapshotService(store) for the "
            "synchronous store, or SnapshotService with an EventStore"
        )
    if not want_async and isinstance(store, EventStore):
        raise ConfigurationError(
            "SyncSnapshotService(store) got an async EventStore; use SnapshotService(store)"
        )
    if not isinstance(store, (EventStore, SyncEventStore)):
        raise ConfigurationError(f"expected an EventStore, got {type(store).__name__} {store!r}")
    if "snapshots" not in store.backend.capabilities:
        raise ConfigurationError(
            f"the engine of {store!r} does not declare the 'snapshots' capability; snapshots "
            "need a backend that stores them"
        )


class SnapshotService:
    """Snapshots for an async :class:`~eventuali.EventStore`.

    Creating the service with ``snapshot_frequency > 0`` installs a hook on the
    store so that ``store.save`` snapshots an aggregate each time it crosses a
    multiple of the frequency (a failing automatic snapshot only warns: the
    events are already saved).
    """

    def __init__(self, store: EventStore, config: SnapshotConfig | None = None) -> None:
        _check_store(store, want_async=True)
        self.store = store
        self.config = config or SnapshotConfig()
        self.codec = SnapshotCodec(self.config)
        if self.config.snapshot_frequency:
            store._snapshot_hook = self._after_save

    async def create_snapshot(self, aggregate: Aggregate) -> Snapshot:
        """Store a snapshot of ``aggregate`` (which must be saved: no pending events)."""
        snap = self.codec.encode(aggregate)
        backend = self.store.backend
        await backend.save_snapshot(self.codec.protected(snap, self.store.codec))
        if self.config.cleanup_enabled:
            await backend.prune_snapshots(snap.stream_id, self.config.max_snapshots)
        return snap

    async def load_with_snapshot(self, aggregate_class: type[A], aggregate_id: str) -> A | None:
        """The aggregate from its newest usable snapshot plus the events after it."""
        backend = self.store.backend
        snap = self.codec.unprotected(await backend.load_snapshot(aggregate_id), self.store.codec)
        agg = self.codec.decode(aggregate_class, aggregate_id, snap) if snap is not None else None
        if agg is None or snap is None:
            return await self.store.load(aggregate_class, aggregate_id)
        records = await backend.read_stream(aggregate_id, snap.version + 1)
        done = _continue(self.store, agg, records)
        return done if done is not None else await self.store.load(aggregate_class, aggregate_id)

    load = load_with_snapshot

    async def _after_save(self, aggregates: Sequence[Aggregate], writes: Sequence[StreamWrite]) -> None:
        due = _crossed(writes, self.config.snapshot_frequency)
        if not due:
            return
        for agg in aggregates:
            if due.get(agg.id) == agg.version:
                try:
                    await self.create_snapshot(agg)
                except Exception as exc:  # noqa: BLE001 - the save itself succeeded
                    warnings.warn(
                        f"automatic snapshot of {type(agg).__name__} {agg.id!r} at version "
                        f"{agg.version} failed: {exc}", SnapshotWarning, stacklevel=3,
                    )

    def detach(self) -> None:
        """Stop taking automatic snapshots on save."""
        if self.store._snapshot_hook == self._after_save:
            self.store._snapshot_hook = None


class SyncSnapshotService:
    """The synchronous twin of :class:`SnapshotService`, for :class:`~eventuali.SyncEventStore`."""

    def __init__(self, store: SyncEventStore, config: SnapshotConfig | None = None) -> None:
        _check_store(store, want_async=False)
        self.store = store
        self.config = config or SnapshotConfig()
        self.codec = SnapshotCodec(self.config)
        if self.config.snapshot_frequency:
            store._snapshot_hook = self._after_save

    def create_snapshot(self, aggregate: Aggregate) -> Snapshot:
        snap = self.codec.encode(aggregate)
        backend = self.store.backend
        backend.save_snapshot(self.codec.protected(snap, self.store.codec))
        if self.config.cleanup_enabled:
            backend.prune_snapshots(snap.stream_id, self.config.max_snapshots)
        return snap

    def load_with_snapshot(self, aggregate_class: type[A], aggregate_id: str) -> A | None:
        backend = self.store.backend
        snap = self.codec.unprotected(backend.load_snapshot(aggregate_id), self.store.codec)
        agg = self.codec.decode(aggregate_class, aggregate_id, snap) if snap is not None else None
        if agg is None or snap is None:
            return self.store.load(aggregate_class, aggregate_id)
        done = _continue(self.store, agg, backend.read_stream(aggregate_id, snap.version + 1))
        return done if done is not None else self.store.load(aggregate_class, aggregate_id)

    load = load_with_snapshot

    def _after_save(self, aggregates: Sequence[Aggregate], writes: Sequence[StreamWrite]) -> None:
        due = _crossed(writes, self.config.snapshot_frequency)
        if not due:
            return
        for agg in aggregates:
            if due.get(agg.id) == agg.version:
                try:
                    self.create_snapshot(agg)
                except Exception as exc:  # noqa: BLE001 - the save itself succeeded
                    warnings.warn(
                        f"automatic snapshot of {type(agg).__name__} {agg.id!r} at version "
                        f"{agg.version} failed: {exc}", SnapshotWarning, stacklevel=3,
                    )

    def detach(self) -> None:
        if self.store._snapshot_hook == self._after_save:
            self.store._snapshot_hook = None


def _continue(store: Any, agg: A, records: list) -> A | None:
    """Apply the records after the snapshot; None (caller replays everything) on a gap."""
    if records:
        if records[0].version != agg.version + 1:
            # The stream does not continue where the snapshot ends: do not guess.
            _ignore(f"snapshot of {agg.id!r} at version {agg.version} does not join the stream")
            return None
        agg._replay_many(map(store.codec.decode, records))
        agg.__dict__["version"] = records[-1].version
    return agg
