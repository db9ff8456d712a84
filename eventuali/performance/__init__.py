"""Performance tools: aggregate caching (``CacheManager``, ``CachedEventStore``) and more.

Names are imported on first use (module ``__getattr__``), so ``import
eventuali.performance`` stays cheap and optional dependencies (``redis``) load
only for the feature that needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CacheManager": ".caching",
    "CachedEventStore": ".caching",
    "CacheStats": ".caching",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventuali.performance' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
