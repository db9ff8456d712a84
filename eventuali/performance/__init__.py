"""Performance tools: read replicas (``ReplicaManager``) and, beside it, batching and caching.

Imports are lazy: ``from eventuali.performance import ReplicaManager`` loads
only the replica module (and psycopg only when a manager connects), so adding
a tool here costs nothing to users of the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "BatchProcessor": ".batch",
    "BatchResult": ".batch",
    "BatchSaveError": ".batch",
    "FailedEvent": ".batch",
    "CacheManager": ".caching",
    "CachedEventStore": ".caching",
    "CacheStats": ".caching",
    "ReplicaManager": ".replicas",
    "ReplicaStatus": ".replicas",
    "SyncReplicaManager": ".replicas",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'eventuali.performance' has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
