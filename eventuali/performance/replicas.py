"""``ReplicaManager``: writes to a PostgreSQL primary, reads spread over hot standbys.

::

    manager = ReplicaManager({
        "primary": "postgresql://user:pass@primary/db",
        "replicas": ["postgresql://user:pass@replica1/db", "postgresql://user:pass@replica2/db"],
        "read_preference": "round_robin",   # or "least_connections"
        "replica_lag_tolerance": 100,       # ms
    })
    await manager.save_events(events)                 # primary
    events = await manager.load_events(aggregate_id)  # a replica that is fresh enough

Routing happens below the core, at the record level: a ``RoutedBackend``
sends appends, checkpoints, versions and ``wait_for`` to the primary and
``read_stream``/``read_all``/``load_snapshot`` to a replica, and an ordinary
:class:`~eventuali.EventStore` sits on top of it, so the manager offers the
store's whole API (``save``, ``load``, ``read_all``, …) with the same codec.

Which replica may serve a read:

* **Lag** is measured, not assumed.  Per replica, at most every
  ``health_check_interval`` seconds (default: half the tolerance, at most 1s),
  the manager compares the WAL position the replica has replayed with the
  primary's current one.  Caught up means lag 0; behind means the time since
  the replica last replayed a transaction (``pg_last_xact_replay_timestamp``).
  Because an idle primary also writes WAL that is not a transaction
  (checkpoints), a replica that looks late is measured once more a moment
  later before it is skipped.  Beyond ``replica_lag_tolerance`` ms it is skipped.
* **Down**: a replica that fails (connection refused, server gone) is skipped
  for ``retry_interval`` seconds, and the read is served by the next one.
* **Read-your-writes**: after each write the manager notes the primary's WAL
  position; a read goes only to a replica that has replayed at least that
  far (checked again, fresh, when the cached position is short).
* When no replica qualifies, the primary serves the read.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import registry
from ..errors import ConfigurationError, StorageError, TransientStorageError
from ..protocol import ReplicatedBackend
from ..records import ReadFilter, Record, Snapshot, StoreURL, StreamWrite
from ..url import parse_url

READ_PREFERENCES = ("round_robin", "least_connections")
_KEYS = (
    "primary",
    "replicas",
    "read_preference",
    "replica_lag_tolerance",
    "read_your_writes",
    "health_check_interval",
    "retry_interval",
)


@dataclass
class ReplicaStatus:
    """What the manager last measured about one replica (see ``ReplicaManager.status()``)."""

    url: str
    healthy: bool
    lag_ms: float | None
    replayed_lsn: int | None
    in_flight: int
    reads: int
    error: str | None = None


def _opener(url: StoreURL) -> tuple[str, Callable[[], ReplicatedBackend], ReplicatedBackend]:
    """Open ``url`` through the registry (no I/O yet) as a backend that reports replication state.

    Returns the engine's name, a function that opens another such backend (to
    reconnect after a failure) and the first one.  Any engine whose async
    backend declares the protocol's ``replication`` capability can serve.
    """
    provider = registry.choose(url)
    open_async = getattr(provider, "open_async", None)

    def open_one() -> ReplicatedBackend:
        backend = open_async(url) if open_async is not None else None
        if not isinstance(backend, ReplicatedBackend) or "replication" not in backend.capabilities:
            raise ConfigurationError(
                f"ReplicaManager needs an engine that reports replication state (capability "
                f"'replication', e.g. postgresql://); engine {provider.name!r} serving "
                f"{url.redacted()!r} ({url.scheme}://) does not; give URLs of such a store"
            )
        return backend

    return provider.name, open_one, open_one()


async def _connected(backend: Any) -> Any:
    """``backend`` connected: an awaitable backend connects when awaited (see ``open_async``),
    any other one on its first call."""
    return await backend if hasattr(backend, "__await__") else backend


@dataclass
class _Replica:
    url: Any  # StoreURL
    reopen: Callable[[], Any]
    backend: Any = None  # opened, not yet connected, until ``connected``
    connected: bool = False
    in_flight: int = 0
    reads: int = 0
    lsn: int = -1
    lag_ms: float | None = None
    checked_at: float = float("-inf")
    down_until: float = float("-inf")
    error: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RoutedBackend:
    """An AsyncBackend whose writes go to the primary and whose reads go to a fresh replica."""

    def __init__(
        self,
        primary: Any,
        replicas: Sequence[tuple[StoreURL, Callable[[], Any], Any]],
        *,
        read_preference: str,
        lag_tolerance_ms: float,
        read_your_writes: bool,
        check_interval: float,
        retry_interval: float,
    ):
        self.primary = primary
        self.replicas = [_Replica(url, reopen, backend) for url, reopen, backend in replicas]
        # Reads may come from elsewhere than the primary: its replication state is not ours.
        self.capabilities = primary.capabilities - {"replication"}
        self.read_preference = read_preference
        self.lag_tolerance_ms = lag_tolerance_ms
        self.read_your_writes = read_your_writes
        self.check_interval = check_interval
        self.retry_interval = retry_interval
        self.written_lsn = 0
        self.primary_reads = 0
        self._rr = itertools.count()
        self._primary_lsn = (0, float("-inf"))  # (lsn, measured at)

    # --- choosing a replica ------------------------------------------------------

    def _order(self) -> list[_Replica]:
        n = len(self.replicas)
        start = next(self._rr) % n if n else 0
        ring = self.replicas[start:] + self.replicas[:start]
        if self.read_preference == "least_connections":
            ring.sort(key=lambda r: r.in_flight)  # stable: ties keep round-robin order
        return ring

    async def _primary_position(self) -> int:
        lsn, at = self._primary_lsn
        if time.monotonic() - at > self.check_interval / 2:
            lsn = (await self.primary.replication_state()).position
            self._primary_lsn = (lsn, time.monotonic())
        return lsn

    async def _measure(self, rep: _Replica) -> None:
        """Open the replica if needed, then measure its replay position and lag."""
        if not rep.connected:
            backend = rep.backend if rep.backend is not None else rep.reopen()
            rep.backend = None
            try:
                await _connected(backend)  # a standby's engine creates nothing there
            except BaseException:
                await backend.aclose()
                raise
            rep.backend, rep.connected = backend, True
        primary_lsn = await self._primary_position()
        _, lsn, age = await rep.backend.replication_state()
        if lsn < primary_lsn and (age is None or age > self.lag_tolerance_ms):
            # Maybe only WAL that is no transaction (a checkpoint on an idle primary) is
            # pending, so the replay timestamp is old without the replica being late.
            # Look again shortly: a replica that keeps up has replayed it by then.
            await asyncio.sleep(min(self.lag_tolerance_ms / 2000, 0.05))
            _, lsn, age = await rep.backend.replication_state()
        if lsn >= primary_lsn:
            lag = 0.0
        else:
            lag = float("inf") if age is None else max(age, 0.0)
        rep.lsn, rep.lag_ms, rep.checked_at, rep.error = lsn, lag, time.monotonic(), None

    def _mark_down(self, rep: _Replica, exc: BaseException) -> None:
        rep.down_until = time.monotonic() + self.retry_interval
        rep.error = str(exc)
        rep.lag_ms = None

    async def _usable(self, rep: _Replica, need_lsn: int) -> bool:
        now = time.monotonic()
        if now < rep.down_until:
            return False
        async with rep.lock:
            try:
                if now - rep.checked_at > self.check_interval:
                    await self._measure(rep)
                if rep.lag_ms is None or rep.lag_ms > self.lag_tolerance_ms:
                    return False
                if rep.lsn < need_lsn:  # our own writes may have arrived since the measure
                    rep.lsn = (await rep.backend.replication_state()).position
                return rep.lsn >= need_lsn
            except (StorageError, OSError) as exc:
                self._mark_down(rep, exc)
                return False

    async def _read(self, method: str, *args: Any) -> Any:
        need = self.written_lsn if self.read_your_writes else 0
        for rep in self._order():
            if not await self._usable(rep, need):
                continue
            rep.in_flight += 1
            try:
                result = await getattr(rep.backend, method)(*args)
            except (TransientStorageError, StorageError) as exc:
                self._mark_down(rep, exc)  # reads are idempotent: try the next one
                continue
            finally:
                rep.in_flight -= 1
            rep.reads += 1
            return result
        self.primary_reads += 1
        return await getattr(self.primary, method)(*args)

    async def _after_write(self) -> None:
        if self.replicas and self.read_your_writes:
            lsn = (await self.primary.replication_state()).position
            self.written_lsn = max(self.written_lsn, lsn)
            self._primary_lsn = (lsn, time.monotonic())

    # --- the AsyncBackend protocol ---------------------------------------------------

    async def append(
        self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None
    ) -> list[int]:
        positions = await self.primary.append(writes, checkpoint)
        await self._after_write()
        return positions

    async def read_stream(
        self, stream_id: str, from_version: int = 1, to_version: int | None = None,
        limit: int | None = None,
    ) -> list[Record]:  # fmt: skip
        return await self._read("read_stream", stream_id, from_version, to_version, limit)

    async def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]:
        return await self._read("read_all", from_position, limit, filter)

    async def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        return await self._read("load_snapshot", stream_id, max_version)

    # Decisions (versions, head, checkpoints) and writes need the primary's truth.
    async def stream_version(self, stream_id: str) -> int:
        return await self.primary.stream_version(stream_id)

    async def head(self) -> int:
        return await self.primary.head()

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        await self.primary.save_snapshot(snapshot)
        await self._after_write()

    async def prune_snapshots(self, stream_id: str, keep: int) -> int:
        return await self.primary.prune_snapshots(stream_id, keep)

    async def get_checkpoint(self, name: str) -> int | None:
        return await self.primary.get_checkpoint(name)

    async def set_checkpoint(self, name: str, position: int) -> None:
        await self.primary.set_checkpoint(name, position)

    async def wait_for(self, after_position: int, timeout: float) -> int:
        return await self.primary.wait_for(after_position, timeout)  # NOTIFY is not replicated

    async def delete_stream(self, stream_id: str) -> int:
        removed = await self.primary.delete_stream(stream_id)
        await self._after_write()
        return removed

    async def truncate_stream(self, stream_id: str, before_version: int) -> int:
        removed = await self.primary.truncate_stream(stream_id, before_version)
        await self._after_write()
        return removed

    async def aclose(self) -> None:
        for rep in self.replicas:
            if rep.backend is not None:
                await rep.backend.aclose()
        await self.primary.aclose()

    def status(self) -> list[ReplicaStatus]:
        now = time.monotonic()
        return [
            ReplicaStatus(
                url=r.url.redacted(),
                healthy=now >= r.down_until and r.lag_ms is not None and r.lag_ms <= self.lag_tolerance_ms,
                lag_ms=r.lag_ms,
                replayed_lsn=None if r.lsn < 0 else r.lsn,
                in_flight=r.in_flight,
                reads=r.reads,
                error=r.error,
            )
            for r in self.replicas
        ]


class ReplicaManager:
    """Read replicas for a PostgreSQL store (config keys as in the performance guide).

    ``primary`` (URL), ``replicas`` (list of URLs), ``read_preference``
    (``round_robin`` | ``least_connections``), ``replica_lag_tolerance`` (ms,
    default 100), ``read_your_writes`` (default True), ``health_check_interval``
    and ``retry_interval`` (seconds).  Construction does no I/O: the first call
    (or ``await manager.connect()``, or ``async with manager``) connects.  The
    store API (``save``, ``save_events``, ``load``, ``load_events``,
    ``read_all``, ``stream_all``, ``load_events_by_type``, ``head``, …) is that
    of :class:`eventuali.EventStore`.
    """

    def __init__(self, config: dict[str, Any], *, codec: Any = None):
        if not isinstance(config, dict):
            raise ConfigurationError(f"ReplicaManager takes a dict of settings, got {type(config).__name__}")
        unknown = sorted(set(config) - set(_KEYS))
        if unknown:
            raise ConfigurationError(
                f"unknown ReplicaManager setting(s) {', '.join(map(repr, unknown))}; valid: {', '.join(_KEYS)}"
            )
        if "primary" not in config:
            raise ConfigurationError("ReplicaManager needs 'primary': the URL of the PostgreSQL primary")
        self.primary_url = parse_url(config["primary"])
        replicas = config.get("replicas", [])
        if isinstance(replicas, str) or not isinstance(replicas, (list, tuple)):
            raise ConfigurationError(f"'replicas' must be a list of URLs, got {replicas!r}")
        self.replica_urls = [parse_url(u) for u in replicas]
        self.read_preference = config.get("read_preference", "round_robin")
        if self.read_preference not in READ_PREFERENCES:
            raise ConfigurationError(
                f"read_preference {self.read_preference!r} is not one of {', '.join(READ_PREFERENCES)}"
            )
        tolerance = config.get("replica_lag_tolerance", 100)
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
            raise ConfigurationError(
                f"replica_lag_tolerance must be a number of milliseconds >= 0, got {tolerance!r}"
            )
        self.lag_tolerance_ms = float(tolerance)
        self.read_your_writes = bool(config.get("read_your_writes", True))
        self.check_interval = float(
            config.get("health_check_interval", min(1.0, max(self.lag_tolerance_ms / 2000, 0.01)))
        )
        self.retry_interval = float(config.get("retry_interval", 5.0))
        self._codec = codec
        # Through the registry, so any engine that reports replication state can serve;
        # nothing connects before connect().
        self._engine, _, self._primary = _opener(self.primary_url)
        self._replicas = [(u, *_opener(u)[1:]) for u in self.replica_urls]
        self._store: Any = None
        self._connect_lock: asyncio.Lock | None = None

    async def connect(self) -> ReplicaManager:
        """Open the primary (creating the schema there if needed); replicas open on first read."""
        if self._store is not None:
            return self
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._store is None:
                from ..store import EventStore

                primary = await _connected(self._primary)
                routed = RoutedBackend(
                    primary,
                    self._replicas,
                    read_preference=self.read_preference,
                    lag_tolerance_ms=self.lag_tolerance_ms,
                    read_your_writes=self.read_your_writes,
                    check_interval=self.check_interval,
                    retry_interval=self.retry_interval,
                )
                self._store = EventStore(routed, self.primary_url, self._codec, self._engine)
        return self

    @property
    def store(self) -> Any:
        """The :class:`eventuali.EventStore` over the routed backend (after ``connect()``)."""
        if self._store is None:
            raise StorageError("ReplicaManager is not connected yet; await manager.connect() first")
        return self._store

    @property
    def backend(self) -> RoutedBackend:
        return self.store.backend

    def status(self) -> list[ReplicaStatus]:
        """Per replica: healthy, last measured lag, reads served, last error."""
        return [] if self._store is None else self.backend.status()

    @property
    def primary_reads(self) -> int:
        """Reads the primary served because no replica qualified."""
        return 0 if self._store is None else self.backend.primary_reads

    # The store API, connecting on first use.
    async def save(self, *aggregates: Any) -> None:
        await (await self.connect()).store.save(*aggregates)

    async def save_events(self, events: Sequence[Any], *, stream_type: str | None = None) -> list[int]:
        return await (await self.connect()).store.save_events(events, stream_type=stream_type)

    async def load(self, aggregate_class: Any, aggregate_id: str) -> Any:
        return await (await self.connect()).store.load(aggregate_class, aggregate_id)

    async def load_events(self, aggregate_id: str, from_version: int = 1, to_version: int | None = None) -> list[Any]:
        return await (await self.connect()).store.load_events(aggregate_id, from_version, to_version)

    async def read_all(self, from_position: int = 1, limit: int = 1000, **filters: Any) -> list[Any]:
        return await (await self.connect()).store.read_all(from_position, limit, **filters)

    def __getattr__(self, name: str) -> Any:
        # The rest of the store API (stream_all, load_events_by_type, head, …), once connected.
        if name.startswith("_") or self.__dict__.get("_store") is None:
            raise AttributeError(name)
        return getattr(self._store, name)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def __aenter__(self) -> ReplicaManager:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"ReplicaManager(primary={self.primary_url.redacted()!r}, "
            f"replicas={[u.redacted() for u in self.replica_urls]!r}, "
            f"read_preference={self.read_preference!r}, replica_lag_tolerance={self.lag_tolerance_ms:g})"
        )


class SyncReplicaManager:
    """The synchronous form of :class:`ReplicaManager` (same settings, same methods, no ``await``).

    It runs an async manager on a private event loop in a daemon thread, so a
    script or a WSGI view gets the same routing, lag checks and read-your-writes.
    """

    def __init__(self, config: dict[str, Any], *, codec: Any = None):
        self._manager = ReplicaManager(config, codec=codec)  # checks the settings at once
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="eventuali-replicas", daemon=True
        )
        self._thread.start()
        self._closed = False

    def _run(self, coro: Any) -> Any:
        if self._closed:
            coro.close()
            raise StorageError("the SyncReplicaManager is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def connect(self) -> SyncReplicaManager:
        self._run(self._manager.connect())
        return self

    def save(self, *aggregates: Any) -> None:
        self._run(self._manager.save(*aggregates))

    def save_events(self, events: Sequence[Any], *, stream_type: str | None = None) -> list[int]:
        return self._run(self._manager.save_events(events, stream_type=stream_type))

    def load(self, aggregate_class: Any, aggregate_id: str) -> Any:
        return self._run(self._manager.load(aggregate_class, aggregate_id))

    def load_events(self, aggregate_id: str, from_version: int = 1, to_version: int | None = None) -> list[Any]:
        return self._run(self._manager.load_events(aggregate_id, from_version, to_version))

    def read_all(self, from_position: int = 1, limit: int = 1000, **filters: Any) -> list[Any]:
        return self._run(self._manager.read_all(from_position, limit, **filters))

    def status(self) -> list[ReplicaStatus]:
        return self._manager.status()

    @property
    def primary_reads(self) -> int:
        return self._manager.primary_reads

    def __getattr__(self, name: str) -> Any:
        # The rest of the store API (head, stream_version, load_events_by_type, …).
        if name.startswith("_"):
            raise AttributeError(name)
        self.connect()
        attr = getattr(self._manager.store, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **kw: self._run(attr(*a, **kw))
        return attr

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._run(self._manager.close())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> SyncReplicaManager:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()
