"""Forgetting a subject (``store.forget``), and the store's steps that need data keys.

Written once as coroutines over ``call(backend.x(...))``: the async store
awaits them, the sync store runs them with :func:`~.keystore.run_sync` (its
engine never suspends).

``forget(subject)``:

1. reads which streams hold the subject's personal data (``$subject:<subject>``)
   and deletes their snapshots, which hold rebuilt state in clear (or under
   the master key only);
2. destroys the subject's data key in the key store (default: deletes that
   reserved stream; SQLite overwrites the rows and empties its WAL);
3. drops the key from this store's cache, deletes the snapshots once more
   (one a concurrent save may have written meanwhile), logs
   ``$eventuali.SubjectForgotten`` in ``$forgotten`` (once: a second call
   finds nothing to destroy and logs nothing), and calls the ``on_forget`` hooks.

From then on the subject's events load, replay and project with the
personal fields at their placeholders.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import (
    ConfigurationError,
    InvalidInputError,
    StorageError,
    StreamDeletedError,
    SubjectForgottenError,
)
from ..event import Event
from ..personal import KeysNeeded
from ..projections import RESERVED_STREAM_TYPE
from ..records import ANY, Record, StreamWrite
from ..serialization import EventCodec
from .keystore import FORGOTTEN_STREAM, StreamKeyStore, SubjectForgotten, call, subject_stream
from .personal_codec import Keyring

_MAX_TRIES = 5


@dataclass(frozen=True)
class ForgetResult:
    """What ``store.forget(subject)`` did."""

    subject: str
    streams: tuple[str, ...]
    """Streams that held the subject's personal data (their snapshots were deleted)."""
    destroyed: bool
    """False when there was no key to destroy (already forgotten, or never had one)."""


def keyring_of(store: Any) -> Keyring:
    ring = getattr(store, "_keyring", None)
    if ring is None:
        raise ConfigurationError(
            f"{store!r} does not protect personal data, so there is nothing to forget; open it "
            "with codec=encrypted_codec(keys) or EventCodec(personal=PersonalData(keys))"
        )
    return ring


async def decode(store: Any, records: Sequence[Record]) -> list[Event]:
    """``codec.decode_many(records)``, loading the data keys it needs first."""
    ring: Keyring | None = store._keyring
    try:
        return store.codec.decode_many(records)
    except KeysNeeded as need:
        if ring is None:
            raise
        missing = need.subjects
    for _ in range(_MAX_TRIES):
        await ring.fetch(missing)
        try:
            with ring.just_fetched():
                return store.codec.decode_many(records)
        except KeysNeeded as need:  # subjects behind the first failure
            missing = need.subjects
    raise StorageError("data keys kept changing while decoding; try again")


async def append(store: Any, build: Callable[[], list[StreamWrite]]) -> tuple[list[int], list[StreamWrite]]:
    """Build the writes (encoding creates data keys as needed), store new keys, append.

    New keys are stored before the events (an unused key is harmless); when
    another writer stored a key for the same subject first, the writes are
    built again with that key.  The records saying which streams hold a
    subject's data go in the same atomic append as the events.
    """
    ring: Keyring = store._keyring
    for _ in range(_MAX_TRIES):
        with ring.writing() as w:
            writes = build()
        if not writes:
            return [], writes
        if not await ring.store_new(w):
            continue
        try:
            positions = await call(store.backend.append([*writes, *ring.link_writes(w)]))
        except StreamDeletedError as exc:
            subject = ring.subject_of_stream(exc.stream_id)
            if subject is None:
                raise
            raise SubjectForgottenError(subject) from None
        ring.linked(w)
        return positions[: sum(len(x.records) for x in writes)], writes
    raise StorageError("data keys kept changing while saving; nothing was written, try again")


async def forget(store: Any, subject: str) -> ForgetResult:
    if not isinstance(subject, str) or not subject:
        raise InvalidInputError(f"forget() takes a subject id (a non-empty str), got {subject!r}")
    ring = keyring_of(store)
    backend = store.backend
    if "delete" not in backend.capabilities:
        raise ConfigurationError(
            f"the engine of {store!r} does not declare the 'delete' capability; forgetting "
            "deletes the subject's key stream"
        )
    await ring.fetch({subject})
    streams = ring.streams_of(subject)
    snapshots = "snapshots" in backend.capabilities

    async def drop_snapshots() -> None:
        if snapshots:
            for stream in sorted(streams):
                await call(backend.prune_snapshots(stream, 0))

    await drop_snapshots()
    destroyed = await ring.key_store.destroy(subject)
    if not isinstance(ring.key_store, StreamKeyStore):
        # The links live in this stream (with the default key store, the key too,
        # and destroy() deleted it): deleting it also tombstones the subject, so
        # it never gets a key again.
        await call(backend.delete_stream(subject_stream(subject)))
    ring.dropped(subject)
    await drop_snapshots()
    result = ForgetResult(subject, tuple(sorted(streams)), destroyed)
    if destroyed:
        ev = SubjectForgotten(subject=subject, streams=len(streams))
        EventCodec.stamp(ev, FORGOTTEN_STREAM, RESERVED_STREAM_TYPE, 0)
        ev.__dict__["aggregate_version"] = None
        await call(backend.append([StreamWrite(FORGOTTEN_STREAM, RESERVED_STREAM_TYPE, ANY,
                                               [store.codec.encode(ev)], store.tenant)]))
    for hook in list(store._forget_hooks):
        out = hook(result)
        if inspect.isawaitable(out):
            await out
    return result


async def prefetch_keys(store: Any, records: Sequence[Record]) -> Callable[[Record], Event]:
    """Load the data keys that decoding ``records`` one by one will need, and return the
    decoder to use for them (projections decode record by record, so that a bad one is
    parked alone; other errors are left to them)."""
    ring: Keyring = store._keyring
    missing: set[str] = set()
    for r in records:
        try:
            store.codec.decode(r)
        except KeysNeeded as need:
            missing |= need.subjects
        except Exception:  # noqa: BLE001 - the handler's policy deals with it, per record
            continue
    if missing:
        await ring.fetch(missing)
    decode = store.codec.decode

    def fresh(record: Record) -> Event:
        with ring.just_fetched():  # the keys were loaded just now, whatever the cache TTL
            return decode(record)

    return fresh
