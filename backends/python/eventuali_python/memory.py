"""The in-memory engine behind ``memory://``: the whole Backend contract, in Python dicts.

``memory://`` opens a private store; ``memory://name`` opens the store called
``name``, shared by every backend opened on that URL in this process, for the
life of the process (so ``EventStore.create("memory://app")`` in two places
sees the same events).  One lock guards a store: every call is atomic, and the
lock's condition wakes ``wait_for`` on commit.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from eventuali import record_validation as check
from eventuali.errors import (
    ConfigurationError,
    DuplicateEventError,
    OptimisticConcurrencyError,
    StoreClosedError,
    StreamDeletedError,
)
from eventuali.integrity.chain import (
    GENESIS,
    KIND_DELETE,
    KIND_TRUNCATE,
    ChainEntry,
    ChainProblem,
    event_entries,
    retention_entry,
    verify_entries,
)
from eventuali.records import (
    ReadFilter,
    Record,
    Snapshot,
    StoreURL,
    StreamWrite,
    expected_version_matches,
)
from eventuali.url import memory_options

_make_record = partial(tuple.__new__, Record)


@dataclass
class _Stream:
    stream_type: str
    tenant: str
    version: int = 0
    deleted: bool = False
    records: list[Record] = field(default_factory=list)
    """Stored records, oldest first; ``records[0].version`` may be > 1 after truncation."""


class _Store:
    """The data of one memory store, shared by every backend opened on it."""

    def __init__(self, chained: bool = False) -> None:
        self.lock = threading.Lock()
        # ?integrity=chain: the hash chain, insert-only (see eventuali.integrity.chain).
        self.chain: list[ChainEntry] | None = [] if chained else None
        self.changed = threading.Condition(self.lock)
        self.log: list[Record] = []  # every stored record, in position order
        self.positions: list[int] = []  # log's positions, for bisect
        self.streams: dict[str, _Stream] = {}
        self.event_ids: set[bytes] = set()
        self.snapshots: dict[str, dict[int, Snapshot]] = {}
        self.checkpoints: dict[str, int] = {}
        self.last_position = 0

    def forget(self, removed: list[Record]) -> None:
        """Drop ``removed`` (records of one stream) from the global log and the id index."""
        if not removed:
            return
        gone = {r.position for r in removed}
        self.event_ids.difference_update(r.event_id for r in removed)
        self.log = [r for r in self.log if r.position not in gone]
        self.positions = [r.position for r in self.log]

    def chain_retention(self, kind: int, stream_id: str, version: int) -> None:
        """Record a delete/truncate in the chain (caller holds the lock; chain is on)."""
        chain = self.chain
        assert chain is not None
        prev = chain[-1].hash if chain else GENESIS
        chain.append(
            retention_entry(prev, len(chain) + 1, kind, self.last_position, stream_id, version)
        )


_named_stores: dict[str, _Store] = {}
_named_lock = threading.Lock()


class MemoryBackend:
    """A :class:`eventuali.protocol.Backend` over a :class:`_Store`; thread-safe."""

    capabilities = frozenset({"snapshots", "checkpoints", "delete", "truncate", "wait_for"})

    def __init__(self, store: _Store | None = None, name: str = "") -> None:
        self._store = store if store is not None else _Store()
        self._name = name
        self._closed = False
        if self._store.chain is not None:
            self.capabilities = MemoryBackend.capabilities | {"integrity"}

    @classmethod
    def open(cls, url: StoreURL) -> MemoryBackend:
        chained = memory_options(url) is not None
        name = url.path
        if not name:
            return cls(_Store(chained))
        with _named_lock:
            store = _named_stores.get(name)
            if store is None:
                store = _named_stores[name] = _Store(chained)
            elif chained and store.chain is None:
                with store.lock:
                    if store.streams:
                        raise ConfigurationError(
                            f"store URL {url.redacted()!r}: memory://{name} already holds events "
                            "without a hash chain, so integrity=chain cannot cover them; use a "
                            "new store name"
                        )
                    store.chain = []
        return cls(store, name)

    def __repr__(self) -> str:
        return f"<MemoryBackend memory://{self._name}{' closed' if self._closed else ''}>"

    def _open_store(self) -> _Store:
        if self._closed:
            raise StoreClosedError(
                f"memory://{self._name} was closed; open a new store with EventStore.create(url)"
            )
        return self._store

    # --- writes ----------------------------------------------------------------

    def append(
        self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None
    ) -> list[int]:
        store = self._open_store()
        check.check_append(writes, checkpoint)
        with store.lock:
            self._open_store()
            # Check every write before changing anything: all or nothing.  A
            # stream written twice in one call sees its own earlier write.
            planned: dict[str, int] = {}
            for write in writes:
                stream_id, expected = write[0], write[2]
                stream = store.streams.get(stream_id)
                if stream is not None and stream.deleted:
                    raise StreamDeletedError(stream_id)
                current = planned.get(stream_id, stream.version if stream is not None else 0)
                if not expected_version_matches(expected, current):
                    raise OptimisticConcurrencyError(stream_id, expected, current)
                planned[stream_id] = current + len(write[3])
            ids = store.event_ids
            for write in writes:
                for rec in write[3]:
                    if rec[0] in ids:
                        raise DuplicateEventError(rec[0])
            positions: list[int] = []
            position = store.last_position
            for write in writes:
                stream_id, stream_type, _, records = write[:4]
                tenant = write[4] if len(write) > 4 else ""
                stream = store.streams.get(stream_id)
                if stream is None:
                    stream = store.streams[stream_id] = _Stream(stream_type, tenant)
                version = stream.version
                new = [
                    _make_record(
                        (position + i, eid, stream_id, stream_type, version + i, etype, sv, ts,
                         tenant, meta, payload)
                    )
                    for i, (eid, etype, sv, ts, meta, payload) in enumerate(records, 1)
                ]
                position += len(new)
                stream.version = version + len(new)
                stream.records.extend(new)
                store.log.extend(new)
                positions.extend(range(position - len(new) + 1, position + 1))
                ids.update(rec[0] for rec in records)
            store.positions.extend(positions)
            store.last_position = position
            chain = store.chain
            if chain is not None and positions:
                prev = chain[-1].hash if chain else GENESIS
                chain.extend(event_entries(prev, len(chain) + 1, store.log[-len(positions):]))
            if checkpoint is not None:
                store.checkpoints[checkpoint[0]] = checkpoint[1]
            if positions:
                store.changed.notify_all()
            return positions

    # --- reads -----------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        store = self._open_store()
        check.check_read_stream(stream_id, from_version, to_version, limit)
        with store.lock:
            stream = store.streams.get(stream_id)
            if stream is None or not stream.records:
                return []
            records = stream.records
            first = records[0].version
            start = max(from_version - first, 0)
            stop = len(records) if to_version is None else max(to_version - first + 1, 0)
            if limit is not None:
                stop = min(stop, start + limit)
            return records[start:stop]

    def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]:
        store = self._open_store()
        check.check_read_all(from_position, limit, filter)
        with store.lock:
            start = bisect_left(store.positions, from_position)
            if filter is None or filter.is_empty:
                stop = None if limit is None else start + limit
                return store.log[start:stop]
            out: list[Record] = []
            matches = filter.matches
            for rec in store.log[start:] if start else store.log:
                if matches(rec):
                    out.append(rec)
                    if limit is not None and len(out) >= limit:
                        break
            return out

    def stream_version(self, stream_id: str) -> int:
        store = self._open_store()
        check.check_stream_id(stream_id)
        with store.lock:
            stream = store.streams.get(stream_id)
            return 0 if stream is None or stream.deleted else stream.version

    def head(self) -> int:
        store = self._open_store()
        with store.lock:
            return store.last_position

    # --- snapshots -------------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        store = self._open_store()
        check.check_snapshot(snapshot)
        snapshot = Snapshot(*snapshot)
        with store.lock:
            stream = store.streams.get(snapshot.stream_id)
            if stream is not None and stream.deleted:
                raise StreamDeletedError(snapshot.stream_id)
            store.snapshots.setdefault(snapshot.stream_id, {})[snapshot.version] = snapshot

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        store = self._open_store()
        check.check_stream_id(stream_id)
        check.check_optional_int(max_version, "max_version", 0)
        with store.lock:
            versions = [
                v
                for v in store.snapshots.get(stream_id, ())
                if max_version is None or v <= max_version
            ]
            return store.snapshots[stream_id][max(versions)] if versions else None

    def prune_snapshots(self, stream_id: str, keep: int) -> int:
        store = self._open_store()
        check.check_stream_id(stream_id)
        check.check_int(keep, "keep", 0)
        with store.lock:
            snaps = store.snapshots.get(stream_id)
            if not snaps:
                return 0
            doomed = sorted(snaps, reverse=True)[keep:]
            for v in doomed:
                del snaps[v]
            return len(doomed)

    # --- checkpoints -----------------------------------------------------------

    def get_checkpoint(self, name: str) -> int | None:
        store = self._open_store()
        check.check_name(name, "checkpoint name")
        with store.lock:
            return store.checkpoints.get(name)

    def set_checkpoint(self, name: str, position: int) -> None:
        store = self._open_store()
        check.check_checkpoint(name, position)
        with store.lock:
            store.checkpoints[name] = position

    # --- live ------------------------------------------------------------------

    def wait_for(self, after_position: int, timeout: float) -> int:
        store = self._open_store()
        check.check_wait(after_position, timeout)
        with store.changed:
            store.changed.wait_for(
                lambda: store.last_position > after_position or self._closed, timeout
            )
            self._open_store()
            return store.last_position

    # --- retention -------------------------------------------------------------

    def delete_stream(self, stream_id: str) -> int:
        store = self._open_store()
        check.check_stream_id(stream_id)
        with store.lock:
            stream = store.streams.get(stream_id)
            if stream is None:
                stream = store.streams[stream_id] = _Stream("", "")
            removed = stream.records
            stream.records = []
            stream.deleted = True
            store.forget(removed)
            store.snapshots.pop(stream_id, None)
            if store.chain is not None and removed:
                store.chain_retention(KIND_DELETE, stream_id, 0)
            return len(removed)

    def truncate_stream(self, stream_id: str, before_version: int) -> int:
        store = self._open_store()
        check.check_stream_id(stream_id)
        check.check_int(before_version, "before_version", 1)
        with store.lock:
            stream = store.streams.get(stream_id)
            if stream is None or not stream.records:
                return 0
            keep_from = bisect_left([r.version for r in stream.records], before_version)
            removed = stream.records[:keep_from]
            stream.records = stream.records[keep_from:]
            store.forget(removed)
            if store.chain is not None and removed:
                store.chain_retention(KIND_TRUNCATE, stream_id, removed[-1].version + 1)
            return len(removed)

    # --- integrity (capability "integrity") --------------------------------------

    def _chain(self) -> list[ChainEntry]:
        chain = self._open_store().chain
        if chain is None:
            raise ConfigurationError(
                f"memory://{self._name} keeps no hash chain; open it with ?integrity=chain"
            )
        return chain

    def chain_head(self) -> ChainEntry | None:
        with self._store.lock:
            chain = self._chain()
            return chain[-1] if chain else None

    def read_chain(self, from_seq: int = 1, limit: int | None = None) -> list[ChainEntry]:
        check.check_int(from_seq, "from_seq", 1)
        check.check_optional_int(limit, "limit", 1)
        with self._store.lock:
            chain = self._chain()
            return chain[from_seq - 1 : None if limit is None else from_seq - 1 + limit]

    def verify_chain(self) -> list[ChainProblem]:
        with self._store.lock:
            chain = list(self._chain())
            log = list(self._store.log)
        return verify_entries(chain, log)

    # --- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._store.changed:  # release any wait_for on this handle
            self._store.changed.notify_all()

    def __enter__(self) -> MemoryBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
