"""Partitioned subscriptions: one projection's feed shared by every process that runs it.

``await streamer.subscribe(projection, partitions=8)`` in each process.  A
stream's events all belong to partition ``crc32(stream_id) % 8``
(:func:`~eventuali.scaling.leases.partition_of`), so per-stream order holds.
Each partition has its own lease (``$lease:<name>#<p>``), checkpoint
(``<name>#<p>``) and, for a :class:`~eventuali.projections.StoredProjection`,
its own read model (change log ``$projection:<name>#<p>``); its commits are
fenced by its lease.

Each process runs two tasks:

- the coordinator, every ``lease_seconds / 4``: heartbeat into
  ``$workers:<name>``, count the live workers, renew its leases, give back
  partitions above its fair share ``ceil(N / workers)`` (after checkpointing
  them) and take free or expired ones up to that share;
- the runner: reads the feed once for all the partitions it holds, from the
  lowest of their checkpoints, and hands each partition its own events
  through the streamer's batch machinery (``_process``: handlers, retries,
  parking, checkpoints).
"""

from __future__ import annotations

import asyncio
import math
import time
import warnings
from typing import Any

from ..errors import ConfigurationError
from ..projections import Projection, ReadModel, StoredProjection
from ..records import ReadFilter
from .leases import TICKS_PER_LEASE, Lease, LeaseLostError, Members, partition_of

MAX_PARTITIONS = 4096


def partition_name(name: str, partition: int) -> str:
    """The checkpoint name of one partition (its change log is ``$projection:<this>``)."""
    return f"{name}#{partition}"


class PartitionedSubscription:
    """A projection whose partitions are shared by the processes that subscribe it."""

    def __init__(self, streamer: Any, projection: Projection, name: str,
                 filter: ReadFilter | None, partitions: int) -> None:
        if isinstance(partitions, bool) or not isinstance(partitions, int) or not (
                1 <= partitions <= MAX_PARTITIONS):
            raise ConfigurationError(
                f"subscribe(partitions={partitions!r}) is invalid; give an integer from 1 to "
                f"{MAX_PARTITIONS} (the same in every process running {name!r})"
            )
        self.streamer = streamer
        self.projection = projection
        self.name = name
        self.filter = filter
        self.partitions = partitions
        self.state = "idle"  # idle | running | stopped | failed
        self.error: BaseException | None = None
        self.held: dict[int, Any] = {}
        """Partition -> its Subscription, for the partitions this process holds now."""
        self.processed = 0
        self._leases: dict[int, Lease] = {}
        self._members: Members | None = None
        self._tasks: list[asyncio.Task] = []
        self._batch = asyncio.Lock()  # held by the runner during a batch
        self._wake = asyncio.Event()

    def __repr__(self) -> str:
        return (f"PartitionedSubscription({self.name!r}, partitions={self.partitions}, "
                f"held={sorted(self.held)}, state={self.state})")

    @property
    def stored(self) -> bool:
        return isinstance(self.projection, StoredProjection)

    def read_model(self) -> dict[str, Any]:
        """The read model of the partitions this process holds, merged (StoredProjection)."""
        out: dict[str, Any] = {}
        for p in sorted(self.held):
            out.update(self.held[p].read_model.to_dict())
        return out

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self.state == "running":
            return
        s = self.streamer
        self._leases = {
            p: Lease(s.backend, f"$lease:{partition_name(self.name, p)}", s.worker_id,
                     s.lease_seconds, {"partitions": self.partitions})
            for p in range(self.partitions)
        }
        self._members = Members(s.backend, f"$workers:{self.name}", s.worker_id, s.lease_seconds)
        self.state = "running"
        self.error = None
        await self._coordinate()  # a lone process takes its partitions before start() returns
        self._tasks = [
            asyncio.create_task(self._coordinator(), name=f"eventuali-coordinate-{self.name}"),
            asyncio.create_task(self._runner(), name=f"eventuali-partitions-{self.name}"),
        ]

    async def stop(self) -> None:
        """Finish the batch in hand, checkpoint and give back every partition."""
        tasks, self._tasks = self._tasks, []
        if tasks:
            tasks[0].cancel()
            await asyncio.gather(tasks[0], return_exceptions=True)
            async with self._batch:
                tasks[1].cancel()
            await asyncio.gather(tasks[1], return_exceptions=True)
        for p in sorted(self.held):
            await self._give_back(p)
        if self._members is not None:
            try:
                await self._members.beat(left=True)
            except Exception:  # noqa: BLE001 - the others will see the heartbeats stop
                pass
        if self.state == "running":
            self.state = "stopped"

    # --- coordination ---------------------------------------------------------------------

    async def _coordinator(self) -> None:
        tick = self.streamer.lease_seconds / TICKS_PER_LEASE
        due = time.monotonic()
        while True:
            due += tick  # a fixed rate: the time a round takes does not stretch the period
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic() - tick)
            try:
                await self._coordinate()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - store unreachable: leases run out, retry
                warnings.warn(f"projection {self.name!r}: coordination failed ({exc!r})",
                              RuntimeWarning, stacklevel=1)

    async def _coordinate(self) -> None:
        assert self._members is not None
        await self._members.beat()
        workers = await self._members.alive()
        for p in sorted(self.held):
            if not await self._leases[p].renew():
                await self._drop(p)
        looks = {p: await self._leases[p].look() for p in range(self.partitions)
                 if p not in self.held}
        # A holder whose lease ran out is gone, whatever its last heartbeat says: do not
        # leave room for it (its partitions would wait for its heartbeat to age too).
        gone = {v.holder for v, free in looks.values() if free and not v.released and v.holder}
        workers = [w for w in workers if w not in gone or w == self.streamer.worker_id]
        share = math.ceil(self.partitions / len(workers))
        for p in sorted(self.held, reverse=True)[: max(0, len(self.held) - share)]:
            await self._give_back(p)  # a worker joined: make room for it
        if len(self.held) < share:
            # Start looking at a place that depends on the worker, so that workers
            # starting together do not all race for partition 0 first.
            me = workers.index(self.streamer.worker_id)
            first = me * self.partitions // len(workers)
            order = [(first + i) % self.partitions for i in range(self.partitions)]
            for p in order:
                if len(self.held) >= share:
                    break
                if p in looks and looks[p][1] and await self._leases[p].try_acquire(looks[p]):
                    await self._adopt(p)
        self._wake.set()
        cond = self.streamer._head_changed
        if cond is not None:
            async with cond:
                cond.notify_all()

    async def _adopt(self, p: int) -> None:
        from ..streaming import Subscription

        sub = Subscription(self.streamer, self.projection, partition_name(self.name, p), self.filter)
        sub._lease = self._leases[p]
        if self.stored:
            sub._model = ReadModel()
        async with self._batch:
            try:
                self._use_model(sub)
                await self.streamer._prepare(sub)
            except LeaseLostError:
                self._leases[p].lose()
                return
            sub.state = "running"
            self.held[p] = sub

    async def _give_back(self, p: int) -> None:
        async with self._batch:
            sub = self.held.pop(p, None)
            if sub is None:
                return
            try:
                await self.streamer._checkpoint(sub)
            except LeaseLostError:
                pass
            sub.state = "stopped"
            await self._leases[p].release()

    async def _drop(self, p: int) -> None:
        """Forget a partition whose lease is lost (uncommitted work is thrown away)."""
        sub = self.held.pop(p, None)
        self._leases[p].lose()
        if sub is not None:
            sub.state = "stopped"

    def _use_model(self, sub: Any) -> None:
        # Handlers write ``self.state``: point it at this partition's read model.
        if sub._model is not None:
            self.projection.__dict__["state"] = sub._model

    # --- running --------------------------------------------------------------------------

    async def _runner(self) -> None:
        try:
            while True:
                caught_up, upto = await self._one_batch()
                if caught_up:
                    await self._idle(upto)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - surface it; leases run out for others
            self.state = "failed"
            self.error = exc
            warnings.warn(f"projection {self.name!r} stopped: {exc!r}", RuntimeWarning, stacklevel=1)

    async def _one_batch(self) -> tuple[bool, int]:
        s = self.streamer
        async with self._batch:
            for p in [p for p in self.held if not self._leases[p].valid()]:
                await self._drop(p)
            if not self.held:
                return True, -1
            start = min(sub.position for sub in self.held.values()) + 1
            seen = s._head
            records = await s.backend.read_all(start, s.batch_size, self.filter)
            full = len(records) == s.batch_size
            upto = records[-1].position if full else max(seen, records[-1].position if records
                                                         else 0, start - 1)
            buckets: dict[int, list] = {}
            n = self.partitions
            for r in records:
                buckets.setdefault(partition_of(r.stream_id, n), []).append(r)
            for p, sub in sorted(self.held.items()):
                if upto <= sub.position:
                    continue
                mine = [r for r in buckets.get(p, ()) if r.position > sub.position]
                self._use_model(sub)
                before = sub.processed
                try:
                    ok = await s._process(sub, mine, upto)
                except LeaseLostError:
                    await self._drop(p)
                    continue
                self.processed += sub.processed - before
                if not ok:  # policy "stop": the whole projection stops before that event
                    raise sub.error or RuntimeError(f"partition {p} of {self.name!r} stopped")
            return not full, upto

    async def _idle(self, upto: int) -> None:
        s = self.streamer
        async with self._batch:
            for p, sub in list(self.held.items()):
                if time.monotonic() - sub._checkpoint_time >= 1.0:
                    try:
                        await s._checkpoint(sub)
                    except LeaseLostError:
                        await self._drop(p)
        cond = s._head_changed
        self._wake.clear()
        if cond is None or upto < 0:  # nothing held: wait for the coordinator
            await _within(self._wake.wait(), s.lease_seconds / TICKS_PER_LEASE)
            return

        async def moved() -> None:
            async with cond:
                await cond.wait_for(lambda: s._head > upto or self._wake.is_set())

        await _within(moved(), s.lease_seconds / TICKS_PER_LEASE)

    async def wait_until(self, position: int | None = None, timeout: float = 10.0) -> None:
        """Wait until every partition this process holds has handled events up to ``position``."""
        target = position if position is not None else await self.streamer.backend.head()
        deadline = time.monotonic() + timeout
        while not self.held or min(sub.position for sub in self.held.values()) < target:
            if self.state == "failed":
                raise self.error or RuntimeError("partitioned subscription failed")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name!r} did not reach position {target} in {timeout}s")
            await asyncio.sleep(0.02)


async def _within(coro: Any, seconds: float) -> None:
    """Run ``coro`` for at most ``seconds``.  Not ``asyncio.wait_for``: on Python 3.10/3.11 it
    can swallow a cancellation that arrives as the inner wait ends, and stop() then hangs."""
    task = asyncio.ensure_future(coro)
    try:
        await asyncio.wait({task}, timeout=seconds)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def load_partitioned_read_model(store: Any, name: str, partitions: int) -> dict[str, Any]:
    """The whole read model of a partitioned StoredProjection, every partition merged.

    Reads what the workers committed (each partition's change log and snapshot),
    from any process; ``name`` is the projection's name.
    """
    from ..streaming import EventStreamer, Subscription

    streamer = EventStreamer(store)
    out: dict[str, Any] = {}
    for p in range(partitions):
        sub = Subscription(streamer, StoredProjection(), partition_name(name, p), None)
        sub._model = ReadModel()
        if not await streamer._load_stored(sub):
            raise ConfigurationError(f"the read model of partition {p} of {name!r} cannot be "
                                     "restored; run the projection to rebuild it")
        out.update(sub.read_model.to_dict())
    return out
