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

Every method refuses malformed arguments (wrong types; empty or over-long stream
ids, names and tenants - limits in :mod:`eventuali.records`; negative positions,
versions, limits or timeouts) with ``InvalidInputError`` naming the problem,
and changes nothing.

Several handles may be open on one store at once.  An engine may share state
between handles open at the same time in one process (``memory://name`` does),
but for a ``persistent`` engine nothing it holds only in memory may outlive the
last ``close()``: once every handle is closed, the next open - in this process
or another - sees exactly what acknowledged calls stored (records with every
field, tombstones, truncations, the event-id index, checkpoints, snapshots and
the position counter).  The conformance suite closes every handle before it
reopens, and also reopens in a fresh process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol, runtime_checkable

from .records import ReadFilter, Record, Snapshot, StoreURL, StreamWrite

if TYPE_CHECKING:
    from .integrity.chain import ChainEntry, ChainProblem

CAPABILITIES = frozenset(
    {
        "persistent",  # data survives close() of every handle and a reopen, in any process
        "multi_process",  # several processes may open and write the same store at once
        "snapshots",
        "checkpoints",
        "delete",  # delete_stream
        "truncate",  # truncate_stream
        "wait_for",  # wait_for wakes on commit (not only on timeout)
        "integrity",  # the store keeps a hash chain (?integrity=chain): see ChainedBackend
        "replication",  # replication_state(): see ReplicatedBackend (read replicas)
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
        has no events), or ``ANY``, ``NO_STREAM`` or ``STREAM_EXISTS``, compared
        with ``stream_version`` (a stream whose records were all truncated keeps
        its version, so it still exists).  A mismatch raises
        ``OptimisticConcurrencyError`` naming the stream, the expected and the
        actual version.  An event id already stored (or given twice) raises
        ``DuplicateEventError`` carrying that ``event_id`` (the first one, in the
        order given).  A deleted stream raises ``StreamDeletedError`` carrying its
        ``stream_id``.  Invalid input (empty or over-long stream id, event id not
        16 bytes, empty event type, …) raises ``InvalidInputError``.  In every
        error case nothing is written.

        The checks run in this order and the first failure is raised: invalid
        input, and an event id given twice in the call; then, write by write in
        the order given, the tombstone and the expected version (a write with no
        records is checked too); only when every write passes, event ids already
        stored.  An id counts as stored while a record with it is stored: the
        ids of records removed by ``delete_stream``/``truncate_stream`` may be
        appended again.

        The version check and the write are one atomic step: of several
        concurrent appends with the same expected version (threads, handles,
        or processes under ``multi_process``), exactly one is accepted and
        lands at ``expected + 1``; the others raise ``OptimisticConcurrencyError``.

        The records of each write get versions ``current+1 …`` in order.  If
        ``checkpoint`` is given, ``set_checkpoint(*checkpoint)`` happens in the
        same transaction.  A write with no records only checks its expected
        version.  Returns the global positions of all appended records, in the
        order given.  Positions rise with commit order and are never reused,
        not even after the newest records were deleted and the store reopened.
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

        At most ``limit`` (>= 1, or None) records; ``from_position`` 0 and 1
        both mean from the start; ``filter`` is a ``ReadFilter`` or None.  A
        reader that pages with ``from_position = last.position + 1`` never skips
        a record that commits later with a lower position: a backend only
        returns positions below which every transaction has finished.  Records
        removed by ``delete_stream`` or ``truncate_stream`` are left out; the
        others keep their positions and their order.

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
        """The highest position that a reader may see (0 for an empty store).

        It never goes back: deleting the newest records leaves it where it was.
        """
        ...

    # --- snapshots -----------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot; one with the same (stream_id, version) is replaced.

        ``version`` must be >= 1 but is not checked against the stream's
        version (a snapshot may be saved before the events it covers are
        read).  A deleted stream raises ``StreamDeletedError`` and saves nothing.
        """
        ...

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        """The snapshot with the highest version <= ``max_version`` (any, if None), or None.

        ``max_version=0`` is valid and finds nothing (versions start at 1); a
        negative one raises ``InvalidInputError``.
        """
        ...

    def prune_snapshots(self, stream_id: str, keep: int) -> int:
        """Delete all but the ``keep`` highest-version snapshots; return how many went.

        ``keep=0`` deletes them all; a negative ``keep`` raises ``InvalidInputError``.
        """
        ...

    # --- checkpoints ---------------------------------------------------------

    def get_checkpoint(self, name: str) -> int | None:
        """The position last stored under ``name``, or None."""
        ...

    def set_checkpoint(self, name: str, position: int) -> None:
        """Store ``position`` under ``name`` (overwriting, also with a lower one).

        Any ``position >= 0`` is accepted; it is not checked against ``head()``.
        """
        ...

    # --- live ----------------------------------------------------------------

    def wait_for(self, after_position: int, timeout: float) -> int:
        """Block until ``head() > after_position`` or ``timeout`` seconds pass; return head().

        Woken by commits (in-process condition, LISTEN/NOTIFY, …), not by polling
        where the engine can avoid it.  ``timeout=0`` returns ``head()`` at once.
        """
        ...

    # --- retention -----------------------------------------------------------

    def delete_stream(self, stream_id: str) -> int:
        """Remove the stream's records and snapshots and tombstone its id.

        Later appends raise ``StreamDeletedError``; reads return ``[]``.  Returns
        the number of records removed.  Deleting an unknown stream tombstones it;
        deleting a deleted one removes nothing (0).  Every write to a deleted
        stream, even one with no records and whatever its expected version,
        raises ``StreamDeletedError``; so does ``save_snapshot``.
        An engine that keeps files leaves no bytes of the removed records in them
        where it can (SQLite: ``secure_delete`` and a WAL checkpoint): forgetting a
        subject relies on it (see docs/security.md).
        """
        ...

    def truncate_stream(self, stream_id: str, before_version: int) -> int:
        """Remove the stream's records with ``version < before_version``.

        Versions of the remaining records, and of later appends, are unchanged:
        ``stream_version`` stays, even when every record went.  ``before_version``
        must be >= 1.  Returns the number of records removed (0 for an unknown or
        deleted stream).
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

    # Optional: ``accelerator(name) -> callable | None``, native helpers the core
    # uses when some installed engine offers them (same results either way).
    # Known name: ``aead_seal_many`` (see eventuali.security.encryption).

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


@runtime_checkable
class ChainedBackend(Backend, Protocol):
    """A backend that declares ``integrity``: the store keeps a hash chain.

    The URL option ``integrity=chain`` starts a chain on a store that holds no
    event yet (``ConfigurationError`` otherwise); from then on the chain is a
    property of the store, kept by every engine that opens it, with or without
    the option.  Inside each transaction that changes events, the engine adds
    chain entries numbered ``seq`` = 1, 2, … with no gaps:

    * ``append``: one entry per record, in position order: kind 1, the
      record's position, version and stream id, and ``digest`` =
      SHA-256(event_id[16] || i64 schema_version || i64 timestamp ||
      str stream_type || str event_type || str tenant || blob metadata ||
      blob payload);
    * ``delete_stream`` that removes records: one entry of kind 2 (position =
      ``head()``, version 0);
    * ``truncate_stream`` that removes records: one entry of kind 3 (position =
      ``head()``, version = one past the newest removed version);

    with digest 32 zero bytes for kinds 2 and 3, and ``hash`` =
    SHA-256(prev[32] || u8 kind || i64 position || i64 version || str stream_id
    || digest[32]), ``prev`` being the previous entry's hash (32 zero bytes for
    entry 1).  Integers are big-endian, ``str`` is u32 length + UTF-8, ``blob``
    is u32 length + bytes.  Entries are never changed or removed.  A failed
    call adds no entry.  :mod:`eventuali.integrity.chain` is the reference.
    """

    def chain_head(self) -> ChainEntry | None:
        """The newest chain entry, or None for an empty chain."""
        ...

    def read_chain(self, from_seq: int = 1, limit: int | None = None) -> list[ChainEntry]:
        """Entries with ``seq >= from_seq``, at most ``limit``, in ``seq`` order."""
        ...

    def verify_chain(self) -> list[ChainProblem]:
        """Check the chain against the stored records, on one consistent read.

        Returns what :func:`eventuali.integrity.chain.verify_entries` returns for
        this store's entries and records: every problem, ordered by position,
        built with :func:`eventuali.integrity.chain.problem`; ``[]`` = intact.
        """
        ...


class ReplicationState(NamedTuple):
    """Where one server of a replicated store stands (what read replicas are chosen by)."""

    in_recovery: bool
    """True on a read-only standby that replays the primary's log, False on the primary."""
    position: int
    """Log position written (primary) or replayed (standby), comparable across the servers
    of one store: a standby with ``position >= p`` holds everything the primary had at ``p``."""
    replay_age_ms: float | None
    """On a standby, milliseconds since it last replayed a transaction (None on a primary,
    or before any replay)."""


@runtime_checkable
class ReplicatedBackend(Protocol):
    """An async backend that declares ``replication``: it reports where its server stands.

    :class:`eventuali.performance.ReplicaManager` opens the primary and each
    replica through the registry (``open_async`` of the provider chosen for the
    URL) and compares their states to decide which replica is fresh enough to
    serve a read.  A provider whose engine declares the capability must open a
    URL naming a read-only standby without trying to create anything there
    (failing with a ``StorageError`` that says so when the store is missing).
    """

    capabilities: frozenset[str]

    async def replication_state(self) -> ReplicationState:
        """This server's :class:`ReplicationState`, read fresh (one round trip)."""
        ...
