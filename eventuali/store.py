"""``EventStore`` (async) and ``SyncEventStore``: save and load aggregates and events.

Both are thin: they turn aggregates and events into records with the
:class:`~eventuali.serialization.EventCodec`, hand whole batches to the
backend chosen by the URL (see :mod:`eventuali.registry`), and turn records
back into events.  The two classes share every piece of logic in
:class:`_StoreLogic`; they differ only in awaiting the backend or not.

The synchronous twin exists for code that is not async (scripts, Django or
Flask views, notebooks): same method names, same semantics, no event loop.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, NamedTuple, TypeVar, cast

from .aggregate import Aggregate, _pending, check_aggregate_id
from .asyncio_adapter import ThreadedAsyncBackend
from .errors import InvalidInputError
from .event import Event
from .ids import uuid7
from .observers import written as _observe_written
from .protocol import AsyncBackend, Backend
from .read_filters import read_filter as _filter
from .read_filters import short_page as _short
from .read_filters import stream_filter as _stream_filter
from .read_filters import visible as _visible
from .records import ANY, Record, StoreURL, StreamWrite
from .registry import choose
from .serialization import EventCodec
from .store_options import merge_options
from .url import parse_url

A = TypeVar("A", bound=Aggregate)

DEFAULT_URL = "sqlite://events.db"
"""Where a store lives when no URL is given (env ``EVENTUALI_URL`` overrides)."""

PAGE_SIZE = 1000


class StoredEvent(NamedTuple):
    """An event with the global position it was stored at."""

    position: int
    event: Event


def _check_version(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInputError(f"{name}={value!r} is invalid; versions start at 1")


def _expected_from_event(event: Event, aggregate_id: str, version: object) -> int:
    """The exact expected version for an event that carries ``aggregate_version``.

    Versions on events are >= 1: a 0 or a negative number would become one of the
    negative expected-version sentinels (ANY, NO_STREAM, STREAM_EXISTS) or a
    version that no stream can hold, and skip the concurrency check.
    """
    if type(version) is not int or version < 1:
        raise InvalidInputError(
            f"{type(event).__name__} for aggregate {aggregate_id!r} has aggregate_version="
            f"{version!r}; versions on events start at 1 - give the version the event takes in "
            "its stream (1 for a new stream), or None to append at the stream's end"
        )
    return version - 1


def _base_version(aggregate: Aggregate, pending: int) -> int:
    """The version ``aggregate`` had before its ``pending`` events: the expected version."""
    base = aggregate.version - pending
    if type(base) is not int or base < 0:
        raise InvalidInputError(
            f"{type(aggregate).__name__} {aggregate.id!r} has version {aggregate.version!r} with "
            f"{pending} uncommitted event(s), so it was at version {base!r} before them; an "
            "aggregate's version is >= 0 (0 = new): do not set version by hand, load the aggregate"
        )
    return base


class _StoreLogic:
    """Everything the two stores share: record building and event rebuilding."""

    url: StoreURL
    codec: EventCodec
    tenant: str = ""
    _snapshot_hook: Any = None
    """Set by a SnapshotService: called after a successful save with (aggregates, writes).
    None (the default) costs one attribute test per save."""
    _keyring: Any = None
    """The store's data keys when its codec protects personal data (see docs/security.md)."""
    _forget_hooks: list[Any]

    def _bind_personal(self) -> None:
        """Give this store its own data-key ring when the codec protects personal data."""
        self._forget_hooks = []
        personal = getattr(self.codec, "personal", None)
        if personal is not None:
            self.codec = self.codec.bound(None)
            self._keyring = personal.keyring(self, self.codec)
            self.codec._ring = self._keyring

    def on_forget(self, hook: Any) -> Any:
        """Call ``hook(result)`` (a :class:`~eventuali.security.ForgetResult`) after each
        ``forget``: e.g. rebuild a projection's stored read model.  Usable as a decorator."""
        self._forget_hooks.append(hook)
        return hook

    def _writes_for(self, aggregates: Sequence[Aggregate | Event]) -> list[StreamWrite]:
        writes: list[StreamWrite] = []
        seen: set[str] = set()
        events: list[Event] = []
        encode = self.codec.encode_many
        for agg in aggregates:
            if not isinstance(agg, Aggregate):
                # The guide's ``await store.save(event)``: a bare event is saved as
                # save_events([event]) saves it, in the same atomic append.
                if isinstance(agg, Event):
                    events.append(agg)
                    continue
                raise InvalidInputError(
                    f"save() takes aggregates or events, got {type(agg).__name__} {agg!r}; "
                    "derive your classes from eventuali.Aggregate or eventuali.Event"
                )
            pending = _pending(agg)
            if not pending:
                continue  # nothing to do is not an error
            check_aggregate_id(agg)
            if agg.id in seen:
                raise InvalidInputError(
                    f"aggregate {agg.id!r} is passed to save() twice; save each aggregate once"
                )
            seen.add(agg.id)
            writes.append(
                StreamWrite(
                    agg.id,
                    agg.__aggregate_type__,
                    _base_version(agg, len(pending)),
                    encode(pending),
                    self.tenant,
                )
            )
        if events:
            for w in self._writes_for_events(events, None):
                if w.stream_id in seen:
                    raise InvalidInputError(
                        f"save() got aggregate {w.stream_id!r} and bare events for the same id; "
                        "apply the events to the aggregate instead"
                    )
                writes.append(w)
        return writes

    def _writes_for_events(self, events: Sequence[Event], stream_type: str | None) -> list[StreamWrite]:
        """Group bare events by aggregate id; an event without one starts a stream of its own."""
        groups: dict[str, list[Event]] = {}
        for ev in events:
            if not isinstance(ev, Event):
                raise InvalidInputError(f"save_events() takes events, got {type(ev).__name__} {ev!r}")
            aid = ev.aggregate_id or str(uuid7())
            groups.setdefault(aid, []).append(ev)
        writes = []
        for aid, evs in groups.items():
            first = evs[0]
            st = stream_type or first.aggregate_type or type(first).__event_type__
            v0 = first.aggregate_version
            # Versions given on the events are honoured as an exact expectation;
            # without them the events are appended to whatever the stream holds.
            expected = ANY if v0 is None else _expected_from_event(first, aid, v0)
            for i, ev in enumerate(evs):
                version = None if v0 is None else v0 + i
                if ev.aggregate_version is not None and ev.aggregate_version != version:
                    raise InvalidInputError(
                        f"events for aggregate {aid!r} have aggregate_version "
                        f"{ev.aggregate_version} where {version} was expected; give contiguous "
                        "versions or none"
                    )
                EventCodec.stamp(ev, aid, st, version if version is not None else 0)
                if version is None:
                    ev.__dict__["aggregate_version"] = None
            writes.append(StreamWrite(aid, st, expected, self.codec.encode_many(evs), self.tenant))
        return writes

    @staticmethod
    def _committed(aggregates: Sequence[Aggregate | Event]) -> list[Aggregate]:
        """Mark the saved aggregates committed; returns them (without any bare events)."""
        saved = []
        for agg in aggregates:
            if isinstance(agg, Aggregate):
                _pending(agg).clear()
                saved.append(agg)
        return saved

    def _rebuild(self, cls: type[A], aggregate_id: str, records: list[Record],
                 events: list[Event]) -> A | None:
        if not records:
            return None
        agg = cls(id=aggregate_id)
        agg._replay_many(events)
        agg.__dict__["version"] = records[-1].version
        return agg

    @staticmethod
    def _stored(records: list[Record], events: list[Event]) -> list[StoredEvent]:
        return list(map(StoredEvent, [r.position for r in records], events))


def _resolve_url(url: str | None, options: dict[str, Any], where: str) -> StoreURL:
    """The parsed URL, with engine settings given as keyword arguments merged into its options."""
    parsed = parse_url(url if url is not None else os.environ.get("EVENTUALI_URL", DEFAULT_URL))
    return merge_options(parsed, options, where)


class EventStore(_StoreLogic):
    """The async event store.  Create with ``await EventStore.create(url)``."""

    def __init__(self, backend: AsyncBackend, url: StoreURL, codec: EventCodec | None = None,
                 provider: str = "?") -> None:
        self.backend = backend
        self.url = url
        self.codec = codec or EventCodec()
        self.backend_name = provider
        self._bind_personal()

    async def _decode(self, records: list[Record]) -> list[Event]:
        if self._keyring is None:
            return self.codec.decode_many(records)
        from .security.forget import decode

        return await decode(self, records)

    async def _append(self, build: Any) -> tuple[list[int], list[StreamWrite]]:
        if self._keyring is None:
            writes = build()
            return (await self.backend.append(writes) if writes else []), writes
        from .security.forget import append

        return await append(self, build)

    async def forget(self, subject: str) -> Any:
        """Destroy ``subject``'s data key: its personal fields read as placeholders from now on.

        Deletes the snapshots of the streams holding its data, logs the
        forgetting, and calls the ``on_forget`` hooks; idempotent.  Returns a
        :class:`~eventuali.security.ForgetResult`.  See docs/security.md.
        """
        from .security.forget import forget

        return await forget(self, subject)

    @classmethod
    async def create(
        cls,
        url: str | None = None,
        *,
        backend: str | None = None,
        codec: EventCodec | None = None,
        **options: Any,
    ) -> EventStore:
        """Open (creating if needed) the store at ``url``.

        ``url`` defaults to ``$EVENTUALI_URL`` or ``sqlite://events.db``.  ``backend``
        names the engine (beats ``EVENTUALI_BACKEND``; default ``auto``).  Engine
        settings (pool size, timeouts, ...) are URL options, or the same names
        as keyword arguments (the guide's ``**DATABASE_CONFIG["postgresql"]``,
        ``connect_args``/``server_settings`` flattened), validated alike; a
        setting given both ways with different values is refused.
        """
        parsed = _resolve_url(url, options, "EventStore.create()")
        provider = choose(parsed, backend)
        open_async = getattr(provider, "open_async", None)
        abackend = open_async(parsed) if open_async is not None else None
        if abackend is not None and hasattr(abackend, "__await__"):
            abackend = await abackend
        if abackend is None:
            import asyncio

            sync = await asyncio.to_thread(provider.open, parsed)
            abackend = ThreadedAsyncBackend(sync, inline=parsed.scheme == "memory")
        return cls(cast(AsyncBackend, abackend), parsed, codec, provider.name)

    # --- writing -----------------------------------------------------------------

    async def save(self, *aggregates: Aggregate | Event) -> None:
        """Persist the uncommitted events of one or more aggregates, atomically.

        A stale aggregate raises ``OptimisticConcurrencyError`` and nothing is
        written (for any of the aggregates).  Aggregates with nothing to save
        are skipped.  A bare event among them is saved as ``save_events`` saves
        it, in the same atomic append.
        """
        _, writes = await self._append(lambda: self._writes_for(aggregates))
        if writes:
            _observe_written(self.backend, writes)
            saved = self._committed(aggregates)
            if self._snapshot_hook is not None:
                await self._snapshot_hook(saved, writes)

    async def save_all(self, aggregates: Iterable[Aggregate]) -> None:
        await self.save(*aggregates)

    async def save_events(self, events: Sequence[Event], *, stream_type: str | None = None) -> list[int]:
        """Append bare events in one atomic batch; returns their global positions.

        Events are grouped by ``aggregate_id``; an event without one starts a
        stream of its own.  Events carrying ``aggregate_version`` are checked
        against the stream's version; events without are appended at its end.
        """
        positions, writes = await self._append(lambda: self._writes_for_events(events, stream_type))
        if writes:
            _observe_written(self.backend, writes)
        return positions

    save_batch = save_events

    # --- reading -----------------------------------------------------------------

    async def load(self, aggregate_class: type[A], aggregate_id: str) -> A | None:
        """The aggregate rebuilt from its events, or None when it has none."""
        records = await self.backend.read_stream(aggregate_id)
        return self._rebuild(aggregate_class, aggregate_id, records, await self._decode(records))

    async def load_events(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[Event]:
        _check_version("from_version", from_version)
        records = await self.backend.read_stream(aggregate_id, from_version, to_version)
        return await self._decode(records)

    async def read_all(
        self,
        from_position: int = 1,
        limit: int = PAGE_SIZE,
        *,
        event_types: Iterable[str | type[Event]] | None = None,
        aggregate_types: Iterable[str | type[Aggregate]] | None = None,
        aggregate_id_prefix: str | None = None,
        tenant: str | None = None,
    ) -> list[StoredEvent]:
        """One page of events in global order, from ``from_position`` on."""
        f = _filter(event_types, aggregate_types, aggregate_id_prefix, tenant)
        got = await self.backend.read_all(from_position, limit, f)
        records, asked = _visible(got, f), limit
        # Bookkeeping left out: read on, so a short page still means the end of the feed.
        while not _short(got, asked) and len(records) < limit:
            asked = limit - len(records)
            got = await self.backend.read_all(got[-1].position + 1, asked, f)
            records += _visible(got, f)
        return self._stored(records, await self._decode(records))

    async def stream_all(
        self, from_position: int = 1, *, batch_size: int = PAGE_SIZE, **filters: Any
    ) -> AsyncIterator[StoredEvent]:
        """Every event from ``from_position`` on, page by page (bounded memory)."""
        f = _stream_filter(filters)
        pos = from_position
        while True:
            records = await self.backend.read_all(pos, batch_size, f)
            shown = _visible(records, f)
            for se in self._stored(shown, await self._decode(shown)):
                yield se
            if len(records) < batch_size:
                return
            pos = records[-1].position + 1

    async def load_events_by_type(
        self,
        aggregate_type: str | type[Aggregate],
        from_position: int = 1,
        limit: int | None = None,
    ) -> list[Event]:
        """Every event of aggregates of ``aggregate_type`` (in global order)."""
        out: list[Event] = []
        async for se in self.stream_all(from_position, aggregate_types=aggregate_type):
            out.append(se.event)
            if limit is not None and len(out) >= limit:
                break
        return out

    async def load_events_by_event_type(
        self, event_type: str | type[Event], from_position: int = 1, limit: int | None = None
    ) -> list[Event]:
        """Every event of ``event_type`` (in global order)."""
        out: list[Event] = []
        async for se in self.stream_all(from_position, event_types=event_type):
            out.append(se.event)
            if limit is not None and len(out) >= limit:
                break
        return out

    async def stream_version(self, aggregate_id: str) -> int:
        return await self.backend.stream_version(aggregate_id)

    async def head(self) -> int:
        return await self.backend.head()

    async def delete_aggregate(self, aggregate_id: str) -> int:
        """Delete the aggregate's events and snapshots for good; its id cannot be reused."""
        return await self.backend.delete_stream(aggregate_id)

    async def close(self) -> None:
        if self._keyring is not None:
            self._keyring.close()
        await self.backend.aclose()

    async def __aenter__(self) -> EventStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"EventStore({self.url.redacted()!r}, backend={self.backend_name!r})"


class SyncEventStore(_StoreLogic):
    """The synchronous twin of :class:`EventStore`: same methods, no ``await``.

    ``store = SyncEventStore.create("sqlite://events.db")``
    """

    def __init__(self, backend: Backend, url: StoreURL, codec: EventCodec | None = None,
                 provider: str = "?") -> None:
        self.backend = backend
        self.url = url
        self.codec = codec or EventCodec()
        self.backend_name = provider
        self._bind_personal()

    def _decode(self, records: list[Record]) -> list[Event]:
        if self._keyring is None:
            return self.codec.decode_many(records)
        from .security.forget import decode
        from .security.keystore import run_sync

        return run_sync(decode(self, records))

    def _append(self, build: Any) -> tuple[list[int], list[StreamWrite]]:
        if self._keyring is None:
            writes = build()
            return (self.backend.append(writes) if writes else []), writes
        from .security.forget import append
        from .security.keystore import run_sync

        return run_sync(append(self, build))

    def forget(self, subject: str) -> Any:
        """The synchronous twin of :meth:`EventStore.forget`."""
        from .security.forget import forget
        from .security.keystore import run_sync

        return run_sync(forget(self, subject))

    @classmethod
    def create(
        cls, url: str | None = None, *, backend: str | None = None, codec: EventCodec | None = None,
        **options: Any,
    ) -> SyncEventStore:
        parsed = _resolve_url(url, options, "SyncEventStore.create()")
        provider = choose(parsed, backend)
        return cls(provider.open(parsed), parsed, codec, provider.name)

    def save(self, *aggregates: Aggregate | Event) -> None:
        _, writes = self._append(lambda: self._writes_for(aggregates))
        if writes:
            _observe_written(self.backend, writes)
            saved = self._committed(aggregates)
            if self._snapshot_hook is not None:
                self._snapshot_hook(saved, writes)

    def save_all(self, aggregates: Iterable[Aggregate]) -> None:
        self.save(*aggregates)

    def save_events(self, events: Sequence[Event], *, stream_type: str | None = None) -> list[int]:
        positions, writes = self._append(lambda: self._writes_for_events(events, stream_type))
        if writes:
            _observe_written(self.backend, writes)
        return positions

    save_batch = save_events

    def load(self, aggregate_class: type[A], aggregate_id: str) -> A | None:
        records = self.backend.read_stream(aggregate_id)
        return self._rebuild(aggregate_class, aggregate_id, records, self._decode(records))

    def load_events(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> list[Event]:
        _check_version("from_version", from_version)
        return self._decode(self.backend.read_stream(aggregate_id, from_version, to_version))

    def read_all(
        self,
        from_position: int = 1,
        limit: int = PAGE_SIZE,
        *,
        event_types: Iterable[str | type[Event]] | None = None,
        aggregate_types: Iterable[str | type[Aggregate]] | None = None,
        aggregate_id_prefix: str | None = None,
        tenant: str | None = None,
    ) -> list[StoredEvent]:
        f = _filter(event_types, aggregate_types, aggregate_id_prefix, tenant)
        got = self.backend.read_all(from_position, limit, f)
        records, asked = _visible(got, f), limit
        while not _short(got, asked) and len(records) < limit:
            asked = limit - len(records)
            got = self.backend.read_all(got[-1].position + 1, asked, f)
            records += _visible(got, f)
        return self._stored(records, self._decode(records))

    def stream_all(
        self, from_position: int = 1, *, batch_size: int = PAGE_SIZE, **filters: Any
    ) -> Iterator[StoredEvent]:
        f = _stream_filter(filters)
        pos = from_position
        while True:
            records = self.backend.read_all(pos, batch_size, f)
            shown = _visible(records, f)
            yield from self._stored(shown, self._decode(shown))
            if len(records) < batch_size:
                return
            pos = records[-1].position + 1

    def load_events_by_type(
        self, aggregate_type: str | type[Aggregate], from_position: int = 1, limit: int | None = None
    ) -> list[Event]:
        it = (se.event for se in self.stream_all(from_position, aggregate_types=aggregate_type))
        return list(islice(it, limit))

    def load_events_by_event_type(
        self, event_type: str | type[Event], from_position: int = 1, limit: int | None = None
    ) -> list[Event]:
        it = (se.event for se in self.stream_all(from_position, event_types=event_type))
        return list(islice(it, limit))

    def stream_version(self, aggregate_id: str) -> int:
        return self.backend.stream_version(aggregate_id)

    def head(self) -> int:
        return self.backend.head()

    def delete_aggregate(self, aggregate_id: str) -> int:
        return self.backend.delete_stream(aggregate_id)

    def close(self) -> None:
        if self._keyring is not None:
            self._keyring.close()
        self.backend.close()

    def __enter__(self) -> SyncEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncEventStore({self.url.redacted()!r}, backend={self.backend_name!r})"
