"""Multi-tenancy: ``TenantManager`` hands out tenant-scoped event stores.

Two isolation levels:

* ``"database"`` - each tenant has its own store: one SQLite file, one
  PostgreSQL schema or one named in-memory store, derived from ``base_url``.
  Tenants share nothing but the process.
* ``"row"`` - all tenants share one store.  Every stream a tenant writes is
  stamped with the tenant (``StreamWrite.tenant``) and its id is namespaced as
  ``<tenant>/<aggregate id>`` underneath, so two tenants may use the same
  aggregate ids; every read is restricted to the tenant (``ReadFilter.tenant``
  plus the namespace), and records of another tenant are dropped even if an
  engine returned them.  A tenant store can neither read nor overwrite another
  tenant's events, whatever ids it is given.

A tenant store is an :class:`~eventuali.EventStore` (same methods) with the
guide's tuning knobs: ``enable_batch_mode()`` (group commit of concurrent
saves), ``set_snapshot_frequency(n)``, and per-tenant metrics.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from .aggregate import Aggregate
from .errors import (
    ConfigurationError,
    EventualiError,
    InvalidInputError,
    OptimisticConcurrencyError,
    SerializationError,
    StreamDeletedError,
)
from .event import Event
from .observers import written as _observe_written
from .protocol import AsyncBackend
from .records import ReadFilter, Record, Snapshot, StoreURL, StreamWrite
from .serialization import EventCodec, RecordIdentity
from .snapshots import SnapshotConfig, SnapshotService, SnapshotWarning
from .snapshots import _continue as _continue_from_snapshot
from .store import EventStore, _resolve_url
from .url import parse_url

A = TypeVar("A", bound=Aggregate)

TENANT_ID_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?"
"""Tenant ids: DNS-label style - 1-48 lower-case letters, digits and '-', not
starting or ending with '-' (the rule Kubernetes namespaces follow).

Safe as a file-name part on every filesystem (no case-folding surprises); as a
PostgreSQL schema suffix once '-' becomes '_' (no tenant id has '_', so no two
tenants map to one schema; under the 63-byte identifier limit); and free of
the ``/`` that separates the tenant namespace from aggregate ids in row
isolation.
"""
_TENANT_RE = re.compile(TENANT_ID_PATTERN)
_SEP = "/"
# Snapshots written by older versions carry a second, tenant-level layer of the
# codec's transforms: this marker, one byte with the number of layers, then the
# transformed payload, encrypted with this event id (and the stream and version)
# bound.  Only read now (see TenantScopedBackend.load_snapshot).
_LEGACY_WRAPPED = b"\xffEW"
_LEGACY_SNAPSHOT_ID = b"eventuali-snap\x00\x00"

ISOLATION_LEVELS = ("database", "row")

_DEFAULTS: dict[str, Any] = {
    "isolation_level": "database",
    "base_url": None,
    "connection_pool_per_tenant": True,
    "cache_tenant_config": True,
    "metrics_collection": True,
    "high_volume_tenants": (),
    "high_volume_threshold": 10_000,
    "batch_size": 500,
    "batch_max_wait_ms": 5,
    "codec": None,
    "backend": None,
}


def check_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` if valid; ``InvalidInputError`` naming it and the pattern otherwise."""
    if not isinstance(tenant_id, str) or not _TENANT_RE.fullmatch(tenant_id):
        raise InvalidInputError(
            f"tenant id {tenant_id!r} is invalid; a tenant id matches {TENANT_ID_PATTERN} "
            "(1-48 characters: lower-case letters, digits and '-', starting and ending with a "
            "letter or digit), e.g. 'acme' or 'acme-eu'"
        )
    return tenant_id


# --- metrics --------------------------------------------------------------------------


@dataclass
class TenantMetrics:
    """What one tenant did through its store (counted when ``metrics_collection`` is on)."""

    tenant_id: str
    events_written: int = 0
    events_read: int = 0
    appends: int = 0
    reads: int = 0
    errors: int = 0
    backend_seconds: float = 0.0
    """Time spent waiting for the storage engine."""
    last_activity: float | None = None
    """``time.time()`` of the last operation."""
    _recent: deque = field(default_factory=deque, repr=False)

    def events_written_last_minute(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        recent = self._recent
        while recent and recent[0][0] < now - 60.0:
            recent.popleft()
        return sum(n for _, n in recent)

    def _written(self, n: int) -> None:
        self.events_written += n
        self._recent.append((time.monotonic(), n))
        if len(self._recent) > 4096:  # bound memory under very many small appends
            self.events_written_last_minute()

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "events_written": self.events_written,
            "events_read": self.events_read,
            "appends": self.appends,
            "reads": self.reads,
            "errors": self.errors,
            "backend_seconds": self.backend_seconds,
            "events_written_last_minute": self.events_written_last_minute(),
            "last_activity": self.last_activity,
        }


# --- the scoped backend ----------------------------------------------------------------


class TenantScopedBackend:
    """An :class:`~eventuali.protocol.AsyncBackend` that confines every call to one tenant.

    With ``namespaced`` (row isolation) stream ids, snapshot ids and checkpoint
    names are stored as ``<tenant>/<id>``, writes are stamped with the tenant
    and reads are filtered by it.  It also counts the tenant's metrics.
    """

    def __init__(
        self,
        inner: AsyncBackend,
        tenant: str,
        *,
        namespaced: bool,
        owns_inner: bool,
        metrics: TenantMetrics | None,
    ) -> None:
        self.inner = inner
        self.tenant = tenant
        self.capabilities = inner.capabilities
        self._ns = tenant + _SEP if namespaced else ""
        self._owns = owns_inner
        self._metrics = metrics
        self.snapshot_codec: EventCodec | None = None

    # --- naming ------------------------------------------------------------------------

    def _in(self, stream_id: str) -> str:
        return self._ns + stream_id

    def _out(self, records: list[Record]) -> list[Record]:
        ns, tenant = self._ns, self.tenant
        if not ns:
            return records
        n = len(ns)
        # Belt and braces: the read was already restricted to the tenant; a
        # record of another tenant that got through anyway is dropped, never
        # shown under a stripped id.
        return [
            r._replace(stream_id=r.stream_id[n:])
            for r in records
            if r.tenant == tenant and r.stream_id.startswith(ns)
        ]

    def _track(
        self, started: float, *, written: int | None = None, read: int = 0, error: bool = False
    ) -> None:
        m = self._metrics
        if m is None:
            return
        m.backend_seconds += time.perf_counter() - started
        m.last_activity = time.time()
        if error:
            m.errors += 1
        elif written is not None:
            m.appends += 1
            m._written(written)
        else:
            m.reads += 1
            m.events_read += read

    # --- writing -----------------------------------------------------------------------

    async def append(
        self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None
    ) -> list[int]:
        tenant = self.tenant
        scoped = []
        for w in writes:
            if w.tenant not in ("", tenant):
                raise InvalidInputError(
                    f"the store of tenant {tenant!r} cannot write stream {w.stream_id!r} for "
                    f"tenant {w.tenant!r}; get that tenant's store from the TenantManager"
                )
            scoped.append(
                StreamWrite(self._in(w.stream_id), w.stream_type, w.expected_version, w.records,
                            tenant)
            )
        if checkpoint is not None:
            checkpoint = (self._in(checkpoint[0]), checkpoint[1])
        started = time.perf_counter()
        try:
            positions = await self.inner.append(scoped, checkpoint)
        except OptimisticConcurrencyError as exc:
            self._track(started, error=True)
            raise OptimisticConcurrencyError(
                self._strip(exc.stream_id), exc.expected, exc.actual
            ) from None
        except StreamDeletedError as exc:
            self._track(started, error=True)
            raise StreamDeletedError(self._strip(exc.stream_id)) from None
        except BaseException:
            self._track(started, error=True)
            raise
        self._track(started, written=sum(len(w.records) for w in writes))
        return positions

    def _strip(self, stream_id: str) -> str:
        ns = self._ns
        return stream_id[len(ns):] if ns and stream_id.startswith(ns) else stream_id

    # --- reading -----------------------------------------------------------------------

    async def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        started = time.perf_counter()
        records = self._out(
            await self.inner.read_stream(self._in(stream_id), from_version, to_version, limit)
        )
        self._track(started, read=len(records))
        return records

    async def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]:
        tenant = self.tenant
        f = filter or ReadFilter()
        if f.tenant is not None and f.tenant != tenant:
            raise InvalidInputError(
                f"the store of tenant {tenant!r} cannot read tenant {f.tenant!r}; get that "
                "tenant's store from the TenantManager"
            )
        if self._ns:
            f = replace(f, tenant=tenant, stream_id_prefix=self._ns + (f.stream_id_prefix or ""))
        started = time.perf_counter()
        records = self._out(await self.inner.read_all(from_position, limit, None if f.is_empty else f))
        self._track(started, read=len(records))
        return records

    async def stream_version(self, stream_id: str) -> int:
        return await self.inner.stream_version(self._in(stream_id))

    async def head(self) -> int:
        return await self.inner.head()

    async def wait_for(self, after_position: int, timeout: float) -> int:
        return await self.inner.wait_for(after_position, timeout)

    # --- snapshots, checkpoints, retention -------------------------------------------------

    # Snapshot payloads are stored as they are given: their writers
    # (SnapshotService, a StoredProjection's compaction) already run them
    # through the store's codec (eventuali.snapshots.protect), so the tenant's
    # encryption is applied once.  Older versions added a second layer of their
    # own here (marked _LEGACY_WRAPPED); load_snapshot still takes it off.

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        await self.inner.save_snapshot(snapshot._replace(stream_id=self._in(snapshot.stream_id)))

    async def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        snap = await self.inner.load_snapshot(self._in(stream_id), max_version)
        if snap is None:
            return None
        snap = snap._replace(stream_id=stream_id)
        payload = snap.payload
        if payload[: len(_LEGACY_WRAPPED)] == _LEGACY_WRAPPED and len(payload) > len(_LEGACY_WRAPPED):
            # Written by an older version: its own layer of the tenant's transforms,
            # over the snapshot as its writer gave it (itself protected since 5dc9b46).
            codec = self.snapshot_codec or EventCodec()
            layers = payload[len(_LEGACY_WRAPPED)]
            ident = RecordIdentity(_LEGACY_SNAPSHOT_ID, stream_id, snap.version)
            # A layer that does not decode raises SerializationError (DecryptionError
            # for a wrong key); the snapshot's readers catch it and rebuild.
            payload = codec.unwrap(payload[len(_LEGACY_WRAPPED) + 1 :], ident, layers)
            snap = snap._replace(payload=payload)
        return snap

    async def prune_snapshots(self, stream_id: str, keep: int) -> int:
        return await self.inner.prune_snapshots(self._in(stream_id), keep)

    async def get_checkpoint(self, name: str) -> int | None:
        return await self.inner.get_checkpoint(self._in(name))

    async def set_checkpoint(self, name: str, position: int) -> None:
        await self.inner.set_checkpoint(self._in(name), position)

    async def delete_stream(self, stream_id: str) -> int:
        return await self.inner.delete_stream(self._in(stream_id))

    async def truncate_stream(self, stream_id: str, before_version: int) -> int:
        return await self.inner.truncate_stream(self._in(stream_id), before_version)

    async def aclose(self) -> None:
        # A shared store (row isolation) belongs to the manager, not to one tenant.
        if self._owns:
            await self.inner.aclose()

    def __repr__(self) -> str:
        return f"TenantScopedBackend({self.tenant!r}, {self.inner!r})"


# --- batch mode: group commit ------------------------------------------------------------


class _GroupCommit:
    """Coalesces concurrent appends into one backend call (one transaction, one commit).

    If the combined append fails (a conflict in one of the saves), each save is
    retried on its own so that only the saves at fault fail.
    """

    def __init__(self, backend: AsyncBackend, max_events: int, max_wait_s: float) -> None:
        self.backend = backend
        self.max_events = max_events
        self.max_wait_s = max_wait_s
        self._pending: list[tuple[list[StreamWrite], asyncio.Future]] = []
        self._pending_events = 0
        self._timer: asyncio.TimerHandle | None = None
        self.flushes = 0

    async def append(self, writes: list[StreamWrite]) -> list[int]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._pending.append((writes, fut))
        self._pending_events += sum(len(w.records) for w in writes)
        if self._pending_events >= self.max_events:
            self._schedule_now(loop)
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._schedule_now, loop)
        return await fut

    def _schedule_now(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._pending_events = self._pending, [], 0
        if batch:
            loop.create_task(self._flush(batch))

    async def _flush(self, batch: list[tuple[list[StreamWrite], asyncio.Future]]) -> None:
        self.flushes += 1
        streams = [w.stream_id for ws, _ in batch for w in ws]
        combined = len(batch) > 1 and len(set(streams)) == len(streams)
        if combined:
            try:
                positions = await self.backend.append([w for ws, _ in batch for w in ws])
            except EventualiError:
                pass  # fall through: find out which save is at fault
            else:
                i = 0
                for ws, fut in batch:
                    n = sum(len(w.records) for w in ws)
                    if not fut.done():
                        fut.set_result(positions[i : i + n])
                    i += n
                return
        for ws, fut in batch:
            try:
                result = await self.backend.append(ws)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting save, which re-raises it
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(result)


# --- the tenant store ------------------------------------------------------------------


class TenantEventStore(EventStore):
    """An :class:`~eventuali.EventStore` confined to one tenant, with per-tenant tuning."""

    backend: TenantScopedBackend

    def __init__(
        self,
        backend: TenantScopedBackend,
        url: StoreURL,
        codec: EventCodec | None,
        provider: str,
        manager: TenantManager,
    ) -> None:
        super().__init__(backend, url, codec, provider)
        backend.snapshot_codec = self.codec
        self.tenant = backend.tenant
        self._manager = manager
        self._group: _GroupCommit | None = None
        self._snapshots: SnapshotService | None = None

    @property
    def tenant_id(self) -> str:
        return self.tenant

    @property
    def metrics(self) -> TenantMetrics | None:
        return self.backend._metrics

    # --- tuning --------------------------------------------------------------------------

    async def enable_batch_mode(self, batch_size: int | None = None, max_wait_ms: float | None = None) -> None:
        """Group concurrent ``save()`` calls into one append (one commit) per batch.

        A save waits at most ``max_wait_ms`` for companions, or until
        ``batch_size`` events are pending.  Pays off when many coroutines save
        at once; a lone save only gets slower by ``max_wait_ms``.
        """
        cfg = self._manager.config
        size = cfg["batch_size"] if batch_size is None else batch_size
        wait = cfg["batch_max_wait_ms"] if max_wait_ms is None else max_wait_ms
        if not isinstance(size, int) or size < 1:
            raise InvalidInputError(f"batch_size={size!r} is invalid; give a positive integer")
        if not isinstance(wait, (int, float)) or wait < 0:
            raise InvalidInputError(f"max_wait_ms={wait!r} is invalid; give a number >= 0")
        self._group = _GroupCommit(self.backend, size, wait / 1000.0)

    async def disable_batch_mode(self) -> None:
        self._group = None

    @property
    def batch_mode(self) -> bool:
        return self._group is not None

    async def set_snapshot_frequency(self, n: int | None) -> None:
        """Snapshot an aggregate every ``n`` events on save; ``load`` starts from the newest.

        Uses :class:`~eventuali.snapshots.SnapshotService`.  ``None`` stops
        taking snapshots.  Snapshot payloads go through the store's codec
        transforms, so they are encrypted when events are.
        """
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise InvalidInputError(
                f"snapshot frequency {n!r} is invalid; give a positive number of events, or None"
            )
        if self._snapshots is not None:
            self._snapshots.detach()
            self._snapshots = None
        if n is not None:
            self._snapshots = SnapshotService(self, SnapshotConfig(snapshot_frequency=n))

    @property
    def snapshot_frequency(self) -> int | None:
        return None if self._snapshots is None else self._snapshots.config.snapshot_frequency

    # --- writing and loading ---------------------------------------------------------------

    async def save(self, *aggregates: Aggregate | Event) -> None:
        writes = self._writes_for(aggregates)
        if not writes:
            return
        if self._group is not None:
            await self._group.append(writes)
        else:
            await self.backend.append(writes)
        _observe_written(self.backend, writes)
        saved = self._committed(aggregates)
        if self._snapshot_hook is not None:
            await self._snapshot_hook(saved, writes)

    async def load(self, aggregate_class: type[A], aggregate_id: str) -> A | None:
        svc = self._snapshots
        if svc is None:
            return await super().load(aggregate_class, aggregate_id)
        # The service's own fallback calls store.load, i.e. this method: go
        # through its parts instead so that a bad snapshot replays, not recurses.
        try:
            snap = await self.backend.load_snapshot(aggregate_id)
        except SerializationError as exc:  # an old snapshot whose tenant layer does not decrypt
            warnings.warn(
                f"snapshot of {aggregate_id!r} is unreadable ({exc}); replaying its events",
                SnapshotWarning, stacklevel=2,
            )
            snap = None
        # Undo the service's protection (the store codec's transforms), as
        # SnapshotService.load_with_snapshot does; None with a warning if it fails.
        snap = svc.codec.unprotected(snap, self.codec)
        agg = svc.codec.decode(aggregate_class, aggregate_id, snap) if snap is not None else None
        if agg is not None and snap is not None:
            records = await self.backend.read_stream(aggregate_id, snap.version + 1)
            done = _continue_from_snapshot(self, agg, records)
            if done is not None:
                return done
        return await super().load(aggregate_class, aggregate_id)

    async def close(self) -> None:
        await self._manager._forget(self)

    def __repr__(self) -> str:
        return f"TenantEventStore(tenant={self.tenant!r}, {self.url.redacted()!r})"


# --- the manager -------------------------------------------------------------------------


class TenantManager:
    """Hands out one :class:`TenantEventStore` per tenant.

    ::

        manager = TenantManager({"isolation_level": "database",
                                 "base_url": "sqlite:///var/lib/app/events.db"})
        store = await manager.get_store("acme")      # /var/lib/app/events.acme.db

    Config keys (all optional): ``isolation_level`` (``"database"`` or
    ``"row"``), ``base_url`` (default ``$EVENTUALI_URL`` or
    ``sqlite://events.db``), ``connection_pool_per_tenant``,
    ``cache_tenant_config``, ``metrics_collection``, ``high_volume_tenants``,
    ``high_volume_threshold`` (events written per minute), ``batch_size``,
    ``batch_max_wait_ms``, ``codec`` (an ``EventCodec`` for every tenant, or a
    callable ``tenant_id -> EventCodec`` for per-tenant keys), ``backend``.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        config = dict(config or {})
        unknown = sorted(set(config) - set(_DEFAULTS))
        if unknown:
            raise ConfigurationError(
                f"unknown TenantManager option(s) {unknown}; valid options: {sorted(_DEFAULTS)}"
            )
        cfg = {**_DEFAULTS, **config}
        if cfg["isolation_level"] not in ISOLATION_LEVELS:
            raise ConfigurationError(
                f"isolation_level={cfg['isolation_level']!r} is invalid; use 'database' (a store "
                "per tenant) or 'row' (one shared store, rows stamped and filtered by tenant)"
            )
        for key in ("high_volume_threshold", "batch_size"):
            if not isinstance(cfg[key], int) or cfg[key] < 1:
                raise ConfigurationError(f"{key}={cfg[key]!r} is invalid; give a positive integer")
        self.config = cfg
        self.base_url: StoreURL = (
            parse_url(cfg["base_url"]) if cfg["base_url"] is not None else _resolve_url(None, {}, "TenantManager")
        )
        self.isolation_level: str = cfg["isolation_level"]
        self._high_volume = {check_tenant_id(t) for t in cfg["high_volume_tenants"]}
        self._stores: dict[str, TenantEventStore] = {}
        self._metrics: dict[str, TenantMetrics] = {}
        self._settings: dict[str, dict[str, Any]] = {}
        self._shared: EventStore | None = None
        self._lock = asyncio.Lock()

    # --- urls ----------------------------------------------------------------------------

    def tenant_url(self, tenant_id: str) -> str:
        """The store URL of ``tenant_id`` under database isolation."""
        check_tenant_id(tenant_id)
        base = self.base_url
        raw = base.raw
        if "{tenant}" in raw:
            return raw.replace("{tenant}", tenant_id)
        scheme = base.scheme + (f"+{base.backend}" if base.backend else "")
        query = raw.partition("?")[2]
        if base.scheme == "sqlite":
            path = base.path
            if path == ":memory:":
                return raw  # each open is its own private database
            stem, dot, ext = path.rpartition(".")
            if not dot or "/" in ext:
                stem, ext = path, "db"
            return f"{scheme}://{stem}.{tenant_id}.{ext}" + (f"?{query}" if query else "")
        if base.scheme == "memory":
            return f"{scheme}://{base.path}.{tenant_id}" if base.path else raw
        if base.scheme == "postgresql":
            prefix = base.options.get("schema", "eventuali")
            # PostgreSQL identifiers take no '-'; tenant ids take no '_', so this is one-to-one.
            schema = f"{prefix}_{tenant_id.replace('-', '_')}"
            if len(schema) > 63:
                raise ConfigurationError(
                    f"tenant {tenant_id!r} under schema prefix {prefix!r} makes schema name "
                    f"{schema!r} ({len(schema)} characters); PostgreSQL allows 63. Use a shorter "
                    "schema= prefix in base_url"
                )
            if "schema" in base.options:
                return re.sub(r"([?&])schema=[^&]*", rf"\g<1>schema={schema}", raw, count=1)
            return raw + ("&" if "?" in raw else "?") + f"schema={schema}"
        raise ConfigurationError(
            f"database isolation cannot derive a per-tenant store from {base.redacted()!r} "
            f"(scheme {base.scheme!r}); put '{{tenant}}' in base_url where the tenant id goes"
        )

    # --- stores --------------------------------------------------------------------------

    def _codec(self, tenant_id: str) -> EventCodec | None:
        codec = self.config["codec"]
        return codec(tenant_id) if callable(codec) and not isinstance(codec, EventCodec) else codec

    async def get_store(self, tenant_id: str) -> TenantEventStore:
        """The store of ``tenant_id`` (opened on first use, then reused)."""
        check_tenant_id(tenant_id)
        store = self._stores.get(tenant_id)
        if store is not None:
            return store
        async with self._lock:
            store = self._stores.get(tenant_id)
            if store is not None:
                return store
            store = await self._open(tenant_id)
            settings = self._settings.get(tenant_id, {})
            if settings.get("batch_mode"):
                await store.enable_batch_mode(*settings["batch_args"])
            if settings.get("snapshot_frequency") is not None:
                await store.set_snapshot_frequency(settings["snapshot_frequency"])
            self._stores[tenant_id] = store
            return store

    async def _open(self, tenant_id: str) -> TenantEventStore:
        cfg = self.config
        metrics = None
        if cfg["metrics_collection"]:
            metrics = self._metrics.setdefault(tenant_id, TenantMetrics(tenant_id))
        codec = self._codec(tenant_id)
        if self.isolation_level == "database":
            url = self.tenant_url(tenant_id)
            parsed = parse_url(url)
            if parsed.scheme == "sqlite" and parsed.path != ":memory:":
                # Tenants come and go at run time; a per-tenant folder
                # ('sqlite:///data/{tenant}/events.db') is made on first use.
                os.makedirs(os.path.dirname(os.path.abspath(parsed.path)), exist_ok=True)
            inner = await EventStore.create(url, backend=cfg["backend"])
            owns = True
        else:
            private = self.base_url.scheme == "memory" and not self.base_url.path
            private = private or self.base_url.path == ":memory:"
            if cfg["connection_pool_per_tenant"] and not private:
                inner = await EventStore.create(self.base_url.raw, backend=cfg["backend"])
                owns = True
            else:
                if self._shared is None:
                    self._shared = await EventStore.create(self.base_url.raw, backend=cfg["backend"])
                inner = self._shared
                owns = False
        scoped = TenantScopedBackend(
            inner.backend, tenant_id, namespaced=self.isolation_level == "row", owns_inner=owns,
            metrics=metrics,
        )
        return TenantEventStore(scoped, inner.url, codec, inner.backend_name, self)

    async def _forget(self, store: TenantEventStore) -> None:
        if self._stores.get(store.tenant) is store:
            del self._stores[store.tenant]
            if self.config["cache_tenant_config"]:
                self._settings[store.tenant] = {
                    "batch_mode": store._group is not None,
                    "batch_args": (
                        (store._group.max_events, store._group.max_wait_s * 1000)
                        if store._group is not None else ()
                    ),
                    "snapshot_frequency": store.snapshot_frequency,
                }
        await store.backend.aclose()

    @property
    def open_tenants(self) -> list[str]:
        return sorted(self._stores)

    # --- volume and metrics ----------------------------------------------------------------

    def mark_high_volume(self, tenant_id: str, high_volume: bool = True) -> None:
        check_tenant_id(tenant_id)
        (self._high_volume.add if high_volume else self._high_volume.discard)(tenant_id)

    def is_high_volume_tenant(self, tenant_id: str) -> bool:
        """Declared high-volume (config or ``mark_high_volume``), or measured.

        Measured: the tenant wrote at least ``high_volume_threshold`` events in
        the last 60 seconds (needs ``metrics_collection``).
        """
        check_tenant_id(tenant_id)
        if tenant_id in self._high_volume:
            return True
        m = self._metrics.get(tenant_id)
        return m is not None and m.events_written_last_minute() >= self.config["high_volume_threshold"]

    def get_tenant_metrics(self, tenant_id: str) -> TenantMetrics:
        """The tenant's metrics (zeros if it did nothing yet)."""
        check_tenant_id(tenant_id)
        if not self.config["metrics_collection"]:
            raise ConfigurationError(
                "per-tenant metrics are off; create the TenantManager with "
                "{'metrics_collection': True}"
            )
        return self._metrics.setdefault(tenant_id, TenantMetrics(tenant_id))

    def get_all_metrics(self) -> dict[str, dict[str, Any]]:
        return {t: m.as_dict() for t, m in sorted(self._metrics.items())}

    # --- lifetime ------------------------------------------------------------------------

    async def close(self) -> None:
        for store in list(self._stores.values()):
            await store.close()
        if self._shared is not None:
            await self._shared.close()
            self._shared = None

    async def __aenter__(self) -> TenantManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"TenantManager(isolation_level={self.isolation_level!r}, "
            f"base_url={self.base_url.redacted()!r}, open={self.open_tenants})"
        )
