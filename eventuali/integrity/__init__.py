"""Tamper evidence for ``?integrity=chain`` stores: check the hash chain, take and check anchors.

``verify(store)`` returns every problem found (an empty list means intact),
ordered by position, so ``problems[0]`` names the first bad position.
``anchor(store)`` takes an :class:`Anchor` to keep elsewhere;
``verify(store, anchor=a, public_key=k)`` also proves the store still holds
the anchored history (no truncated tail, no rewritten past).  The byte layout
is in :mod:`eventuali.integrity.chain`; docs/integrity.md explains the model.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .anchors import Anchor, AnchorSignatureError
from .chain import (
    GENESIS,
    KIND_DELETE,
    KIND_EVENT,
    KIND_TRUNCATE,
    MODE,
    ChainEntry,
    ChainProblem,
    event_digest,
    link,
    record_digest,
    verify_entries,
)

__all__ = [
    "GENESIS",
    "KIND_DELETE",
    "KIND_EVENT",
    "KIND_TRUNCATE",
    "MODE",
    "Anchor",
    "AnchorSignatureError",
    "ChainEntry",
    "ChainProblem",
    "anchor",
    "event_digest",
    "link",
    "record_digest",
    "verify",
    "verify_entries",
]


def chained_backend(store: Any) -> Any:
    """The sync backend behind ``store`` (an EventStore, SyncEventStore or backend), if chained."""
    backend = getattr(store, "backend", store)
    backend = getattr(backend, "sync", backend)  # the threaded async wrapper
    if "integrity" not in getattr(backend, "capabilities", ()):
        raise ConfigurationError(
            f"{store!r} keeps no hash chain; create the store with the URL option "
            "?integrity=chain (e.g. sqlite://events.db?integrity=chain) to make it tamper-evident"
        )
    return backend


def anchor(store: Any) -> Anchor:
    """The chain's newest entry as an :class:`Anchor` (``seq`` 0 and zero hash for an empty chain)."""
    backend = chained_backend(store)
    last = backend.chain_head()
    if last is None:
        return Anchor(0, 0, GENESIS)
    return Anchor(last.seq, last.position, last.hash)


def verify(store: Any, anchor: Anchor | None = None, public_key: Any = None) -> list[ChainProblem]:
    """Check the store's chain (and ``anchor``, signed by ``public_key`` if given).

    Returns every problem found, ordered by position; ``[]`` means the chain is
    intact (and still holds the anchored history).  The engine runs the check
    (natively in the c engine).  Raises ``AnchorSignatureError`` when
    ``public_key`` is given and the anchor's signature does not verify.
    """
    backend = chained_backend(store)
    if anchor is not None and public_key is not None:
        anchor.check_signature(public_key)
    problems = list(backend.verify_chain())
    if anchor is not None and anchor.seq > 0:
        problems.extend(_check_anchor(backend, anchor))
        problems.sort(key=lambda p: (p.position, p.seq))
    return problems


def _check_anchor(backend: Any, a: Anchor) -> list[ChainProblem]:
    found = backend.read_chain(a.seq, 1)
    if not found or found[0].seq != a.seq:
        last = backend.chain_head()
        ends = f"entry {last.seq} (position {last.position})" if last else "no entry at all"
        return [ChainProblem(a.seq, a.position, "", "anchor_missing",
                             f"the anchor names chain entry {a.seq} (position {a.position}) but "
                             f"the chain ends at {ends}: its tail was removed")]
    if found[0].hash != a.hash:
        return [ChainProblem(a.seq, a.position, found[0].stream_id, "anchor_mismatch",
                             f"chain entry {a.seq} (position {a.position}) has another hash than "
                             "the anchor: the history up to it was rewritten")]
    return []
