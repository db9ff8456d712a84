"""``EventCodec``: events to records and back, with upcasting and payload transforms.

The payload is the event's full JSON (envelope included): loading is then a
single ``model_validate_json`` call, which is the cheapest way pydantic can
rebuild an event with its UUIDs and datetimes.  Measured with callgrind
(instructions per event, deterministic on a busy machine): excluding the
envelope from the JSON and rebuilding it from the columns costs 7% more to
encode and 34% more to decode than the full JSON, because pydantic's
``exclude`` path and Python-level UUID/datetime construction cost more than
serializing those fields in Rust.  The
record columns repeat the envelope for indexing and filtering.

Payload transforms (compression, encryption) wrap the JSON; each transform
prefixes its output with a one-byte tag, so a store can hold a mix of plain and
transformed payloads (JSON always starts with ``{``) and a reader knows what to
undo without any setting.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, Protocol

from pydantic import ValidationError

from .errors import ClearTextRecordError, ConfigurationError, SerializationError
from .event import Event, EventRegistry, UnknownEvent, registry
from .ids import uuid7
from .payload_limits import check_payload
from .personal import PERSONAL_MARK, KeysNeeded, personal_spec
from .records import NewRecord, Record

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)

class RecordIdentity(NamedTuple):
    """Which stored event a payload belongs to (what encryption binds as associated data).

    ``version`` is ``None`` when the event was appended without a known
    version (bare events saved at the end of a stream): it is assigned by the
    backend after the payload is built, so it cannot be bound then.
    """

    event_id: bytes
    stream_id: str
    version: int | None


class PayloadTransform(Protocol):
    """Something that wraps payload bytes (compression, encryption).

    A transform whose ``binds_identity`` attribute is true gets the record's
    :class:`RecordIdentity` as a second argument to ``encode``/``decode``, so
    that it can tie its output to that one event (authenticated encryption
    binds it as associated data).
    """

    tag: bytes
    """One byte, not ``{``, that starts every output of :meth:`encode`."""

    def encode(self, data: bytes) -> bytes: ...

    def decode(self, data: bytes) -> bytes: ...


class BoundPayloadTransform(Protocol):
    """A :class:`PayloadTransform` that binds each output to its record's identity."""

    tag: bytes
    binds_identity: bool
    """True: ``encode``/``decode`` take the record's :class:`RecordIdentity`."""

    def encode(self, data: bytes, identity: RecordIdentity) -> bytes: ...

    def decode(self, data: bytes, identity: RecordIdentity) -> bytes: ...


AnyPayloadTransform = PayloadTransform | BoundPayloadTransform


def _metadata_identity(event_id: bytes, stream_id: str, version: int | None) -> RecordIdentity:
    """What a record's encrypted metadata is bound to: its event, never its payload's slot.

    The NUL cannot occur in a stream id, so this identity is nobody's payload identity.
    """
    return RecordIdentity(event_id, stream_id + "\x00metadata", version)


def to_micros(ts: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (naive = UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return (ts - _EPOCH) // _US


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class EventCodec:
    """Turns events into :class:`NewRecord` and records back into events."""

    def __init__(
        self,
        events: EventRegistry | None = None,
        transforms: Sequence[AnyPayloadTransform] = (),
        *,
        strict: bool | None = None,
        personal: Any = None,
    ) -> None:
        self.events = events or registry
        self._strict = strict
        self.personal = personal
        """A :class:`~eventuali.security.PersonalData`: encrypt personal fields per subject."""
        self._ring: Any = None
        self.transforms: list[AnyPayloadTransform] = []
        self._by_tag: dict[bytes, AnyPayloadTransform] = {}
        self._binds_identity: set[bytes] = set()
        for t in transforms:
            self.add_transform(t)

    # --- configuration --------------------------------------------------------

    def add_transform(self, transform: AnyPayloadTransform) -> None:
        """Apply ``transform`` to every payload written from now on (outermost last)."""
        tag = transform.tag
        if len(tag) != 1 or tag == b"{":
            raise ConfigurationError(
                f"payload transform {transform!r} has tag {tag!r}; a tag is one byte other than b'{{'"
            )
        if tag in self._by_tag and self._by_tag[tag] is not transform:
            raise ConfigurationError(f"two payload transforms use tag {tag!r}; give each its own byte")
        self.transforms.append(transform)
        self._by_tag[tag] = transform
        if getattr(transform, "binds_identity", False):
            self._binds_identity.add(tag)

    def bound(self, ring: Any) -> EventCodec:
        """A copy of this codec that uses one store's data keys (``ring``); same transforms."""
        c = copy.copy(self)
        c._ring = ring
        return c

    @property
    def encrypts(self) -> bool:
        """True when a transform binds each record's identity (authenticated encryption)."""
        return bool(self._binds_identity)

    @property
    def strict(self) -> bool:
        """Refuse clear-text records: the default (``strict=None``) is on exactly when encrypting.

        A strict codec loads only records whose outermost layer is encryption,
        and whose metadata, if any, is encrypted too; anything else raises
        :class:`~eventuali.errors.ClearTextRecordError`.  ``strict=False`` reads
        stores that hold records written before encryption was turned on.
        """
        return self._strict if self._strict is not None else bool(self._binds_identity)

    # --- writing --------------------------------------------------------------

    @staticmethod
    def stamp(event: Event, aggregate_id: str, aggregate_type: str, version: int) -> None:
        """Fill the envelope of a new event (ids and time only where still unset)."""
        d = event.__dict__
        # Direct __dict__ writes: the values are of the right type by
        # construction, and validated assignment would cost more than the
        # rest of apply().  pydantic v2 keeps field values in __dict__.
        if d["event_id"] is None:
            d["event_id"] = uuid7()
        if d["timestamp"] is None:
            d["timestamp"] = datetime.now(timezone.utc)
        cls = type(event)
        if d["event_type"] is None or not isinstance(event, UnknownEvent):
            d["event_type"] = cls.__event_type__
        if d["event_version"] is None:
            d["event_version"] = cls.__event_version__
        d["aggregate_id"] = aggregate_id
        d["aggregate_type"] = aggregate_type
        d["aggregate_version"] = version

    def _batch(self) -> Any:
        """The outermost transform when it encrypts whole batches (``encrypt_many``/``decrypt_many``)."""
        t = self.transforms[-1] if self.transforms else None
        if t is None or self._binds_identity != {t.tag}:
            return None
        return t if hasattr(t, "encrypt_many") and hasattr(t, "decrypt_many") else None

    def encode_many(self, events: Sequence[Event]) -> list[NewRecord]:
        """:meth:`encode` for each stamped event; an encryption that takes batches seals them
        all in one call (the same bytes format, fewer calls per event)."""
        batch = self._batch()
        if batch is None or len(events) < 2:
            return [self.encode(e) for e in events]
        records = [self.encode(e, wrap=False) for e in events]
        inner = self.transforms[:-1]
        payloads = []
        for r in records:
            p = r.payload
            for t in inner:
                p = t.tag + t.encode(p)  # type: ignore[call-arg]  # never binding: see _batch
            payloads.append(p)
        # r[0] is the event id's bytes (UUID.bytes is Python code: computed once per event)
        sealed = batch.encrypt_many(payloads, [
            RecordIdentity(r[0], e.__dict__["aggregate_id"], e.__dict__["aggregate_version"])
            for r, e in zip(records, events, strict=True)
        ])
        tag = batch.tag
        return [NewRecord(r[0], r[1], r[2], r[3], r[4], tag + c)
                for r, c in zip(records, sealed, strict=True)]

    def encode(self, event: Event, *, wrap: bool = True) -> NewRecord:
        """The record for a stamped event (``wrap=False``: its payload before the transforms)."""
        d = event.__dict__
        eid = d["event_id"].bytes  # once: UUID.bytes is Python code
        try:
            payload = event.__pydantic_serializer__.to_json(event)
        except Exception as exc:  # pydantic raises PydanticSerializationError and others
            raise SerializationError(
                f"event {type(event).__name__} (aggregate {d['aggregate_id']!r}, version "
                f"{d['aggregate_version']}) cannot be serialized to JSON: {exc}; make every field "
                "a JSON-serializable type (or give it a pydantic serializer)"
            ) from exc
        check_payload(event, payload)  # never store what cannot be read back
        spec = personal_spec(type(event))
        if spec is not None:
            if self._ring is None:
                raise SerializationError(
                    f"event {type(event).__name__} has personal fields {list(spec.fields)}, and "
                    "this codec does not protect personal data, so they would be stored in clear; "
                    "open the store with codec=encrypted_codec(keys) (or "
                    "EventCodec(personal=PersonalData(keys)))"
                )
            payload = self._ring.conceal(payload, spec, eid, d["aggregate_id"])
        if self.transforms and wrap:
            payload = self.wrap(
                payload, RecordIdentity(eid, d["aggregate_id"], d["aggregate_version"])
            )
        if d["causation_id"] is None and d["correlation_id"] is None and d["user_id"] is None:
            metadata = b""
        else:
            metadata = json.dumps(
                {
                    k: str(d[k])
                    for k in ("causation_id", "correlation_id", "user_id")
                    if d[k] is not None
                },
                separators=(",", ":"),
            ).encode()
            if self._binds_identity:
                # The column only repeats the envelope (the payload has it all);
                # on an encrypted store it is encrypted too, bound to its own identity.
                metadata = self.wrap(
                    metadata, _metadata_identity(eid, d["aggregate_id"], d["aggregate_version"])
                )
        return NewRecord(
            eid,
            d["event_type"],
            d["event_version"],
            to_micros(d["timestamp"]),
            metadata,
            payload,
        )

    def wrap(self, payload: bytes, identity: RecordIdentity) -> bytes:
        """Apply the payload transforms to ``payload`` (JSON); :meth:`unwrap` undoes it.

        Also used for other state that must be protected like events
        (snapshots, cached aggregates), each with an identity of its own.
        """
        by_identity = self._binds_identity
        for t in self.transforms:
            if t.tag in by_identity:
                payload = t.tag + t.encode(payload, identity)  # type: ignore[call-arg]
            else:
                payload = t.tag + t.encode(payload)  # type: ignore[call-arg]
        return payload

    # --- reading --------------------------------------------------------------

    def decode_metadata(self, record: Record) -> dict[str, str]:
        """The record's metadata column (causation, correlation, user ids) as a dict.

        Decrypts it on an encrypted store; ``{}`` when the record has none.
        """
        meta = record.metadata
        if not meta:
            return {}
        if meta[:1] != b"{":
            meta = self.unwrap(meta, _metadata_identity(record.event_id, record.stream_id, record.version))
        elif self.strict:
            raise self._clear_error(record, "metadata")
        try:
            data = json.loads(meta)
        except ValueError as exc:
            raise SerializationError(
                f"metadata of the event at position {record.position} is not JSON: {exc}"
            ) from exc
        return data if isinstance(data, dict) else {}

    def _clear_error(self, record: Record, what: str) -> ClearTextRecordError:
        return ClearTextRecordError(
            f"the {what} of the event at position {record.position} (stream "
            f"{record.stream_id!r}, version {record.version}, type {record.event_type!r}) is "
            "stored in clear text, and this codec encrypts and is strict; if the store holds "
            "events written before encryption was turned on, open it with strict=False "
            "(encrypted_codec(keys, strict=False)) and migrate them (docs/security.md, "
            "'Strict mode'); otherwise someone wrote this record without the key"
        )

    def unwrap(
        self, payload: bytes, identity: RecordIdentity | None = None, layers: int | None = None
    ) -> bytes:
        """Undo the payload transforms (by tag) and return the JSON bytes.

        ``identity`` is the stored record's identity; transforms that bind it
        (encryption) need it and refuse to decode without it.  Without
        ``layers`` it unwraps until the JSON's ``{``; a payload that is not
        JSON (a snapshot) says how many layers it has.
        """
        while payload and (payload[:1] != b"{" if layers is None else layers > 0):
            if layers is not None:
                layers -= 1
            tag = payload[:1]
            t = self._by_tag.get(tag)
            if t is None:
                raise SerializationError(
                    f"stored payload starts with tag {tag!r}, and no payload transform "
                    "with that tag is configured; configure the same encryption/compression "
                    "that wrote it"
                )
            if tag in self._binds_identity:
                if identity is None:
                    raise SerializationError(
                        f"payload transform {t!r} binds the record's identity and cannot "
                        "decode a bare payload; decode the whole record with codec.decode(record)"
                    )
                payload = t.decode(payload[1:], identity)  # type: ignore[call-arg]
            else:
                payload = t.decode(payload[1:])  # type: ignore[call-arg]
        return payload

    def decode(self, record: Record) -> Event:
        """The event stored in ``record``, upcast to its class's current version.

        An event appended without a version (``save_events`` at the stream's
        end) gets the version the store gave it.
        """
        event = self._decode(record)
        if event.__dict__["aggregate_version"] is None:
            event.__dict__["aggregate_version"] = record.version
        return event

    def _decode(self, record: Record, opened: bytes | None = None) -> Event:
        """``opened``: the payload already decrypted (and authenticated) by a batch."""
        payload = record.payload if opened is None else opened
        if self._binds_identity and self.strict:
            # The outermost layer must be one that authenticates the record.
            if opened is None and payload[:1] not in self._binds_identity:
                raise self._clear_error(record, "payload")
            if record.metadata[:1] == b"{":
                raise self._clear_error(record, "metadata")
        if payload[:1] != b"{":
            payload = self.unwrap(
                payload, RecordIdentity(record.event_id, record.stream_id, record.version)
            )
        cls = self.events.resolve(record.event_type)
        data: Any = None
        if self._ring is not None and PERSONAL_MARK in payload:
            try:
                data = json.loads(payload)
            except ValueError:
                data = None  # reported below, with the record's coordinates
            else:
                self._ring.reveal(data, record.event_id)
        try:
            if data is None and cls is not None and record.schema_version == cls.__event_version__:
                return cls.model_validate_json(payload)
            if data is None:
                data = json.loads(payload)
            elif cls is not None and record.schema_version == cls.__event_version__:
                return cls.model_validate(data)
            if cls is None:
                data["event_type"] = record.event_type
                return UnknownEvent.model_validate(data)
            data = self.events.upcast(record.event_type, record.schema_version, cls.__event_version__, data)
            data["event_version"] = cls.__event_version__
            return cls.model_validate(data)
        except SerializationError as exc:  # a failing upcaster: say which stored event met it
            raise SerializationError(
                f"stored event at position {record.position} (stream {record.stream_id!r}, "
                f"version {record.version}): {exc}"
            ) from exc
        except (ValidationError, ValueError) as exc:
            raise SerializationError(
                f"stored event at position {record.position} (stream {record.stream_id!r}, "
                f"version {record.version}, type {record.event_type!r}, schema version "
                f"{record.schema_version}) does not load as "
                f"{cls.__name__ if cls else 'UnknownEvent'}: {exc}; if the class changed, "
                "raise __event_version__ and register an upcaster"
            ) from exc

    def decode_many(self, records: Iterable[Record]) -> list[Event]:
        """Decode a batch: the validator is looked up once per (type, schema version).

        Plain payloads of current-version classes go straight to pydantic-core's
        ``validate_json``; anything else (transforms, upcasts, unknown types,
        errors) takes :meth:`decode`, which also words the error precisely.
        """
        out: list[Event] = []
        append = out.append
        validators: dict[tuple[str, int], Any] = {}
        resolve = self.events.resolve
        # A strict codec sends every record through decode(), which checks it;
        # so does a store with data keys, for events with personal fields.
        strict = bool(self._binds_identity) and self.strict
        personal = self._ring is not None
        missing: set[str] = set()
        records = records if isinstance(records, list) else list(records)
        opened = self._open_batch(records)
        for i, r in enumerate(records):
            key = (r.event_type, r.schema_version)
            validate: Any = validators.get(key)
            if validate is None:
                cls = resolve(r.event_type)
                validate = (
                    cls.__pydantic_validator__.validate_json
                    if cls is not None and cls.__event_version__ == r.schema_version
                    and not (personal and personal_spec(cls) is not None)
                    else False
                )
                validators[key] = validate
            pre = opened[i] if opened is not None else None
            payload = r.payload if pre is None else pre
            # A batch-decrypted payload is authenticated: only its metadata is left to check.
            fast = not strict if pre is None else not (strict and r.metadata[:1] == b"{")
            if validate and fast and payload[:1] == b"{":
                try:
                    ev = validate(payload)
                except ValidationError:
                    pass
                else:
                    if ev.__dict__["aggregate_version"] is None:
                        ev.__dict__["aggregate_version"] = r.version
                    append(ev)
                    continue
            try:
                ev = self._decode(r, pre)
                if ev.__dict__["aggregate_version"] is None:
                    ev.__dict__["aggregate_version"] = r.version
                append(ev)
            except KeysNeeded as need:  # collect them all: the store loads them at once
                missing |= need.subjects
        if missing:
            raise KeysNeeded(missing)
        return out

    def _open_batch(self, records: list[Record]) -> list[bytes | None] | None:
        """Decrypt every record the outermost (batch) transform wrote, in one call; the JSON
        per record (None for the others), or None when there is nothing to batch."""
        batch = self._batch()
        if batch is None or len(records) < 2:
            return None
        tag = batch.tag
        idx = [i for i, r in enumerate(records) if r.payload[:1] == tag]
        if len(idx) < 2:
            return None
        mine = [records[i] for i in idx]
        plain = batch.decrypt_many([r.payload[1:] for r in mine],
                                   [RecordIdentity(r.event_id, r.stream_id, r.version) for r in mine])
        if len(self.transforms) > 1:
            plain = [p if p[:1] == b"{" else self.unwrap(p) for p in plain]
        opened: list[bytes | None] = [None] * len(records)
        for i, p in zip(idx, plain, strict=True):
            opened[i] = p
        return opened
