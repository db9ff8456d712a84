"""The contract between the core and a storage engine: ``Backend`` and ``BackendProvider``.

Signatures and docstrings only.  A backend is a storage engine that sees
records (ints, strings, bytes) and nothing else; everything that is policy
(serialization, encryption, snapshot policy, tenancy, metrics) lives in the
core.  Every backend raises the classes of :mod:`eventuali.errors`, and no
others, for the conditions documented here.

Thread safety: a ``Backend`` instance may be shared by several threads; calls
are serialized or run in parallel as the engine sees fit, but each call is
atomic.  ``close()`` may be called more than once; any other call after it
raises ``StoreClosedError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from .records import ReadFilter, Record, Snapshot, StoreURL, StreamWrite

CAPABILITIES = frozenset(
    {
        "persistent",  # data survives close() and reopen
        "multi_process",  # several processes may open the same store at once
        "snapshots",
        "checkpoints",
        "delete",  # delete_stream
        "truncate",  # truncate_stream
        "wait_for",  # wait_for wakes on commit (not only on timeout)
    }
)
"""Capability names a backend may declare; the conformance suite skips, with the
reason, the tests of a capability a backend does not declare."""


@runtime_checkable
class Backend(Protocol):
    """One open store, served by one engine."""

    capabilities: frozenset[str]
    """Subset of :data:`CAPABILITIES` this open store supports."""

    def append(
        self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None
    ) -> list[int]:
        """Append records to one or more streams, atomically: all writes or none.

        For each write, ``expected_version`` is an exact version (0 = the stream
        has no events), or ``ANY``, ``NO_STREAM`` or ``STREAM_EXISTS``.  A
        mismatch raises ``OptimisticConcurrencyError`` naming the stream, the
        expected and the actual version.  An event id already stored (or given
        twice) raises ``DuplicateEventError``.  A deleted stream raises
        ``StreamDeletedError``.  Invalid input (empty or over-long stream id,
        event id not 16 bytes, empty event type, …) raises
        ``InvalidInputError``.  In every error case nothing is written.

        The records of each write get versions ``current+1 …`` in order.  If
        ``checkpoint`` is given, ``set_checkpoint(*checkpoint)`` happens in the
        same transaction.  A write with no records only checks its expected
        version.  Returns the global positions of all appended records, in the
        order given.
        """
        ...

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        """The stream's records with ``from_version <= version <= to_version``, oldest first.

        An unknown or deleted stream gives ``[]``.  ``from_version < 1``,
        ``to_version < from_version`` or ``limit < 1`` raise ``InvalidInputError``.
        """
        ...

    def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]:
        """Records with ``position >= from_position`` that match ``filter``, in position order.

        At most ``limit`` records.  A reader that pages with ``from_position =
        last.position + 1`` never skips a record that commits later with a
        lower position: a backend only returns positions below which every
        transaction has finished.

        Filter values (every engine, checked by
        :func:`eventuali.record_validation.check_read_all`): a name in
        ``event_types`` or ``stream_types`` is non-empty (``""`` raises
        ``InvalidInputError``: it can only be a mistake); an empty set matches
        no record; ``stream_id_prefix=""`` matches every stream (as ``None``);
        ``tenant=""`` is the default tenant, not "any tenant" (that is ``None``).
        """
        ...

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version; 0 when it does not exist or was deleted."""
        ...

    def head(self) -> int:
        """The highest position that a reader may see (0 for an empty store)."""
        ...

    # --- snapshots -----------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot; one with the same (stream_id, version) is replaced."""
        ...

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        """The snapshot with the highest version <= ``max_version`` (any, if None), or None."""
        ...

    def prune_snapshots(self, stream_id: str, keep: int) -> int:
        """Delete all but the ``keep`` newest snapshots of the stream; return how many went."""
        ...

    # --- checkpoints ---------------------------------------------------------

    def get_checkpoint(self, name: str) -> int | None:
        """The position last stored under ``name``, or None."""
        ...

    def set_checkpoint(self, name: str, position: int) -> None:
        """Store ``position`` under ``name`` (overwriting)."""
        ...

    # --- live ----------------------------------------------------------------

    def wait_for(self, after_position: int, timeout: float) -> int:
        """Block until ``head() > after_position`` or ``timeout`` seconds pass; return head().

        Woken by commits (in-process condition, LISTEN/NOTIFY, …), not by polling
        where the engine can avoid it.
        """
        ...

    # --- retention -----------------------------------------------------------

    def delete_stream(self, stream_id: str) -> int:
        """Remove the stream's records and snapshots and tombstone its id.

        Later appends raise ``StreamDeletedError``; reads return ``[]``.  Returns
        the number of records removed.  Deleting an unknown stream tombstones it.
        """
        ...

    def truncate_stream(self, stream_id: str, before_version: int) -> int:
        """Remove the stream's records with ``version < before_version``.

        Versions of the remaining records, and of later appends, are unchanged.
        Returns the number of records removed.
        """
        ...

    def close(self) -> None:
        """Release every resource; idempotent."""
        ...

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...


class BackendProvider(Protocol):
    """What an ``eventuali.backends`` entry point names: the engine, before any store is open.

    Importing the provider's module must be cheap and must fail (ImportError,
    or ``BackendUnavailableError``) when the engine cannot work at all, with a
    message that says why and how to fix it.
    """

    name: ClassVar[str]
    """Registry name, e.g. ``python`` or ``c``."""
    schemes: ClassVar[frozenset[str]]
    """URL schemes this engine serves, e.g. ``{"memory", "sqlite"}``."""
    priority: ClassVar[int]
    """``auto`` picks the highest priority that loads and serves the scheme."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Facts for ``eventuali backends``: version, ABI, library path, …"""
        ...

    @classmethod
    def open(cls, url: StoreURL) -> Backend:
        """Open (creating if needed) the store at ``url``.

        Raises ``ConfigurationError`` for options it does not know,
        ``StorageError`` subclasses for a store it cannot open.
        """
        ...


class AsyncBackend(Protocol):
    """The same contract as :class:`Backend`, as coroutines (``close`` is ``aclose``).

    A provider that has a native async driver (PostgreSQL via psycopg's async
    pool) offers ``open_async(url)``; for the others the core wraps the sync
    backend (see :mod:`eventuali.asyncio_adapter`).
    """

    capabilities: frozenset[str]

    async def append(
        self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None
    ) -> list[int]: ...

    async def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[Record]: ...

    async def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]: ...

    async def stream_version(self, stream_id: str) -> int: ...

    async def head(self) -> int: ...

    async def save_snapshot(self, snapshot: Snapshot) -> None: ...

    async def load_snapshot(
        self, stream_id: str, max_version: int | None = None
    ) -> Snapshot | None: ...

    async def prune_snapshots(self, stream_id: str, keep: int) -> int: ...

    async def get_checkpoint(self, name: str) -> int | None: ...

    async def set_checkpoint(self, name: str, position: int) -> None: ...

    async def wait_for(self, after_position: int, timeout: float) -> int: ...

    async def delete_stream(self, stream_id: str) -> int: ...

    async def truncate_stream(self, stream_id: str, before_version: int) -> int: ...

    async def aclose(self) -> None: ...
