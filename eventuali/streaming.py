"""``EventStreamer``: feeds projections from the store — catch-up from a checkpoint, then live.

Per subscription, a reader task pages through ``backend.read_all`` from the
checkpoint and hands batches to a consumer task through a bounded queue (at
most ``buffer_size`` events in flight: a slow projection slows its reader, it
never grows memory).  When the reader has caught up it sleeps until one shared
watcher task sees the store's head move (``backend.wait_for``: woken by
commits, no polling loop per subscription).

Delivery: at least once for :class:`~eventuali.projections.Projection`
(checkpoint every ``checkpoint_interval`` events, when idle and on stop);
exactly once for :class:`~eventuali.projections.StoredProjection` (each
batch's read-model changes, parked events and checkpoint are one ``append``).

Failure policy, when a handler raises: retry ``max_retries`` times with
exponential backoff (``retry_backoff`` seconds, doubling, capped at 5 s); then
``park`` (default) stores a :class:`~eventuali.projections.ParkedEvent` in the
store, atomically with the checkpoint past it, and carries on; ``stop`` stops
that subscription (others keep running) with its checkpoint just before the
failing event and the error on ``Subscription.error``.  No event is skipped
silently: it is handled, parked, or the subscription stops before it.
"""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import Iterable
from typing import Any, cast

from .aggregate import Aggregate
from .asyncio_adapter import async_backend_of
from .errors import (
    ConfigurationError,
    OptimisticConcurrencyError,
    SerializationError,
    StoreClosedError,
)
from .event import Event
from .ids import uuid7
from .projections import (
    ON_ERROR_POLICIES,
    RESERVED_STREAM_TYPE,
    ParkedEvent,
    Projection,
    ReadModel,
    StoredProjection,
    changelog_stream,
    handler_for,
    parked_stream,
)
from .records import ANY, NewRecord, ReadFilter, Record, Snapshot, StreamWrite
from .scaling.election import start_elected
from .scaling.leases import (
    DEFAULT_LEASE_SECONDS,
    LeaseLostError,
    check_lease_seconds,
    new_holder_id,
)
from .serialization import RecordIdentity
from .snapshots import protect, unprotect

_WATCH_TIMEOUT = 0.5  # seconds a wait_for call may block; bounds how long stop() waits
_MAX_BACKOFF = 5.0
IDLE_CHECKPOINT_SECONDS = 1.0
"""A caught-up plain projection stores its checkpoint at most this often (and on stop)."""


def _names(items: Any, attr: str) -> frozenset[str] | None:
    if items is None:
        return None
    if isinstance(items, (str, type)):
        items = [items]
    return frozenset(i if isinstance(i, str) else getattr(i, attr) for i in items)


class Subscription:
    """One projection attached to a streamer: its position, counters and state."""

    def __init__(self, streamer: EventStreamer, projection: Projection, name: str,
                 filter: ReadFilter | None) -> None:
        self.streamer = streamer
        self.projection = projection
        self.name = name
        self.filter = filter
        self.position = 0
        """Every event up to this global position has been handled (or parked)."""
        self.checkpointed = 0
        self.processed = 0
        self.parked = 0
        self.state = "idle"  # idle | running | stopped | failed
        self.error: BaseException | None = None
        self._tasks: list[asyncio.Task] = []
        self._since_checkpoint = 0
        self._checkpoint_time = 0.0
        self._handlers: dict[str, Any] = {}
        self._pending_parked: list[ParkedEvent] = []
        self._pending_resolved: list[int] = []  # positions of parked events handled since
        self._log_version = 0  # change-log stream version (StoredProjection)
        self._log_since_compact = 0
        self._progress = asyncio.Condition()
        self._queue: asyncio.Queue | None = None
        self._busy = False
        self._stopping = False
        self._lease: Any = None  # the Lease this subscription commits under (fenced), if any
        self._elector: asyncio.Task | None = None  # leader election (eventuali.scaling.election)
        self._model: ReadModel | None = None  # a partition's own read model

    @property
    def queued_batches(self) -> int:
        """Batches read and waiting for the projection (at most buffer_size // batch_size)."""
        q = self._queue
        return q.qsize() if q is not None else 0

    @property
    def read_model(self) -> ReadModel:
        """The read model of a StoredProjection subscription."""
        if self._model is not None:
            return self._model
        return cast(StoredProjection, self.projection).state

    @property
    def stored(self) -> bool:
        return isinstance(self.projection, StoredProjection)

    def __repr__(self) -> str:
        return (f"Subscription({self.name!r}, state={self.state}, position={self.position}, "
                f"processed={self.processed}, parked={self.parked})")


class EventStreamer:
    """Runs projections against a store (an ``EventStore`` or a ``SyncEventStore``)."""

    def __init__(self, store: Any) -> None:
        # The streamer is async; a sync store's backend runs in threads.
        self.backend: Any = async_backend_of(store, "EventStreamer")
        if "checkpoints" not in self.backend.capabilities:
            raise ConfigurationError(
                f"the store's engine ({store!r}) does not declare the 'checkpoints' capability, "
                "which projections need to remember their position; use a backend that has it"
            )
        self.store = store
        self.codec = store.codec
        self.buffer_size = 10_000
        self.batch_size = 1_000
        self.max_consumers = 8
        self.checkpoint_interval = 1_000
        self.on_error = "park"
        self.max_retries = 3
        self.retry_backoff = 0.05
        self.subscriptions: dict[str, Subscription] = {}
        self.partitioned: dict[str, Any] = {}
        """Partitioned subscriptions by name (eventuali.scaling.partitions)."""
        self.lease_seconds = DEFAULT_LEASE_SECONDS
        self.worker_id = new_holder_id()
        self._running = False
        self._head = 0
        self._head_changed: asyncio.Condition | None = None
        self._watcher: asyncio.Task | None = None
        self._slots: asyncio.Semaphore | None = None
        self._controlled = False  # start/stop/catch_up/rebuild/retry_parked was called
        self._autostart: asyncio.Task | None = None

    # --- configuration ---------------------------------------------------------------

    async def configure(
        self,
        *,
        buffer_size: int | None = None,
        batch_size: int | None = None,
        max_consumers: int | None = None,
        checkpoint_interval: int | None = None,
        on_error: str | None = None,
        max_retries: int | None = None,
        retry_backoff: float | None = None,
        lease_seconds: float | None = None,
    ) -> None:
        """Tune the streamer (before ``start()``).

        ``buffer_size``: events in flight per subscription (bounded memory);
        ``batch_size``: events per read and per handler batch; ``max_consumers``:
        subscriptions processing at the same time; ``checkpoint_interval``: events
        between checkpoints of a plain projection; ``on_error``: ``"park"`` or
        ``"stop"``; ``max_retries`` / ``retry_backoff``: retries before the policy
        applies and the first delay in seconds; ``lease_seconds``: how long a process that
        stopped renewing keeps its projections' leases (how fast others take over; see
        docs/scaling.md).
        """
        if lease_seconds is not None:
            self.lease_seconds = check_lease_seconds(lease_seconds, "EventStreamer.configure(lease_seconds)")
        for key, value, minimum in (("buffer_size", buffer_size, 1), ("batch_size", batch_size, 1),
                                    ("max_consumers", max_consumers, 1),
                                    ("checkpoint_interval", checkpoint_interval, 1),
                                    ("max_retries", max_retries, 0)):
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigurationError(
                    f"EventStreamer.configure({key}={value!r}) is invalid; give an integer >= {minimum}"
                )
            setattr(self, key, value)
        if on_error is not None:
            self.on_error = _check_policy(on_error, "EventStreamer.configure(on_error=...)")
        if retry_backoff is not None:
            if not isinstance(retry_backoff, (int, float)) or retry_backoff < 0:
                raise ConfigurationError(
                    f"EventStreamer.configure(retry_backoff={retry_backoff!r}) is invalid; give seconds >= 0"
                )
            self.retry_backoff = float(retry_backoff)
        if self.batch_size > self.buffer_size:
            self.batch_size = self.buffer_size

    async def subscribe(
        self,
        projection: Projection,
        *,
        name: str | None = None,
        event_types: Iterable[str | type[Event]] | None = None,
        aggregate_types: Iterable[str | type[Aggregate]] | None = None,
        partitions: int | None = None,
    ) -> Any:
        """Attach ``projection``; it runs from its stored checkpoint, then follows live events.

        On a running streamer it starts at once.  On a streamer nobody has
        started, stopped or caught up yet, the streamer starts itself as soon
        as the caller next yields to the event loop (the guide subscribes and
        never calls ``start()``); calling ``start()``, ``catch_up()``,
        ``rebuild()``, ``retry_parked()`` or ``stop()`` first takes control.

        It runs in one process at a time: every process that subscribes it competes for
        its lease in the store and the others stand by.  ``partitions=N`` splits its feed
        by stream id into N partitions shared by the processes that run it (returns a
        :class:`~eventuali.scaling.PartitionedSubscription`); see docs/scaling.md.
        """
        if not isinstance(projection, Projection):
            raise ConfigurationError(
                f"subscribe() takes an eventuali.Projection, got {type(projection).__name__}; "
                "derive your class from eventuali.Projection"
            )
        name = name or projection.projection_name()
        if name in self.subscriptions or name in self.partitioned:
            raise ConfigurationError(
                f"a projection named {name!r} is already subscribed; give the second one "
                "subscribe(..., name='other-name') (the name is its checkpoint)"
            )
        policy = getattr(projection, "on_error", None)
        if policy is not None:
            _check_policy(policy, f"{type(projection).__name__}.on_error")
        et = event_types if event_types is not None else projection.event_types
        at = aggregate_types if aggregate_types is not None else projection.aggregate_types
        # A tenant-scoped store shows its projections that tenant's events only.
        tenant = getattr(self.store, "tenant", "") or None
        f = ReadFilter(event_types=_names(et, "__event_type__"),
                       stream_types=_names(at, "__aggregate_type__"), tenant=tenant)
        if partitions is not None:
            from .scaling.partitions import PartitionedSubscription

            group = PartitionedSubscription(self, projection, name, None if f.is_empty else f,
                                            partitions)
            self.partitioned[name] = group
            if self._running:
                await group.start()
            return group
        sub = Subscription(self, projection, name, None if f.is_empty else f)
        self.subscriptions[name] = sub
        if self._running:
            await self._start_subscription(sub)
        elif not self._controlled and self._autostart is None:
            self._autostart = asyncio.get_running_loop().create_task(
                self._start_unless_controlled(), name="eventuali-streamer-autostart")
        return sub

    async def _start_unless_controlled(self) -> None:
        if self._controlled:
            return
        try:
            await self._start()
        except StoreClosedError:
            pass  # closed before it ever ran: nobody is waiting for these projections
        except Exception as exc:  # noqa: BLE001 - no caller to raise to: say it
            warnings.warn(f"EventStreamer could not start its subscriptions: {exc!r}",
                          RuntimeWarning, stacklevel=1)

    async def _take_control(self) -> None:
        """The caller drives the streamer from now on: no automatic start (one already
        under way is finished first, so the caller sees a consistent state)."""
        self._controlled = True
        task, self._autostart = self._autostart, None
        if task is not None and task is not asyncio.current_task():
            await asyncio.gather(task, return_exceptions=True)

    async def unsubscribe(self, projection: Projection | str) -> None:
        sub = self._sub(projection)
        await self._stop_subscription(sub)
        del self.subscriptions[sub.name]

    # --- running -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start every subscription: catch up from its checkpoint, then follow live events."""
        await self._take_control()
        await self._start()

    async def _start(self) -> None:
        if self._running:
            return
        self._running = True
        self._head_changed = asyncio.Condition()
        self._slots = asyncio.Semaphore(self.max_consumers)
        self._head = await self.backend.head()
        self._watcher = asyncio.create_task(self._watch(), name="eventuali-head-watcher")
        for sub in list(self.subscriptions.values()):
            await self._start_subscription(sub)
        for group in list(self.partitioned.values()):
            await group.start()

    async def stop(self) -> None:
        """Stop every subscription after its current batch and store the checkpoints."""
        await self._take_control()
        if not self._running:
            return
        self._running = False
        for group in list(self.partitioned.values()):
            await group.stop()
        for sub in list(self.subscriptions.values()):
            await self._stop_subscription(sub)
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None

    async def __aenter__(self) -> EventStreamer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def catch_up(self) -> None:
        """Run every subscription up to the store's current head, then return (no live follow).

        Handy in scripts, tests and batch jobs; checkpoints are stored as usual.
        Running subscriptions are waited for until they have reached that head.
        """
        await self._take_control()
        target = await self.backend.head()
        subs = [s for s in self.subscriptions.values() if s.state != "running"]
        running = [s for s in self.subscriptions.values() if s.state == "running"]
        for sub in subs:
            await self._prepare(sub)
        await asyncio.gather(*(self._run_until(sub, target) for sub in subs),
                             *(self._reached(sub, target) for sub in running))

    @staticmethod
    async def _reached(sub: Subscription, position: int) -> None:
        """Return once ``sub`` has handled everything up to ``position`` (or stopped running)."""
        async with sub._progress:
            await sub._progress.wait_for(lambda: sub.position >= position or sub.state != "running")

    async def wait_until(self, position: int | None = None, timeout: float = 10.0) -> None:
        """Wait until every running subscription has handled the events up to ``position``
        (default: the head now).  Raises ``TimeoutError`` after ``timeout`` seconds."""
        if self._autostart is not None:  # a pending automatic start happens first
            await asyncio.gather(self._autostart, return_exceptions=True)
        if position is None:
            position = await self.backend.head()
        running = [s for s in self.subscriptions.values() if s.state == "running"]
        await asyncio.wait_for(asyncio.gather(*(self._reached(s, position) for s in running)), timeout)

    async def rebuild(self, projection: Projection | str) -> None:
        """Clear the projection and replay every event through it (one call).

        For a ``StoredProjection`` the cleared read model and the zero checkpoint
        are committed together, so a crash mid-rebuild resumes the rebuild.
        """
        await self._take_control()
        sub = self._sub(projection)
        was_running = sub.state == "running"
        await self._stop_subscription(sub)
        await sub.projection.reset()
        if sub.stored:
            await self._load_stored(sub)  # the log's current version
            sub.read_model._clear_for_rebuild()
            sub.position = 0
            await self._commit(sub, force=True)
        else:
            await self.backend.set_checkpoint(sub.name, 0)
        sub.position = sub.checkpointed = 0
        sub.processed = 0
        sub.state = "idle"
        if was_running and self._running:
            await self._start_subscription(sub)
        else:
            await self._prepare(sub)
            await self._run_until(sub, await self.backend.head())

    async def parked_events(self, projection: Projection | str) -> list[ParkedEvent]:
        """Every event parked for ``projection`` (stored in the event store, oldest first)."""
        name = projection if isinstance(projection, str) else self._sub(projection).name
        records = await self.backend.read_stream(parked_stream(name))
        # A record that does not decrypt (wrong or missing key) raises here: dropping
        # it would hide a failed event, showing it is impossible.
        resolved = {json.loads(self._open(r))["position"] for r in records if r.event_type == _RESOLVED}
        parked = [ParkedEvent.from_payload(self._open(r)) for r in records if r.event_type == _PARKED]
        return [p for p in parked if p.position not in resolved]

    async def retry_parked(self, projection: Projection | str) -> list[ParkedEvent]:
        """Deliver the projection's parked events again, oldest first, once each.

        Those handled now are marked resolved in the store (for a StoredProjection,
        in the same append as their read-model changes); returns those still failing,
        which stay parked.  The subscription must not be running: stop the streamer
        first, so the replayed events do not interleave with live ones.
        """
        await self._take_control()
        sub = self._sub(projection)
        if sub.state == "running":
            raise ConfigurationError(
                f"projection {sub.name!r} is running; stop the streamer before retry_parked()"
            )
        await self._prepare(sub)
        still: list[ParkedEvent] = []
        state = sub.read_model if sub.stored else None
        for p in await self.parked_events(sub.name):
            found = await self.backend.read_stream(p.stream_id, p.version, p.version)
            h = handler_for(sub.projection, p.event_type)
            if not found or h is None:
                still.append(p)
                continue
            fn, is_async = h
            try:
                if state is not None:
                    state._begin()
                arg = found[0] if sub.projection.raw else self.codec.decode(found[0])
                result = fn(arg)
                if is_async:
                    await result
                if state is not None:
                    state._end()
            except Exception:  # noqa: BLE001 - it stays parked
                if state is not None:
                    state._rollback()
                still.append(p)
                continue
            sub._pending_resolved.append(p.position)
        if sub._pending_resolved:
            await self._checkpoint(sub, force=True)
        return still

    def _sub(self, projection: Projection | str) -> Subscription:
        if isinstance(projection, str):
            sub = self.subscriptions.get(projection)
        else:
            sub = next((s for s in self.subscriptions.values() if s.projection is projection), None)
        if sub is None:
            raise ConfigurationError(
                f"{projection!r} is not subscribed to this streamer; subscribed: "
                f"{sorted(self.subscriptions) or '(none)'}"
            )
        return sub

    # --- internals -----------------------------------------------------------------------

    async def _watch(self) -> None:
        """The one task that waits for commits and wakes the caught-up readers."""
        cond = self._head_changed
        assert cond is not None
        while self._running:
            try:
                head = await self.backend.wait_for(self._head, _WATCH_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a closed store ends the watch
                warnings.warn(f"EventStreamer stopped watching the store: {exc}", RuntimeWarning,
                              stacklevel=1)
                return
            if head > self._head:
                self._head = head
                async with cond:
                    cond.notify_all()

    async def _prepare(self, sub: Subscription) -> None:
        cp = await self.backend.get_checkpoint(sub.name)
        sub.position = sub.checkpointed = cp or 0
        sub._since_checkpoint = 0
        sub.error = None
        if sub.stored and not await self._load_stored(sub):
            warnings.warn(f"the stored read model of projection {sub.name!r} cannot be restored; "
                          "rebuilding it from the first event", RuntimeWarning, stacklevel=2)
            sub.read_model._clear_for_rebuild()
            sub.position = 0
            await self._commit(sub, force=True)

    async def _start_subscription(self, sub: Subscription) -> None:
        if self.lease_seconds is not None and self._running:
            await start_elected(self, sub)  # runs it once this process holds its lease
            return
        await self._run_subscription(sub)

    async def _run_subscription(self, sub: Subscription) -> None:
        await self._prepare(sub)
        sub.state = "running"
        queue: asyncio.Queue = asyncio.Queue(maxsize=max(1, self.buffer_size // self.batch_size))
        sub._queue = queue
        sub._tasks = [
            asyncio.create_task(self._read(sub, queue), name=f"eventuali-read-{sub.name}"),
            asyncio.create_task(self._consume(sub, queue), name=f"eventuali-consume-{sub.name}"),
        ]

    async def _stop_subscription(self, sub: Subscription) -> None:
        """Stop after the batch in hand: cancelling mid-batch would let a stored projection
        commit part of a batch under the previous checkpoint."""
        elector, sub._elector = sub._elector, None
        if elector is not None:
            elector.cancel()
            await asyncio.gather(elector, return_exceptions=True)
        if sub.state == "standby":
            sub.state = "stopped"
        try:
            await self._halt_subscription(sub)
        finally:
            if sub._lease is not None:
                await sub._lease.release()
                sub._lease = None

    async def _halt_subscription(self, sub: Subscription) -> None:
        tasks, sub._tasks = sub._tasks, []
        if not tasks:
            return
        reader, consumer = tasks
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        sub._stopping = True
        if sub._busy:
            await asyncio.gather(consumer, return_exceptions=True)
        else:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        sub._stopping = False
        if sub.state == "running":
            sub.state = "stopped"
            try:
                await self._checkpoint(sub)
            except LeaseLostError:
                pass  # the new holder resumes from the last checkpoint stored under the lease
        async with sub._progress:
            sub._progress.notify_all()

    async def _read(self, sub: Subscription, queue: asyncio.Queue) -> None:
        try:
            await self._read_loop(sub, queue)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the store failed under the reader
            sub.state = "failed"
            sub.error = exc
            warnings.warn(f"projection {sub.name!r} stopped reading: {exc!r}", RuntimeWarning,
                          stacklevel=1)
            for t in sub._tasks[1:]:
                t.cancel()  # the consumer waits for batches that will not come
            async with sub._progress:
                sub._progress.notify_all()

    async def _read_loop(self, sub: Subscription, queue: asyncio.Queue) -> None:
        pos = sub.position + 1
        cond = self._head_changed
        assert cond is not None
        batch = self.batch_size
        while True:
            seen = self._head
            records = await self.backend.read_all(pos, batch, sub.filter)
            if len(records) == batch:
                upto = records[-1].position
            else:
                # A short page: everything up to the head seen before the read is read.
                upto = max(seen, records[-1].position if records else 0, pos - 1)
            if records or upto >= pos:
                await queue.put((records, upto))  # blocks when the consumer is behind
                pos = upto + 1
            if len(records) < batch:
                def moved(after: int = upto) -> bool:
                    return self._head > after

                async with cond:
                    await cond.wait_for(moved)

    async def _consume(self, sub: Subscription, queue: asyncio.Queue) -> None:
        assert self._slots is not None
        try:
            while not sub._stopping:
                records, upto = await queue.get()
                sub._busy = True  # no await between get() and here: stop() sees it
                try:
                    async with self._slots:
                        ok = await self._process(sub, records, upto)
                finally:
                    sub._busy = False
                if not ok:
                    break
                if (queue.empty() and not sub._stopping
                        and time.monotonic() - sub._checkpoint_time >= IDLE_CHECKPOINT_SECONDS):
                    # Caught up: store progress, at most once a second so that a live
                    # projection does not add a write to every commit it follows.
                    await self._checkpoint(sub)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - surface infrastructure failures
            sub.state = "failed"
            sub.error = exc
            warnings.warn(f"projection {sub.name!r} stopped: {exc!r}", RuntimeWarning, stacklevel=1)
        finally:
            if sub.state == "failed":
                for t in sub._tasks[:1]:
                    t.cancel()  # the reader: nothing more will be consumed
                async with sub._progress:
                    sub._progress.notify_all()

    async def _run_until(self, sub: Subscription, target: int) -> None:
        pos = sub.position + 1
        while pos <= target:
            records = await self.backend.read_all(pos, self.batch_size, sub.filter)
            upto = records[-1].position if len(records) == self.batch_size else target
            if not await self._process(sub, records, upto):
                return
            pos = upto + 1
        await self._checkpoint(sub)

    async def _process(self, sub: Subscription, records: list[Record], upto: int) -> bool:
        """Handle one batch; False when the subscription must stop (policy ``stop``)."""
        projection = sub.projection
        raw = projection.raw
        decode = self.codec.decode
        if not raw and getattr(self.store, "_keyring", None) is not None:
            from .security.forget import prefetch_keys

            decode = await prefetch_keys(self.store, records)
        handlers = sub._handlers
        state = sub.read_model if sub.stored else None
        n = 0
        for rec in records:
            if rec.stream_type == RESERVED_STREAM_TYPE:
                continue
            et = rec.event_type
            h = handlers.get(et, _UNSET)
            if h is _UNSET:
                h = handlers[et] = handler_for(projection, et)
            if h is None:
                continue
            fn, is_async = h
            try:
                if state is not None:
                    state._begin()
                arg = rec if raw else decode(rec)
                if is_async:
                    await fn(arg)
                else:
                    fn(arg)
                if state is not None:
                    state._end()
            except Exception as exc:  # noqa: BLE001 - the failure policy decides
                if state is not None:
                    state._rollback()
                if not await self._retry(sub, rec, fn, is_async, exc):
                    sub.position = rec.position - 1
                    sub.processed += n
                    sub._since_checkpoint += n
                    await self._checkpoint(sub, force=True)
                    sub.state = "failed"
                    async with sub._progress:
                        sub._progress.notify_all()
                    return False
            n += 1
        sub.processed += n
        sub._since_checkpoint += n
        sub.position = upto
        if sub.stored or sub._pending_parked or sub._since_checkpoint >= self.checkpoint_interval:
            await self._checkpoint(sub)
        async with sub._progress:
            sub._progress.notify_all()
        return True

    async def _retry(self, sub: Subscription, rec: Record, fn: Any, is_async: bool,
                     exc: Exception) -> bool:
        """Retry a failed handler; park the event (True) or give up (False) per the policy."""
        projection = sub.projection
        retries = projection.max_retries if projection.max_retries is not None else self.max_retries
        policy = projection.on_error or self.on_error
        state = sub.read_model if sub.stored else None
        delay = self.retry_backoff
        attempts = 1
        for _ in range(retries):
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)
            attempts += 1
            try:
                if state is not None:
                    state._begin()
                arg = rec if projection.raw else self.codec.decode(rec)
                if is_async:
                    await fn(arg)
                else:
                    fn(arg)
                if state is not None:
                    state._end()
                return True
            except Exception as again:  # noqa: BLE001
                if state is not None:
                    state._rollback()
                exc = again
        sub.error = exc
        if policy == "stop":
            return False
        sub._pending_parked.append(ParkedEvent(
            projection=sub.name, position=rec.position, stream_id=rec.stream_id,
            version=rec.version, event_type=rec.event_type,
            error=f"{type(exc).__name__}: {exc}", attempts=attempts,
            parked_at=time.time_ns() // 1000,
        ))
        sub.parked += 1
        return True

    async def _checkpoint(self, sub: Subscription, force: bool = False) -> None:
        if (sub.position == sub.checkpointed and not sub._pending_parked
                and not sub._pending_resolved and not force):
            return
        if sub.stored:
            await self._commit(sub, force)
            return
        hook = getattr(sub.projection, "before_checkpoint", None)
        if hook is not None:
            r = hook(sub.position)
            if asyncio.iscoroutine(r):
                await r
        if sub._pending_parked or sub._pending_resolved:
            await self._store(sub, [self._parked_write(sub)])
            sub._pending_parked.clear()
            sub._pending_resolved.clear()
        else:
            await self._store(sub, [])
        sub.checkpointed = sub.position
        sub._since_checkpoint = 0
        sub._checkpoint_time = time.monotonic()

    async def _store(self, sub: Subscription, writes: list[StreamWrite]) -> None:
        """Store ``writes`` and the checkpoint in one append; under a lease, fenced by it."""
        if sub._lease is not None:
            await sub._lease.fenced_append(writes, (sub.name, sub.position))
        elif writes:
            await self.backend.append(writes, (sub.name, sub.position))
        else:
            await self.backend.set_checkpoint(sub.name, sub.position)

    def _parked_write(self, sub: Subscription) -> StreamWrite:
        ts = time.time_ns() // 1000
        stream = parked_stream(sub.name)
        payloads = [(_PARKED, p.to_payload()) for p in sub._pending_parked]
        payloads += [(_RESOLVED, json.dumps({"position": pos}).encode())
                     for pos in sub._pending_resolved]
        recs = []
        for event_type, payload in payloads:
            eid = uuid7().bytes
            # Appended at ANY version: the version is not known yet, so it is not bound.
            recs.append(NewRecord(eid, event_type, 1, ts, b"", self._seal(payload, eid, stream, None)))
        return StreamWrite(stream, RESERVED_STREAM_TYPE, ANY, recs)

    # --- the library's own records go through the store's payload transforms -------------

    def _seal(self, payload: bytes, event_id: bytes, stream_id: str, version: int | None) -> bytes:
        """A change-log or parked record's payload as it is stored.

        Those records hold what the events hold (read-model values, stream ids,
        handler errors), so a store that encrypts its events encrypts them too,
        bound to the record's own identity like an event: a payload copied onto
        another record does not decrypt.
        """
        return self.codec.wrap(payload, RecordIdentity(event_id, stream_id, version))

    def _open(self, record: Record) -> bytes:
        """Undo :meth:`_seal` (``unwrap`` stops at the JSON's ``{``: records written in clear
        text, by older versions or without transforms, load as they are)."""
        return self.codec.unwrap(
            record.payload, RecordIdentity(record.event_id, record.stream_id, record.version)
        )

    # --- stored projections: read model, change log and checkpoint in one append ----------

    async def _load_stored(self, sub: Subscription) -> bool:
        """Load the read model from its snapshot and change log; False if it cannot be trusted."""
        state = sub.read_model
        state._data.clear()
        state._changes.clear()
        state._reset = False
        stream = changelog_stream(sub.name)
        from_version = 1
        try:
            snap = await self.backend.load_snapshot(stream)
        except SerializationError as exc:  # e.g. a tenant store's snapshot that does not decrypt
            warnings.warn(f"read-model snapshot of {sub.name!r} is unreadable ({exc})",
                          RuntimeWarning, stacklevel=2)
            snap = None
        if snap is not None:
            try:
                # Undoes the store's payload transforms (a snapshot that does not
                # decrypt - wrong or missing key - is refused here like a corrupt one).
                state._load_snapshot(unprotect(snap.payload, self.codec, stream, snap.version))
                from_version = snap.version + 1
            except Exception as exc:  # noqa: BLE001 - fall back to the full log
                warnings.warn(f"read-model snapshot of {sub.name!r} is unreadable ({exc})",
                              RuntimeWarning, stacklevel=2)
                state._data.clear()
        records = await self.backend.read_stream(stream, from_version)
        sub._log_version = await self.backend.stream_version(stream)
        sub._log_since_compact = len(records)
        if records and records[0].version != from_version or (
            not records and sub._log_version >= from_version
        ):
            # The log does not continue where the snapshot ends (truncated past an
            # unreadable snapshot): the only trustworthy state is a rebuild.
            state._data.clear()
            return False
        unreadable: tuple[int, Exception] | None = None
        for r in records:
            try:
                reset = state._apply_log(self._open(r))
            except Exception as exc:  # noqa: BLE001 - wrong/missing key, corrupt record
                # Skipping the record would leave a read model that silently misses
                # its changes; applying later ones is harmless (it is thrown away
                # unless a later record resets the whole read model).
                if unreadable is None:
                    unreadable = (r.version, exc)
                continue
            if reset:
                unreadable = None  # a rebuild started here: what came before does not matter
        if unreadable is not None:
            warnings.warn(f"the change log of projection {sub.name!r} is unreadable at version "
                          f"{unreadable[0]} ({unreadable[1]})", RuntimeWarning, stacklevel=2)
            state._data.clear()
            return False
        return True

    async def _commit(self, sub: Subscription, force: bool = False) -> None:
        """One append: the read-model changes, parked events and the checkpoint, together."""
        payload = sub.read_model._take_changes()
        writes = []
        if payload is not None:
            ts = time.time_ns() // 1000
            stream, eid = changelog_stream(sub.name), uuid7().bytes
            # The exact expected version makes the record's version known: it is bound.
            stored = self._seal(payload, eid, stream, sub._log_version + 1)
            writes.append(StreamWrite(
                stream, RESERVED_STREAM_TYPE, sub._log_version,
                [NewRecord(eid, "$eventuali.ReadModelChanged", 1, ts, b"", stored)],
            ))
        if sub._pending_parked or sub._pending_resolved:
            writes.append(self._parked_write(sub))
        if not writes and sub.position == sub.checkpointed and not force:
            return
        try:
            await self._store(sub, writes)
        except OptimisticConcurrencyError as exc:
            raise ConfigurationError(
                f"the read model of projection {sub.name!r} was changed by someone else (another "
                f"process running the same projection?): {exc}; run each stored projection once"
            ) from exc
        if payload is not None:
            sub._log_version += 1
            sub._log_since_compact += 1
        sub._pending_parked.clear()
        sub._pending_resolved.clear()
        sub.checkpointed = sub.position
        sub._since_checkpoint = 0
        sub._checkpoint_time = time.monotonic()
        if sub._log_since_compact >= cast(StoredProjection, sub.projection).compact_every:
            await self._compact(sub)

    async def _compact(self, sub: Subscription) -> None:
        """Store the whole read model as a snapshot of its change log (loading then skips the log).

        The snapshot goes through the store's payload transforms like an aggregate
        snapshot: on a store that encrypts its events the read model is not written
        in clear text.
        """
        stream = changelog_stream(sub.name)
        payload = protect(sub.read_model._snapshot_payload(), self.codec, stream, sub._log_version)
        snap = Snapshot(stream, sub._log_version, 1, time.time_ns() // 1000, payload)
        await self.backend.save_snapshot(snap)
        await self.backend.prune_snapshots(stream, 2)
        if "truncate" in self.backend.capabilities:
            await self.backend.truncate_stream(stream, sub._log_version + 1)
        sub._log_since_compact = 0


_UNSET = object()
_PARKED = "$eventuali.ParkedEvent"
_RESOLVED = "$eventuali.ParkedEventResolved"


def _check_policy(policy: str, where: str) -> str:
    if policy not in ON_ERROR_POLICIES:
        raise ConfigurationError(
            f"{where} = {policy!r} is not a failure policy; choose one of {ON_ERROR_POLICIES}"
        )
    return policy
