"""eventuali: fast, trustworthy event sourcing for Python.

The public names live here; submodules hold one concept each
(``event``, ``aggregate``, ``store``, ``serialization``, ``registry``, …).
"""

from __future__ import annotations

from ._version import __version__ as __version__
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
from .event import Event, UnknownEvent, register_event, upcaster
from .event import registry as event_registry
from .projections import ParkedEvent, Projection, ReadModel, StoredProjection
from .records import ANY, NO_STREAM, STREAM_EXISTS
from .serialization import EventCodec
from .snapshots import SnapshotConfig, SnapshotService, SnapshotWarning, SyncSnapshotService
from .store import EventStore, StoredEvent, SyncEventStore
from .streaming import EventStreamer, Subscription

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
    "EventStreamer",
    "EventualiError",
    "InvalidInputError",
    "MissingApplyMethodError",
    "NotAnEventualiStoreError",
    "OptimisticConcurrencyError",
    "ParkedEvent",
    "Projection",
    "ReadModel",
    "SchemaVersionError",
    "SerializationError",
    "SnapshotConfig",
    "SnapshotService",
    "SnapshotWarning",
    "StorageError",
    "StoreClosedError",
    "StoredEvent",
    "StoredProjection",
    "StreamDeletedError",
    "Subscription",
    "SyncEventStore",
    "SyncSnapshotService",
    "TransientStorageError",
    "UnknownEvent",
    "UnknownSchemeError",
    "register_event",
    "event_registry",
    "upcaster",
]


def __getattr__(name: str):
    # Optional features load on first use, so ``import eventuali`` never pulls
    # in redis or prometheus-client.
    if name == "CachedEventStore":
        from .performance.caching import CachedEventStore

        return CachedEventStore
    raise AttributeError(f"module 'eventuali' has no attribute {name!r}")

