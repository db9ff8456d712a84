"""``BatchProcessor``: save many bare events in store-sized atomic batches, in parallel lanes.

Built on ``store.save_events`` (one backend ``append`` per batch, so each batch
is atomic: all its events or none).  Events are split into lanes by aggregate
id, so the events of one aggregate stay in order in one lane while lanes run
in parallel (``parallel_workers``); a lane saves its events ``batch_size`` at a
time.  A batch the store refuses for a reason that lies in its events
(duplicate id, version conflict, invalid or unserializable event) is split in
halves and retried, down to the events at fault, so one bad event does not
sink a thousand good ones.  Storage failures (the database is down) fail the
whole batch.

A failure raises :class:`BatchSaveError` by default (the guide ignores the
return value, so a silent result would lose events unnoticed): it names the
events not saved and why, and those saved (they stay saved).  With
``on_failure="collect"`` (on the processor or per call) ``save_events`` and
``flush`` return the :class:`BatchResult` instead, ``failed`` listing each
failed event and why.

``add(event)`` buffers events and flushes when ``batch_size`` are waiting or
``max_wait_time`` milliseconds after the first one arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    ConfigurationError,
    DuplicateEventError,
    EventualiError,
    InvalidInputError,
    OptimisticConcurrencyError,
    SerializationError,
    StreamDeletedError,
)
from ..event import Event

_SPLITTABLE = (
    DuplicateEventError,
    InvalidInputError,
    OptimisticConcurrencyError,
    SerializationError,
    StreamDeletedError,
)
"""Errors caused by some event of the batch: worth splitting the batch to find it."""

ON_FAILURE = ("raise", "collect")
_LISTED = 10  # failures spelled out in a BatchSaveError message; all are on .result


@dataclass(frozen=True)
class FailedEvent:
    """One event that was not saved, with the reason."""

    index: int
    """Its index in the events given to ``save_events`` (or the order of ``add`` calls)."""
    event: Event
    error: BaseException

    @property
    def reason(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


@dataclass
class BatchResult:
    """What a ``save_events`` / ``flush`` did."""

    saved: int = 0
    failed: list[FailedEvent] = field(default_factory=list)
    positions: list[int | None] = field(default_factory=list)
    """Per event, in the order given: its global position, or None if it failed."""
    batches: int = 0
    """Backend appends made (including the retries of split batches)."""
    elapsed: float = 0.0
    """Seconds."""

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def events_per_second(self) -> float:
        return self.saved / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def saved_indices(self) -> list[int]:
        """Indices (in the order given) of the events that were saved."""
        return [i for i, pos in enumerate(self.positions) if pos is not None]

    def raise_for_failures(self) -> None:
        """Raise :class:`BatchSaveError` when any event failed."""
        if self.failed:
            raise BatchSaveError(self)

    def _merge(self, other: BatchResult) -> None:
        offset = len(self.positions)
        self.saved += other.saved
        self.failed.extend(
            FailedEvent(f.index + offset, f.event, f.error) for f in other.failed
        )
        self.positions.extend(other.positions)
        self.batches += other.batches
        self.elapsed += other.elapsed


def _ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``#0-2, #5, #7-8``."""
    out: list[str] = []
    last = -2
    for i in indices:
        if out and i == last + 1:
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(f"#{i}")
        last = i
    return ", ".join(out) or "none"


class BatchSaveError(EventualiError):
    """Some events of a ``BatchProcessor`` save were not saved; ``result`` tells which and why.

    The events saved stay saved (each batch is atomic on its own); retry the
    failed ones (``[f.event for f in err.result.failed]``) once their cause is fixed.
    """

    def __init__(self, result: BatchResult) -> None:
        self.result = result
        failed = result.failed
        listed = "; ".join(f"#{f.index} ({type(f.event).__name__}, event_id={getattr(f.event, 'event_id', None)}): "
                           f"{f.reason}" for f in failed[:_LISTED])
        more = f"; and {len(failed) - _LISTED} more (see .result.failed)" if len(failed) > _LISTED else ""
        super().__init__(
            f"{len(failed)} of {len(result.positions)} events were not saved: {listed}{more}. "
            f"Saved ({result.saved}, they stay stored): {_ranges(result.saved_indices)}. "
            "Pass on_failure='collect' to get the BatchResult instead of this error."
        )
        if failed:
            self.__cause__ = failed[0].error


def _check_on_failure(value: str) -> str:
    if value not in ON_FAILURE:
        raise ConfigurationError(
            f"BatchProcessor on_failure={value!r} is invalid; use 'raise' (the default: a "
            "failure raises BatchSaveError) or 'collect' (return the BatchResult with .failed)"
        )
    return value


class BatchProcessor:
    """Saves events in batches; see the module docstring.

    ``max_wait_time`` is in milliseconds (the guide's unit).  ``on_failure``:
    ``"raise"`` (default; :class:`BatchSaveError`) or ``"collect"`` (failures are
    returned in ``BatchResult.failed``).
    """

    def __init__(
        self,
        store: Any,
        batch_size: int = 1000,
        max_wait_time: float = 100,
        parallel_workers: int = 4,
        *,
        isolate_failures: bool = True,
        on_failure: str = "raise",
    ) -> None:
        from ..store import EventStore, SyncEventStore

        self._save: Callable[[Sequence[Event]], Awaitable[list[int]]]
        if isinstance(store, EventStore):
            self._save = store.save_events
        elif isinstance(store, SyncEventStore):
            sync_save = store.save_events

            async def _save(events: Sequence[Event]) -> list[int]:
                return await asyncio.to_thread(sync_save, events)

            self._save = _save
        else:
            raise ConfigurationError(
                f"BatchProcessor(store=...) needs an EventStore or SyncEventStore, got "
                f"{type(store).__name__} {store!r}"
            )
        for name, value in (("batch_size", batch_size), ("parallel_workers", parallel_workers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"BatchProcessor {name}={value!r} is invalid; give an integer >= 1")
        if not isinstance(max_wait_time, (int, float)) or isinstance(max_wait_time, bool) or max_wait_time < 0:
            raise ConfigurationError(
                f"BatchProcessor max_wait_time={max_wait_time!r} is invalid; give milliseconds >= 0"
            )
        self.store = store
        self.batch_size = batch_size
        self.max_wait_time = max_wait_time
        self.parallel_workers = parallel_workers
        self.isolate_failures = isolate_failures
        self.on_failure = _check_on_failure(on_failure)
        self._buffer: list[Event] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task | None = None
        self._unreported = BatchResult()
        self._lock = asyncio.Lock()

    # --- all at once ----------------------------------------------------------------------

    async def save_events(self, events: Iterable[Event], *, on_failure: str | None = None) -> BatchResult:
        """Save ``events`` now, in atomic batches over parallel lanes.

        Raises :class:`BatchSaveError` if any event was not saved, unless
        ``on_failure="collect"`` (here or on the processor): then the result's
        ``failed`` lists them.
        """
        result = await self._save_all(list(events))
        self._report(result, on_failure)
        return result

    def _report(self, result: BatchResult, on_failure: str | None) -> None:
        mode = self.on_failure if on_failure is None else _check_on_failure(on_failure)
        if mode == "raise":
            result.raise_for_failures()

    async def _save_all(self, events: list[Event]) -> BatchResult:
        started = time.perf_counter()
        result = BatchResult(positions=[None] * len(events))
        lanes: list[list[int]] = [[] for _ in range(min(self.parallel_workers, max(1, len(events))))]
        nlanes = len(lanes)
        spread = 0
        for i, ev in enumerate(events):
            aid = getattr(ev, "aggregate_id", None)
            if aid is None:
                lane, spread = spread % nlanes, spread + 1  # its own stream: any lane
            else:
                lane = hash(aid) % nlanes
            lanes[lane].append(i)
        await asyncio.gather(*(self._run_lane(events, lane, result) for lane in lanes if lane))
        result.failed.sort(key=lambda f: f.index)
        result.elapsed = time.perf_counter() - started
        return result

    async def _run_lane(self, events: list[Event], lane: list[int], result: BatchResult) -> None:
        size = self.batch_size
        for start in range(0, len(lane), size):
            await self._save_chunk(events, lane[start:start + size], result)

    async def _save_chunk(self, events: list[Event], idx: list[int], result: BatchResult) -> None:
        chunk = [events[i] for i in idx]
        result.batches += 1
        try:
            bad = [i for i, ev in zip(idx, chunk, strict=True) if not isinstance(ev, Event)]
            if bad:
                raise InvalidInputError(
                    f"BatchProcessor.save_events() takes eventuali.Event objects; item #{bad[0]} is "
                    f"{type(events[bad[0]]).__name__} {events[bad[0]]!r}"
                )
            positions = await self._save(chunk)
        except _SPLITTABLE as exc:
            if self.isolate_failures and len(idx) > 1:
                half = len(idx) // 2
                await self._save_chunk(events, idx[:half], result)
                await self._save_chunk(events, idx[half:], result)
                return
            result.failed.extend(FailedEvent(i, events[i], exc) for i in idx)
            return
        except Exception as exc:  # noqa: BLE001 - storage failure: the whole batch failed
            result.failed.extend(FailedEvent(i, events[i], exc) for i in idx)
            return
        # save_events returns positions grouped by aggregate (first appearance order).
        groups: dict[Any, list[int]] = {}
        for i, ev in zip(idx, chunk, strict=True):
            key = ev.aggregate_id or object()  # as save_events groups them
            groups.setdefault(key, []).append(i)
        order = [i for g in groups.values() for i in g]
        for i, pos in zip(order, positions, strict=True):
            result.positions[i] = pos
        result.saved += len(idx)

    # --- buffered -------------------------------------------------------------------------

    async def add(self, event: Event) -> None:
        """Buffer ``event``; a batch is saved when ``batch_size`` are waiting or after
        ``max_wait_time`` ms.  Results accumulate until ``flush()``/``close()`` return them."""
        self._buffer.append(event)
        if len(self._buffer) >= self.batch_size:
            await self._flush_buffer()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.max_wait_time / 1000, self._on_timer)

    async def add_many(self, events: Iterable[Event]) -> None:
        for ev in events:
            await self.add(ev)

    def _on_timer(self) -> None:
        self._timer = None
        if self._buffer and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.ensure_future(self._flush_buffer())

    async def _flush_buffer(self) -> None:
        async with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            events, self._buffer = self._buffer, []
            if events:
                self._unreported._merge(await self._save_all(events))

    async def flush(self, *, on_failure: str | None = None) -> BatchResult:
        """Save whatever is buffered; return the result of every batch since the last report
        (raising :class:`BatchSaveError` for failures unless ``on_failure="collect"``)."""
        if self._flushing is not None:
            await self._flushing
        await self._flush_buffer()
        result, self._unreported = self._unreported, BatchResult()
        self._report(result, on_failure)
        return result

    async def close(self, *, on_failure: str | None = None) -> BatchResult:
        return await self.flush(on_failure=on_failure)

    @property
    def pending(self) -> int:
        """Events buffered and not yet handed to the store."""
        return len(self._buffer)

    async def __aenter__(self) -> BatchProcessor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
