"""Where subjects' data keys live (``KeyStore``), and how they are wrapped (``KeyWrapper``).

A data key is 32 random bytes per subject; it encrypts that subject's
personal fields (see :mod:`eventuali.personal`).  It is never stored as it is:
a :class:`KeyWrapper` wraps it first - by default :class:`MasterKeyWrapper`,
AES-256-GCM under the store's master :class:`~eventuali.security.KeyManager`;
an external KMS implements the same two methods.  A :class:`KeyStore` keeps
the wrapped keys; destroying one is what forgetting a subject means.

The default key store, :class:`StreamKeyStore`, keeps each subject's wrapped
key in a reserved stream of the same event store, ``$subject:<subject>``
(stream type ``$eventuali``, skipped by projections), written through the
store's codec like any record, so it goes wherever the events go, on every
engine, with nothing engine-specific.  Destroying a key deletes that stream:
an engine that keeps files leaves no bytes of it behind where it can (SQLite:
``secure_delete`` and a WAL checkpoint), and the tombstone stops the subject
from getting a new key under the same id.

Both protocols are coroutines.  A ``SyncEventStore`` drives them without an
event loop, so a key store used by one must not really suspend (the default
one does not: it calls the sync engine).
"""

from __future__ import annotations

import base64
import inspect
import os
from collections.abc import Awaitable, Collection, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

from cryptography.exceptions import InvalidTag

from ..errors import (
    ConfigurationError,
    DecryptionError,
    OptimisticConcurrencyError,
    StreamDeletedError,
)
from ..event import Event
from ..projections import RESERVED_STREAM_TYPE
from ..records import ANY, NO_STREAM, Record, StreamWrite
from ..serialization import EventCodec
from .keys import KeyManager

T = TypeVar("T")

SUBJECT_STREAM_PREFIX = "$subject:"
"""Reserved stream of one subject: its wrapped data key (default key store) and the
streams that hold its personal data."""
FORGOTTEN_STREAM = "$forgotten"
"""Reserved stream where every forgetting is logged (``$eventuali.SubjectForgotten``)."""
_WRAP_AAD = b"eventuali-data-key-v1\x00"


def subject_stream(subject: str) -> str:
    return SUBJECT_STREAM_PREFIX + subject


class StoredKey(NamedTuple):
    """A wrapped data key: which wrapping key wrapped it, and the wrapped bytes."""

    wrapping_key_id: str
    wrapped: bytes


# --- the reserved records ----------------------------------------------------------


class SubjectKeyStored(Event):
    """A subject's wrapped data key (default key store), first record of ``$subject:<subject>``."""

    __event_type__ = "$eventuali.SubjectKey"
    subject: str
    wrapping_key_id: str
    wrapped: str
    """base64"""


class SubjectStreamLinked(Event):
    """Stream ``stream`` holds personal data of the subject (so forgetting finds its snapshots)."""

    __event_type__ = "$eventuali.SubjectStream"
    stream: str


class SubjectForgotten(Event):
    """``store.forget(subject)`` destroyed the subject's data key (logged in ``$forgotten``)."""

    __event_type__ = "$eventuali.SubjectForgotten"
    subject: str
    streams: int
    """How many streams held the subject's personal data."""


# --- protocols ---------------------------------------------------------------------


class KeyWrapper(Protocol):
    """Wraps data keys for storage: the store's master key, or an external KMS."""

    async def wrap(self, subject: str, key: bytes) -> StoredKey: ...

    async def unwrap(self, subject: str, stored: StoredKey) -> bytes: ...


class KeyStore(Protocol):
    """Keeps wrapped data keys by subject."""

    async def get(self, subjects: Collection[str]) -> dict[str, StoredKey]:
        """The stored keys of those subjects that have one (forgotten ones have none)."""
        ...

    async def create(self, keys: Mapping[str, StoredKey]) -> dict[str, StoredKey | None]:
        """Store each key unless its subject already has one; per subject, the key now
        stored (ours or the earlier one), or ``None`` when the subject was forgotten."""
        ...

    async def destroy(self, subject: str) -> bool:
        """Destroy the subject's key for good; True if there was one.  Idempotent."""
        ...


async def call(value: Awaitable[T] | T) -> T:
    """Await ``value`` if it is awaitable: one code path for sync and async engines."""
    if inspect.isawaitable(value):
        return await value
    return value


def run_sync(coro: Any) -> Any:
    """Run a coroutine that never suspends (it calls a sync engine) without an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise ConfigurationError(
        "a key store or key wrapper suspended (real async I/O) inside a SyncEventStore; use the "
        "async EventStore with it, or give the sync store a key store that does not suspend"
    )


# --- defaults ----------------------------------------------------------------------


class MasterKeyWrapper:
    """Wraps data keys with AES-256-GCM under a :class:`KeyManager`'s current key.

    The subject is bound as associated data, so a wrapped key copied to
    another subject does not unwrap.  Rotating the master key wraps new data
    keys with the new one; old ones keep unwrapping with the old key.
    """

    def __init__(self, keys: KeyManager) -> None:
        if not isinstance(keys, KeyManager):
            raise ConfigurationError(
                f"MasterKeyWrapper takes a KeyManager, got {type(keys).__name__}"
            )
        self.keys = keys

    async def wrap(self, subject: str, key: bytes) -> StoredKey:
        key_id, cipher = self.keys.current_cipher()
        nonce = os.urandom(12)
        return StoredKey(key_id, nonce + cipher.encrypt(nonce, bytes(key), _WRAP_AAD + subject.encode()))

    async def unwrap(self, subject: str, stored: StoredKey) -> bytes:
        cipher = self.keys.cipher(stored.wrapping_key_id)
        blob = stored.wrapped
        try:
            return cipher.decrypt(blob[:12], blob[12:], _WRAP_AAD + subject.encode())
        except InvalidTag:
            raise DecryptionError(
                f"the data key of subject {subject!r} does not unwrap with master key "
                f"{stored.wrapping_key_id!r}: wrong key, or the stored key was altered or moved"
            ) from None

    def __repr__(self) -> str:
        return f"MasterKeyWrapper({self.keys!r})"


class StreamKeyStore:
    """The default :class:`KeyStore`: each wrapped key in ``$subject:<subject>`` of the same store.

    ``backend`` is the store's (sync or async) backend and ``codec`` its codec:
    the key records are encoded like every record (encrypted on an encrypted
    store), so a strict store reads them.
    """

    def __init__(self, backend: Any, codec: EventCodec, tenant: str = "") -> None:
        self.backend = backend
        self.codec = codec
        self.tenant = tenant

    @staticmethod
    def key_in(records: list[Record], codec: EventCodec) -> StoredKey | None:
        """The key stored in a subject stream's records (read for its links anyway)."""
        for r in records:
            if r.event_type == SubjectKeyStored.__event_type__:
                ev = codec.decode(r)
                if isinstance(ev, SubjectKeyStored):
                    return StoredKey(ev.wrapping_key_id, base64.b64decode(ev.wrapped))
        return None

    async def get(self, subjects: Collection[str]) -> dict[str, StoredKey]:
        out = {}
        for s in subjects:
            found = self.key_in(await call(self.backend.read_stream(subject_stream(s), 1, 1)), self.codec)
            if found is not None:
                out[s] = found
        return out

    def _write(self, subject: str, key: StoredKey) -> StreamWrite:
        ev = SubjectKeyStored(subject=subject, wrapping_key_id=key.wrapping_key_id,
                              wrapped=base64.b64encode(key.wrapped).decode())
        stream = subject_stream(subject)
        EventCodec.stamp(ev, stream, RESERVED_STREAM_TYPE, 1)
        return StreamWrite(stream, RESERVED_STREAM_TYPE, NO_STREAM, [self.codec.encode(ev)], self.tenant)

    async def create(self, keys: Mapping[str, StoredKey]) -> dict[str, StoredKey | None]:
        if not keys:
            return {}
        try:  # usually all new: one atomic append for all of them
            await call(self.backend.append([self._write(s, k) for s, k in keys.items()]))
            return dict(keys)
        except (OptimisticConcurrencyError, StreamDeletedError):
            pass
        out: dict[str, StoredKey | None] = {}
        for s, k in keys.items():
            try:
                await call(self.backend.append([self._write(s, k)]))
                out[s] = k
            except OptimisticConcurrencyError:
                out[s] = (await self.get([s])).get(s)  # another writer's key won
            except StreamDeletedError:
                out[s] = None
        return out

    async def destroy(self, subject: str) -> bool:
        stream = subject_stream(subject)
        had = bool(await call(self.backend.read_stream(stream, 1, 1)))
        await call(self.backend.delete_stream(stream))
        return had


def link_write(subject: str, streams: Collection[str], codec: EventCodec, tenant: str) -> StreamWrite:
    """Records saying that ``streams`` hold personal data of ``subject`` (appended with the events)."""
    records = []
    for stream in sorted(streams):
        ev = SubjectStreamLinked(stream=stream)
        EventCodec.stamp(ev, subject_stream(subject), RESERVED_STREAM_TYPE, 0)
        ev.__dict__["aggregate_version"] = None
        records.append(codec.encode(ev))
    return StreamWrite(subject_stream(subject), RESERVED_STREAM_TYPE, ANY, records, tenant)
