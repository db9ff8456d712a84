"""A store's identity: a random id kept in the store itself, under a reserved checkpoint.

Anything that remembers facts about a store outside it (the Redis cache of
:mod:`eventuali.performance.caching`) must key them by *which database* they
came from, not by its URL: a database deleted and created again at the same
path, or another database behind the same URL, is a different store.  The id
is written into the store on first use, through the ordinary
``get_checkpoint``/``set_checkpoint`` calls of the Backend protocol, so every
engine (the C one and third-party ones included) keeps it without code of its
own: it lives and dies with the store's data.

Rules (see docs/limits.md):

* The checkpoint name :data:`STORE_ID_CHECKPOINT` is reserved.
* A copy of the database (a backup restored, a file copied) carries the id
  along: it *is* the same store as far as the id can tell.  After restoring a
  backup over a store that a cache has seen, clear that cache or give the
  store a new id with :func:`reset_store_id`; do the same for a copy that will
  live on beside its original.
* Two processes that open a brand-new store at the same moment may each write
  an id; the last one stays.  The other process then keys its cache entries
  under an id no other store has: it misses more, it never reads wrong data.
"""

from __future__ import annotations

import secrets
from typing import Any

STORE_ID_CHECKPOINT = "$eventuali.store-id"
"""Reserved checkpoint name under which a store keeps its id (a random positive int64)."""


def _new_value() -> int:
    return secrets.randbits(62) + 1  # positive and non-zero: every engine's checkpoint range


def _format(value: int) -> str:
    return f"{value:016x}"


async def store_id(backend: Any) -> str | None:
    """The id of the store behind the async ``backend``, written on first use.

    ``None`` when the engine keeps no checkpoints (capability ``checkpoints``).
    Raises what the engine raises when the store cannot be written (read-only).
    """
    if "checkpoints" not in backend.capabilities:
        return None
    value = await backend.get_checkpoint(STORE_ID_CHECKPOINT)
    if value is None:
        await backend.set_checkpoint(STORE_ID_CHECKPOINT, _new_value())
        value = await backend.get_checkpoint(STORE_ID_CHECKPOINT)  # a racing writer may have won
    return _format(value)


def sync_store_id(backend: Any) -> str | None:
    """:func:`store_id` for a synchronous backend."""
    if "checkpoints" not in backend.capabilities:
        return None
    value = backend.get_checkpoint(STORE_ID_CHECKPOINT)
    if value is None:
        backend.set_checkpoint(STORE_ID_CHECKPOINT, _new_value())
        value = backend.get_checkpoint(STORE_ID_CHECKPOINT)
    return _format(value)


async def reset_store_id(backend: Any) -> str:
    """Give the store behind the async ``backend`` a new id (after a restore, for a copy)."""
    value = _new_value()
    await backend.set_checkpoint(STORE_ID_CHECKPOINT, value)
    return _format(value)
