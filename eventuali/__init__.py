"""eventuali: fast, trustworthy event sourcing for Python.

The public names live here; submodules hold one concept each
(``event``, ``aggregate``, ``store``, ``serialization``, ``registry``, …).
"""

from __future__ import annotations

from .aggregate import Aggregate
from .errors import (
    BackendNotFoundError,
    BackendUnavailableError,
    ConfigurationError,
    DuplicateEventError,
    EventualiError,
    InvalidInputError,
    MissingApplyMethodError,
    NotAnEventualiStoreError,
    OptimisticConcurrencyError,
    SchemaVersionError,
    SerializationError,
    StorageError,
    StoreClosedError,
    StreamDeletedError,
    TransientStorageError,
    UnknownSchemeError,
)
from .event import Event, UnknownEvent, register_event, registry, upcaster
from .records import ANY, NO_STREAM, STREAM_EXISTS
from .serialization import EventCodec
from .store import EventStore, StoredEvent, SyncEventStore

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "Aggregate",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "ConfigurationError",
    "DuplicateEventError",
    "Event",
    "EventCodec",
    "EventStore",
    "EventualiError",
    "InvalidInputError",
    "MissingApplyMethodError",
    "NotAnEventualiStoreError",
    "OptimisticConcurrencyError",
    "SchemaVersionError",
    "SerializationError",
    "StorageError",
    "StoreClosedError",
    "StoredEvent",
    "StreamDeletedError",
    "SyncEventStore",
    "TransientStorageError",
    "UnknownEvent",
    "UnknownSchemeError",
    "register_event",
    "registry",
    "upcaster",
]
