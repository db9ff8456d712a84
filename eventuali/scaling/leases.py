"""Leases kept in the event store itself, built on the protocol's optimistic concurrency.

A lease is a stream (``$lease:<name>``, stream type ``$eventuali``).  Taking,
renewing and releasing it are appends *with an exact expected version*: a
compare-and-set that every engine already implements atomically (memory,
SQLite, PostgreSQL, the C engine, third-party engines).  No engine code is
involved, so the core imports no engine package.

Expiry without trusting clocks: a holder renews every ``lease_seconds / 4``
and stops trusting its lease ``lease_seconds / 2`` after the *start* of its
last successful renewal (its own monotonic clock).  Another process counts a
lease as expired once it has seen the same lease version, unchanged, for
``lease_seconds / 2`` of *its* monotonic clock.  It first saw that version
after the holder wrote it, hence after the holder's request started: the old
holder gives up before anyone may take over.  Only clock *rates* must agree.
A holder that dies is replaced within ``lease_seconds``: its last renewal is
at most a tick old, others see it at most a tick later, wait half a period,
and take it at their next tick.

Fencing: a holder's commits carry an empty write on the lease stream with
the lease's version as expected version (``StreamWrite(..., records=[])``
only checks the version), in the same ``append`` as the checkpoint.  Once
someone else has taken the lease its version has moved, so a stale holder's
commit fails whole (:class:`LeaseLostError`) - it cannot write a read model
or a checkpoint after losing its lease, whatever its clock says.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, EventualiError, OptimisticConcurrencyError
from ..ids import uuid7
from ..projections import RESERVED_STREAM_TYPE
from ..records import ANY, NewRecord, StreamWrite

ACQUIRED = "$eventuali.LeaseAcquired"
RENEWED = "$eventuali.LeaseRenewed"
RELEASED = "$eventuali.LeaseReleased"
HEARTBEAT = "$eventuali.WorkerHeartbeat"
LEFT = "$eventuali.WorkerLeft"

DEFAULT_LEASE_SECONDS = 10.0
TICKS_PER_LEASE = 4
"""A holder renews (and a standby looks) this many times per lease period."""
_COMPACT_EVERY = 200
"""Renewals between truncations of a lease stream (engines with ``truncate``)."""


class LeaseLostError(EventualiError):
    """This process no longer holds the lease it was working under; nothing was written."""


def partition_of(stream_id: str, partitions: int) -> int:
    """The partition of a stream: CRC-32 of its UTF-8 id modulo ``partitions``.

    Stable across processes, machines and Python runs (``hash()`` is salted
    per process); every event of one stream lands in one partition, so
    per-stream order is kept.
    """
    return zlib.crc32(stream_id.encode("utf-8", "surrogatepass")) % partitions


def new_holder_id() -> str:
    """``host:pid:random`` - unique per process start, readable in the lease records."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def check_lease_seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"{where}={value!r} is invalid; give the lease period in seconds (> 0)")
    return float(value)


def _record(event_type: str, doc: dict[str, Any]) -> NewRecord:
    payload = json.dumps(doc, separators=(",", ":")).encode()
    return NewRecord(uuid7().bytes, event_type, 1, time.time_ns() // 1000, b"", payload)


@dataclass
class LeaseView:
    """The last record of a lease stream as one process sees it."""

    version: int
    holder: str | None
    released: bool
    seconds: float
    info: dict[str, Any]


class Lease:
    """One lease (a stream) as seen and possibly held by this process."""

    def __init__(self, backend: Any, stream: str, holder: str, seconds: float,
                 info: dict[str, Any] | None = None) -> None:
        self.backend = backend
        self.stream = stream
        self.holder = holder
        self.seconds = seconds
        self.info = info or {}
        self.version = 0
        """The lease stream's version written by our last successful take or renewal."""
        self.held = False
        self.lock = asyncio.Lock()
        """Held around every write under this lease: a renewal must not move the version
        between a commit reading it and the commit's append."""
        self._renewed_at = 0.0
        self._seen: tuple[int, float] = (-1, 0.0)  # (version, monotonic time first seen)
        self._renewals = 0

    # --- looking ----------------------------------------------------------------------

    async def view(self) -> LeaseView:
        v = await self.backend.stream_version(self.stream)
        if v == 0:
            return LeaseView(0, None, True, self.seconds, {})
        recs = await self.backend.read_stream(self.stream, v, v)
        if not recs:  # truncated or deleted between the two calls: look again next time
            return LeaseView(v, "?", False, self.seconds, {})
        doc = json.loads(recs[0].payload)
        return LeaseView(v, doc.get("holder"), recs[0].event_type == RELEASED,
                         float(doc.get("seconds", self.seconds)), doc)

    def valid(self) -> bool:
        """True while this process may act under the lease (its own clock, with no margin
        for others: they wait a full period after *seeing* our last renewal)."""
        return self.held and time.monotonic() - self._renewed_at < self.seconds / 2

    # --- taking, keeping, giving back ---------------------------------------------------

    async def look(self) -> tuple[LeaseView, bool]:
        """The lease as it is now, and whether it is free to take (never taken, released, or
        unchanged for half a period of this process's clock)."""
        seen = await self.view()
        now = time.monotonic()
        if seen.version != self._seen[0]:
            self._seen = (seen.version, now)
        expired = now - self._seen[1] >= seen.seconds / 2
        return seen, not seen.version or seen.released or expired

    async def try_acquire(self, looked: tuple[LeaseView, bool] | None = None) -> bool:
        """Take the lease if it is free (see :meth:`look`); True if taken."""
        if self.held:
            return await self.renew()
        seen, free = looked or await self.look()
        if not free:
            return False
        self._check_info(seen)
        async with self.lock:
            started = time.monotonic()
            try:
                await self.backend.append([self._write(ACQUIRED, seen.version)])
            except OptimisticConcurrencyError:
                return False  # another process was quicker
            self.version = seen.version + 1
            self.held = True
            self._renewed_at = started
            return True

    def _check_info(self, seen: LeaseView) -> None:
        theirs = seen.info.get("partitions")
        ours = self.info.get("partitions")
        if theirs is not None and ours is not None and theirs != ours:
            raise ConfigurationError(
                f"lease {self.stream!r} was taken by a worker running {theirs} partitions, this one "
                f"runs {ours}; every process of a projection needs the same partitions= (changing it "
                "needs a new projection name and a rebuild)"
            )

    async def renew(self) -> bool:
        """Extend the lease; False once it is lost (taken by another, or not renewed in time)."""
        if not self.held:
            return False
        async with self.lock:
            started = time.monotonic()
            try:
                await self.backend.append([self._write(RENEWED, self.version)])
            except OptimisticConcurrencyError:
                self.held = False
                return False
            except Exception:  # noqa: BLE001 - the store is unreachable: retry next tick
                return self.valid()
            self.version += 1
            self._renewed_at = started
            self._renewals += 1
        if self._renewals % _COMPACT_EVERY == 0 and "truncate" in self.backend.capabilities:
            # Keep the lease stream short; versions (the compare-and-set) are unchanged.
            await self.backend.truncate_stream(self.stream, self.version)
        return self.valid()

    async def release(self) -> None:
        """Give the lease back at once (others need not wait for it to expire)."""
        if not self.held:
            return
        async with self.lock:
            self.held = False
            try:
                await self.backend.append([self._write(RELEASED, self.version)])
            except Exception:  # noqa: BLE001 - taken already, or the store is gone: it expires
                return

    def lose(self) -> None:
        self.held = False

    def _write(self, event_type: str, expected: int) -> StreamWrite:
        doc = {"holder": self.holder, "seconds": self.seconds, **self.info}
        return StreamWrite(self.stream, RESERVED_STREAM_TYPE, expected, [_record(event_type, doc)])

    # --- fenced writes ------------------------------------------------------------------

    def fence(self) -> StreamWrite:
        """An empty write that only checks that the lease is still at our version."""
        return StreamWrite(self.stream, RESERVED_STREAM_TYPE, self.version, [])

    async def fenced_append(self, writes: Sequence[StreamWrite],
                            checkpoint: tuple[str, int] | None) -> None:
        """``append(writes + fence, checkpoint)``: all of it, or nothing and LeaseLostError."""
        async with self.lock:
            if not self.valid():
                self.held = False
                raise LeaseLostError(f"lease {self.stream!r} expired before this write; "
                                     "another process may hold it now")
            try:
                await self.backend.append([*writes, self.fence()], checkpoint)
            except OptimisticConcurrencyError as exc:
                if exc.stream_id != self.stream:
                    raise
                self.held = False
                raise LeaseLostError(f"lease {self.stream!r} was taken by another process "
                                     f"(version {exc.actual}, ours {exc.expected})") from exc


class Members:
    """Which workers of one projection are alive: heartbeats in one stream, judged by change."""

    WINDOW = 256

    def __init__(self, backend: Any, stream: str, worker: str, seconds: float) -> None:
        self.backend = backend
        self.stream = stream
        self.worker = worker
        self.seconds = seconds
        self._last: dict[str, tuple[int, float, bool]] = {}  # worker -> (version, seen at, left)

    async def beat(self, left: bool = False) -> None:
        rec = _record(LEFT if left else HEARTBEAT, {"worker": self.worker})
        await self.backend.append([StreamWrite(self.stream, RESERVED_STREAM_TYPE, ANY, [rec])])

    async def alive(self) -> list[str]:
        """Workers whose heartbeat moved within half a lease period (this one always counts)."""
        v = await self.backend.stream_version(self.stream)
        recs = await self.backend.read_stream(self.stream, max(1, v - self.WINDOW + 1)) if v else []
        now = time.monotonic()
        latest: dict[str, tuple[int, bool]] = {}
        for r in recs:
            latest[json.loads(r.payload)["worker"]] = (r.version, r.event_type == LEFT)
        for w, (version, left) in latest.items():
            old = self._last.get(w)
            if old is None or old[0] != version:
                self._last[w] = (version, now, left)
        live = {w for w, (_, at, left) in self._last.items()
                if not left and now - at < self.seconds / 2}
        live.add(self.worker)
        if v and v % 1000 == 0 and "truncate" in self.backend.capabilities:
            await self.backend.truncate_stream(self.stream, max(1, v - self.WINDOW))
        return sorted(live)
