"""Reading a store's global feed and showing one record as JSON, for people and scripts.

The view of a record hides nothing: every column, the metadata, and the payload
decoded to JSON (through the event's class when it is registered, so upcasters
run; as plain JSON otherwise).  A payload that does not decode - not JSON,
encrypted without the keys, corrupt - is shown as base64 with the reason.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Generator, Iterator
from typing import Any

from ..compression import ZlibCompression
from ..errors import ConfigurationError, EventualiError
from ..protocol import Backend
from ..records import ReadFilter, Record
from ..serialization import AnyPayloadTransform, EventCodec, RecordIdentity, from_micros

PAGE = 1_000
"""Records read per ``read_all`` call while paging."""


def reading_codec(keys_env: str | None = None) -> EventCodec:
    """A codec that can undo every transform the library writes: zlib, and AES-GCM given keys.

    ``keys_env`` names the environment variable that holds the encryption keys
    (the format of ``KeyManager.from_env``); without it encrypted payloads are
    shown raw.
    """
    transforms: list[AnyPayloadTransform] = [ZlibCompression()]
    if keys_env:
        if keys_env not in os.environ:
            raise ConfigurationError(
                f"--keys-env {keys_env}: no such environment variable; export the store's "
                "encryption keys in it (the format KeyManager.from_env reads)"
            )
        from ..security import EventEncryption, KeyManager

        transforms.append(EventEncryption(KeyManager.from_env(keys_env)))
    return EventCodec(transforms=transforms)


def iter_records(
    backend: Backend,
    from_position: int = 1,
    filter: ReadFilter | None = None,
    page: int = PAGE,
    to_position: int | None = None,
) -> Iterator[Record]:
    """Every record from ``from_position`` (up to ``to_position``), in global order, paged."""
    pos = max(from_position, 1)
    while True:
        batch = backend.read_all(pos, page, filter)
        for r in batch:
            if to_position is not None and r.position > to_position:
                return
            yield r
        if len(batch) < page:
            return
        pos = batch[-1].position + 1


def follow(
    backend: Backend,
    from_position: int,
    filter: ReadFilter | None = None,
    wait: float = 1.0,
    stop: Any = None,
) -> Generator[Record | None, None, None]:
    """The feed from ``from_position`` on, forever: records as they commit.

    Waits with the store's own wake-up (``wait_for``: LISTEN/NOTIFY on
    PostgreSQL, a condition in process, ...).  Yields ``None`` after each wait
    that brought nothing, so a caller can notice ``stop`` or a gone client;
    ``stop()`` returning true ends the feed.
    """
    pos = max(from_position, 1)
    while stop is None or not stop():
        head = backend.head()
        batch = backend.read_all(pos, PAGE, filter)
        yield from batch
        if batch:
            pos = batch[-1].position + 1
        if len(batch) < PAGE:
            # Every record at or below ``head`` was visible to that read, so the
            # filtered-out ones need not be scanned again.
            pos = max(pos, head + 1)
            if backend.wait_for(pos - 1, wait) <= pos - 1:
                yield None


def event_uuid(event_id: bytes) -> str:
    return str(uuid.UUID(bytes=event_id)) if len(event_id) == 16 else event_id.hex()


def iso(micros: int) -> str:
    return from_micros(micros).isoformat()


def decode_metadata(metadata: bytes) -> Any:
    """Metadata as JSON (``{}`` when empty); raises ``ValueError`` when it is not JSON."""
    return json.loads(metadata) if metadata else {}


def record_view(record: Record, codec: EventCodec) -> dict[str, Any]:
    """Everything in ``record`` as one JSON-ready dict (see the module docstring)."""
    view: dict[str, Any] = {
        "position": record.position,
        "event_id": event_uuid(record.event_id),
        "stream_id": record.stream_id,
        "stream_type": record.stream_type,
        "version": record.version,
        "event_type": record.event_type,
        "schema_version": record.schema_version,
        "timestamp": iso(record.timestamp),
        "tenant": record.tenant,
    }
    try:
        view["metadata"] = decode_metadata(record.metadata)
    except ValueError:
        view["metadata_b64"] = base64.b64encode(record.metadata).decode()
    cls = codec.events.resolve(record.event_type)
    try:
        if cls is not None:
            event = codec.decode(record)
            view["decoded_as"] = f"{type(event).__module__}.{type(event).__qualname__}"
            view["data"] = event.model_dump(mode="json")
        else:
            identity = RecordIdentity(record.event_id, record.stream_id, record.version)
            view["data"] = json.loads(codec.unwrap(record.payload, identity))
    except (EventualiError, ValueError) as exc:
        view["payload_b64"] = base64.b64encode(record.payload).decode()
        view["undecoded"] = str(exc)
    return view
