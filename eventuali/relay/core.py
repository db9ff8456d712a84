"""``Relay``: every committed event, in global order, published to a NATS JetStream stream.

One relay per store and relay name publishes at a time: it holds the lease
``$lease:<name>`` (see :mod:`eventuali.scaling.leases`); others stand by.

Each event becomes one JetStream message on the subject its template gives
(``events.{aggregate_type}.{event_type}``), with ``Nats-Msg-Id`` = the event
id (JetStream drops a re-sent id within its duplicate window) and headers
``Eventuali-Position``, ``-Stream-Id``, ``-Version``, ``-Event-Type`` and
``-Relay`` (the aggregate type is in the subject and the envelope; every
header costs: nats-py's throughput here halves from none to six).  The payload is the record's payload as
stored: the event's JSON envelope, or ciphertext on an encrypted store unless
``decrypt=True`` (then the store's codec opens it).

Exactly once, in order, across kills and outages: a batch is published
pipelined on one connection (so JetStream stores a prefix of it, in order),
the checkpoint (in the store, fenced by the lease) moves only past messages
JetStream acknowledged, and before (re)publishing the relay resyncs: it
resumes after the later of its checkpoint and the last message of its own in
the stream whose event id matches the store's event at that position.  So a
re-send is needed only within the duplicate window, and the window drops it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
import warnings
from typing import Any
from urllib.parse import urlsplit

from ..asyncio_adapter import async_backend_of
from ..errors import ConfigurationError
from ..projections import RESERVED_STREAM_TYPE
from ..scaling.leases import (
    DEFAULT_LEASE_SECONDS,
    TICKS_PER_LEASE,
    Lease,
    LeaseLostError,
    check_lease_seconds,
    new_holder_id,
)
from ..serialization import RecordIdentity
from .subjects import DEFAULT_SUBJECT, compile_subject, subject_matches, subject_root

NATS_SCHEMES = ("nats", "tls", "ws", "wss")
_STREAM_NAME = re.compile(r"^[^\s.*>/\\]{1,255}$")
_RESYNC_LOOKBACK = 100


def check_nats_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except (ValueError, AttributeError, TypeError) as exc:
        raise ConfigurationError(f"NATS URL {url!r} is malformed ({exc}); e.g. "
                                 "nats://127.0.0.1:4222") from exc
    if parts.scheme not in NATS_SCHEMES or not parts.hostname:
        raise ConfigurationError(f"NATS URL {url!r} is not a NATS server address; give "
                                 f"{'|'.join(NATS_SCHEMES)}://host:port, e.g. nats://127.0.0.1:4222")
    return url


class Relay:
    """Publishes a store's events to a JetStream stream; ``await relay.run(stop_event)``."""

    def __init__(self, store: Any, *, nats: str = "nats://127.0.0.1:4222", stream: str = "EVENTS",
                 subject: str = DEFAULT_SUBJECT, name: str | None = None, batch_size: int = 1000,
                 decrypt: bool = False, lease_seconds: float = DEFAULT_LEASE_SECONDS,
                 ack_timeout: float = 5.0, create_stream: bool = False) -> None:
        self.backend: Any = async_backend_of(store, "Relay")
        if not isinstance(stream, str) or not _STREAM_NAME.match(stream):
            raise ConfigurationError(f"JetStream stream name {stream!r} is invalid; names have no "
                                     "spaces, '.', '*', '>', '/' or '\\'")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"Relay(batch_size={batch_size!r}) is invalid; give an integer >= 1")
        self.store = store
        self.url = check_nats_url(nats)
        self.stream = stream
        self.template = subject
        self._subject = compile_subject(subject)
        self.name = name or f"relay-{stream}"
        self.batch_size = batch_size
        self.decrypt = decrypt
        self.lease_seconds = check_lease_seconds(lease_seconds, "Relay(lease_seconds)")
        self.ack_timeout = ack_timeout
        self.create_stream = create_stream
        self.position = 0
        """Every event up to this global position is in JetStream (acknowledged)."""
        self.published = 0
        self.state = "idle"  # idle | standby | connecting | running | stopped
        self._lease = Lease(self.backend, f"$lease:{self.name}", new_holder_id(), self.lease_seconds)
        self._covered: dict[str, bool] = {}
        self._subjects: list[str] = []

    def __repr__(self) -> str:
        return (f"Relay({self.name!r}, nats={self.url!r}, stream={self.stream!r}, "
                f"state={self.state}, position={self.position})")

    async def lag(self) -> int:
        """Committed positions not yet in JetStream (the store's head minus ``position``)."""
        return max(0, await self.backend.head() - self.position)

    # --- running ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None, *, until: int | None = None) -> None:
        """Relay until ``stop`` is set (or, with ``until``, until that position is relayed).

        Waits while another relay holds the lease and while NATS is unreachable;
        raises ConfigurationError for what waiting cannot fix (no such stream, a
        subject outside the stream).
        """
        try:
            import nats
        except ImportError as exc:  # pragma: no cover - the extra is not installed
            raise ConfigurationError('the relay needs nats-py: pip install "eventuali[nats]"') from exc
        stop = stop or asyncio.Event()
        tick = self.lease_seconds / TICKS_PER_LEASE
        try:
            while not stop.is_set():
                if not await self._lease.try_acquire():
                    self.state = "standby"
                    await _sleep(stop, tick)
                    continue
                keeper = asyncio.create_task(self._keep(stop))
                try:
                    if await self._session(nats, stop, until):
                        return
                finally:
                    keeper.cancel()
                    await asyncio.gather(keeper, return_exceptions=True)
        finally:
            await self._lease.release()
            self.state = "stopped"

    async def _keep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.lease_seconds / TICKS_PER_LEASE)
            await self._lease.renew()

    async def _session(self, nats: Any, stop: asyncio.Event, until: int | None) -> bool:
        """Connect and publish while the lease holds; True when done (``until`` reached)."""
        self.state = "connecting"
        nc = None
        backoff = 0.2
        while nc is None:
            if stop.is_set() or not self._lease.valid():
                return False
            try:
                nc = await nats.connect(self.url, connect_timeout=2, allow_reconnect=True,
                                        max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                        error_cb=_quiet, disconnected_cb=_quiet0,
                                        reconnected_cb=_quiet0, closed_cb=_quiet0)
            except Exception as exc:  # noqa: BLE001 - unreachable: wait, the lease is renewed
                warnings.warn(f"relay {self.name!r}: NATS at {self.url} unreachable ({exc!r}); "
                              "retrying", RuntimeWarning, stacklevel=1)
                await _sleep(stop, backoff)
                backoff = min(backoff * 2, 5.0)
        try:
            js = nc.jetstream()
            await self._check_stream(js)
            self.state = "running"
            return await self._publish_loop(js, stop, until)
        finally:
            try:
                await nc.close()
            except Exception:  # noqa: BLE001
                pass

    async def _check_stream(self, js: Any) -> None:
        from nats.js.errors import NotFoundError

        try:
            info = await js.stream_info(self.stream)
        except NotFoundError:
            if not self.create_stream:
                raise ConfigurationError(
                    f"JetStream stream {self.stream!r} does not exist on {self.url}; create it "
                    f"(nats stream add {self.stream} --subjects '{subject_root(self.template)}') "
                    "or let the relay create it (--create-stream / create_stream=True)"
                ) from None
            info = await js.add_stream(name=self.stream, subjects=[subject_root(self.template)])
        self._subjects = list(info.config.subjects or [])

    def _check_subject(self, subject: str) -> None:
        ok = self._covered.get(subject)
        if ok is None:
            ok = self._covered[subject] = any(subject_matches(p, subject) for p in self._subjects)
        if not ok:
            raise ConfigurationError(
                f"subject {subject!r} (template {self.template!r}) is not among the subjects of "
                f"JetStream stream {self.stream!r} ({self._subjects}); add it to the stream or "
                "change the template"
            )

    async def _resync(self, js: Any) -> int:
        """Where to resume: after the checkpoint, or after our last message in the stream."""
        pos = await self.backend.get_checkpoint(self.name) or 0
        state = (await js.stream_info(self.stream)).state
        seq = state.last_seq
        for _ in range(_RESYNC_LOOKBACK):
            if seq < max(1, state.first_seq):
                break
            try:
                msg = await js.get_msg(self.stream, seq)
            except Exception:  # noqa: BLE001 - deleted message: look further back
                seq -= 1
                continue
            hdr = msg.headers or {}
            if hdr.get("Eventuali-Relay") == self.name:
                there = int(hdr["Eventuali-Position"])
                if there > pos and await self._is_ours(there, hdr.get("Nats-Msg-Id", "")):
                    pos = there
                break
            seq -= 1
        return pos

    async def _is_ours(self, position: int, msg_id: str) -> bool:
        recs = await self.backend.read_all(position, 1)
        return bool(recs) and recs[0].position == position and str(
            uuid.UUID(bytes=recs[0].event_id)) == msg_id

    async def _publish_loop(self, js: Any, stop: asyncio.Event, until: int | None) -> bool:
        pos = self.position = await self._resync(js)
        saved_at = time.monotonic()
        while not stop.is_set():
            if until is not None and pos >= until:
                return True
            if not self._lease.valid():
                return False
            records = await self.backend.read_all(pos + 1, self.batch_size)
            out = [r for r in records if r.stream_type != RESERVED_STREAM_TYPE]
            new = records[-1].position if records else pos
            if out:
                acked = await self._publish(js, out)
                if acked < len(out):
                    new = out[acked - 1].position if acked else pos
            if new > pos and (out or time.monotonic() - saved_at >= 1.0):
                try:
                    await self._lease.fenced_append([], (self.name, new))
                except LeaseLostError:
                    return False
                saved_at = time.monotonic()
                pos = self.position = new
            elif new > pos and not out:
                pos = self.position = new  # only bookkeeping records: nothing to publish
            if out and new < out[-1].position:
                await _sleep(stop, 0.5)  # NATS is away: wait, then find out what it kept
                pos = self.position = await self._resync(js)
                continue
            if len(records) < self.batch_size:
                await self.backend.wait_for(pos, 0.5)
        return False

    async def _publish(self, js: Any, records: list) -> int:
        """Publish pipelined; how many of ``records``, from the first, JetStream acknowledged.

        Not ``js.publish_async``: it yields to the event loop after every message, so
        nats-py's flusher sends each one in a syscall of its own (measured: ~40x slower
        here).  Here the whole batch goes into the client's buffer without a yield and
        leaves in a few writes; acknowledgements come back on one inbox subscription.
        """
        nc = js._nc
        loop = asyncio.get_running_loop()
        inbox = nc.new_inbox()
        futures: dict[str, asyncio.Future] = {}

        async def on_ack(msg: Any) -> None:
            f = futures.get(msg.subject.rsplit(".", 1)[1])
            if f is None or f.done():
                return
            if not msg.data:  # a status message: no stream took the subject
                f.set_exception(RuntimeError(f"no JetStream answer ({msg.headers})"))
                return
            resp = json.loads(msg.data)
            if "error" in resp:
                f.set_exception(RuntimeError(f"JetStream: {resp['error']}"))
            else:
                f.set_result(resp.get("seq"))

        sub = await nc.subscribe(inbox + ".*", cb=on_ack)
        order: list[asyncio.Future] = []
        unwrap = self.store.codec.unwrap
        try:
            try:
                for i, r in enumerate(records):
                    subject = self._subject(r)
                    self._check_subject(subject)
                    payload = r.payload
                    if self.decrypt:
                        payload = unwrap(payload, RecordIdentity(r.event_id, r.stream_id, r.version))
                    f = futures[str(i)] = loop.create_future()
                    order.append(f)
                    await nc.publish(subject, payload, reply=f"{inbox}.{i}", headers={
                        "Nats-Msg-Id": str(uuid.UUID(bytes=r.event_id)),
                        "Eventuali-Position": str(r.position),
                        "Eventuali-Stream-Id": r.stream_id,
                        "Eventuali-Version": str(r.version),
                        "Eventuali-Event-Type": r.event_type,
                        "Eventuali-Relay": self.name,
                    })
            except ConfigurationError:
                raise
            except Exception as exc:  # noqa: BLE001 - disconnected mid-batch: count what was acked
                warnings.warn(f"relay {self.name!r}: publish failed ({exc!r})", RuntimeWarning,
                              stacklevel=1)
            if order:
                await asyncio.wait(order, timeout=self.ack_timeout)
        finally:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001 - the connection is gone with it
                pass
        acked = 0
        for f in order:
            if not f.done() or f.exception() is not None:
                break
            acked += 1
        if acked < len(order) and order[acked].done():
            warnings.warn(f"relay {self.name!r}: JetStream refused a message "
                          f"({order[acked].exception()!r})", RuntimeWarning, stacklevel=1)
        for f in order[acked:]:
            if not f.done():
                f.cancel()
            else:
                f.exception()  # retrieved: no "never retrieved" noise
        self.published += acked
        return acked


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    task = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task}, timeout=seconds)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _quiet(exc: Exception) -> None:
    """nats-py logs connection errors itself; the relay reports what it does about them."""


async def _quiet0() -> None:
    pass
