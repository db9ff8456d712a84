"""Encrypting personal fields with per-subject data keys: ``PersonalData`` and the store's ``Keyring``.

An event with personal fields (see :mod:`eventuali.personal`) is stored as
its usual JSON with each personal field replaced by its placeholder, plus one
key holding the real values, encrypted with the subject's data key::

    {..., "email": "<forgotten>", "$personal": {"v": 1, "s": "<subject>",
                                                "c": base64(nonce(12) | AES-256-GCM ciphertext + tag)}}

The ciphertext is the JSON object of the personal fields' values; the GCM
associated data is ``"eventuali-personal-v1\\0" | event id (16) | subject``,
so it cannot be moved to another event or subject.  The clear part is what
every reader sees without the key - a store without ``PersonalData``, a raw
export, and everyone once the subject is forgotten: the placeholders.

A :class:`Keyring` belongs to one open store (a codec shared by several
stores gets one per store: two tenants may use the same subject ids).  It
caches the subjects' data keys, creates new ones through the
:class:`~eventuali.security.keystore.KeyStore`, and remembers which streams
hold each subject's data (``$subject:<subject>``), which is how forgetting
finds the snapshots and cache entries to drop.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import ConfigurationError, DecryptionError, SerializationError, SubjectForgottenError
from ..personal import PERSONAL_KEY, KeysNeeded, PersonalSpec
from ..records import StreamWrite
from ..serialization import EventCodec
from .keys import KeyManager
from .keystore import (
    SUBJECT_STREAM_PREFIX,
    KeyStore,
    KeyWrapper,
    MasterKeyWrapper,
    StoredKey,
    StreamKeyStore,
    SubjectStreamLinked,
    call,
    link_write,
    subject_stream,
)

_AAD = b"eventuali-personal-v1\x00"
_FORMAT = 1


class PersonalData:
    """A codec's setting: protect personal fields, wrapping data keys with ``keys``.

    ``keys`` is the master :class:`KeyManager` (or any :class:`KeyWrapper`,
    e.g. an external KMS); ``key_store`` a factory ``(store) -> KeyStore``
    (default: :class:`StreamKeyStore`, keys in the same database).
    """

    def __init__(self, keys: KeyManager | KeyWrapper, key_store: Any = None, *,
                 cache_ttl: float = 60.0) -> None:
        if isinstance(keys, KeyManager):
            keys.current_cipher()  # fail now when there is no current key
            self.wrapper: KeyWrapper = MasterKeyWrapper(keys)
        elif callable(getattr(keys, "wrap", None)) and callable(getattr(keys, "unwrap", None)):
            self.wrapper = keys
        else:
            raise ConfigurationError(
                f"PersonalData takes a KeyManager (the master key) or a KeyWrapper (wrap/unwrap "
                f"coroutines, e.g. an external KMS), got {type(keys).__name__} {keys!r}"
            )
        if key_store is not None and not callable(key_store):
            raise ConfigurationError(
                f"PersonalData key_store= is a factory (store) -> KeyStore, got {key_store!r}"
            )
        self.key_store_factory = key_store
        if isinstance(cache_ttl, bool) or not isinstance(cache_ttl, (int, float)) or cache_ttl < 0:
            raise ConfigurationError(
                f"PersonalData cache_ttl={cache_ttl!r} is invalid; give the seconds a loaded data "
                "key is used for reading before it is checked again (0: every read)"
            )
        self.cache_ttl = float(cache_ttl)
        """How long a process reads with a cached data key: another process's forget()
        takes effect here within this time (this process's own, at once)."""

    def keyring(self, store: Any, codec: EventCodec) -> Keyring:
        factory = self.key_store_factory
        ks = factory(store) if factory else StreamKeyStore(store.backend, codec, store.tenant)
        return Keyring(self.wrapper, ks, store.backend, codec, store.tenant, self.cache_ttl)

    def __repr__(self) -> str:
        return f"PersonalData({self.wrapper!r})"


@dataclass
class _Writing:
    """What one save's encoding needed that is not stored yet."""

    new_keys: dict[str, bytearray] = field(default_factory=dict)
    new_links: dict[str, set[str]] = field(default_factory=dict)


class Keyring:
    """One store's data keys (cache, creation, destruction) and subject -> streams links."""

    def __init__(self, wrapper: KeyWrapper, key_store: KeyStore, backend: Any, codec: EventCodec,
                 tenant: str, cache_ttl: float = 60.0) -> None:
        self.wrapper = wrapper
        self.key_store = key_store
        self.backend = backend
        self.codec = codec
        self.tenant = tenant
        self._keys: dict[str, bytearray | None] = {}
        """subject -> data key; None: it has none (forgotten, or never had one)."""
        self._ciphers: dict[str, AESGCM] = {}
        self._ttl = cache_ttl
        self._checked: dict[str, float] = {}
        """subject -> time.monotonic() of its last fetch (reads re-fetch after the TTL)."""
        self._links: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    # --- encoding (called by EventCodec, synchronously) -----------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[_Writing]:
        """The scope of one save's encoding: collects the keys and links it needs stored."""
        w = _Writing()
        self._local.writing = w
        try:
            yield w
        finally:
            self._local.writing = None

    def conceal(self, payload: bytes, spec: PersonalSpec, event_id: bytes, stream: str) -> bytes:
        data = json.loads(payload)
        subject = spec.subject(data)
        if not isinstance(subject, str) or not subject:
            raise SerializationError(
                f"event {data.get('event_type')!r} has personal fields but no subject: its "
                f"{spec.subject_field or 'aggregate_id'} is {subject!r}; give a non-empty string"
            )
        w: _Writing | None = getattr(self._local, "writing", None)
        if w is None:
            raise ConfigurationError(
                "events with personal fields are encoded by store.save/save_events, which load "
                "and create the subjects' data keys; do not call codec.encode on them directly"
            )
        key = self._keys.get(subject) or w.new_keys.get(subject)
        if key is None:
            key = w.new_keys[subject] = bytearray(os.urandom(32))
            cipher = AESGCM(bytes(key))
        else:
            cipher = self._ciphers.get(subject) or AESGCM(bytes(key))
        if stream not in self._links.get(subject, ()):
            w.new_links.setdefault(subject, set()).add(stream)
        values = {f: data[f] for f in spec.fields if f in data}
        for f in spec.fields:
            data[f] = spec.placeholders[f]
        nonce = os.urandom(12)
        sealed = cipher.encrypt(
            nonce, json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode(),
            _AAD + event_id + subject.encode(),
        )
        data[PERSONAL_KEY] = {"v": _FORMAT, "s": subject, "c": base64.b64encode(nonce + sealed).decode()}
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

    # --- decoding ----------------------------------------------------------------------

    def reveal(self, data: dict[str, Any], event_id: bytes) -> None:
        """Put the personal values back into ``data`` (left as placeholders if the key is gone)."""
        blob = data.pop(PERSONAL_KEY, None)
        if not isinstance(blob, dict):
            return
        subject = blob.get("s")
        if not isinstance(subject, str) or blob.get("v") != _FORMAT:
            raise SerializationError(
                f"event {event_id.hex()} has a malformed {PERSONAL_KEY!r} part (format "
                f"{blob.get('v')!r}); it was altered, or written by a newer eventuali"
            )
        try:
            key = self._keys[subject]
        except KeyError:
            raise KeysNeeded({subject}) from None
        if (key is not None and not getattr(self._local, "fresh", False)
                and time.monotonic() - self._checked.get(subject, 0.0) > self._ttl):
            raise KeysNeeded({subject})  # maybe forgotten by another process since: check
        if key is None:
            return  # forgotten: the stored placeholders stand
        cipher = self._ciphers.get(subject) or AESGCM(bytes(key))
        try:
            raw = base64.b64decode(blob["c"])
            values = json.loads(cipher.decrypt(raw[:12], raw[12:], _AAD + event_id + subject.encode()))
        except (InvalidTag, KeyError, ValueError, binascii.Error):
            raise DecryptionError(
                f"the personal fields of event {event_id.hex()} (subject {subject!r}) do not "
                "decrypt with the subject's data key: altered, or moved from another event"
            ) from None
        data.update(values)

    @contextlib.contextmanager
    def just_fetched(self) -> Iterator[None]:
        """Decode with the keys as they are: they were just fetched (no TTL check)."""
        self._local.fresh = True
        try:
            yield
        finally:
            self._local.fresh = False

    # --- keys --------------------------------------------------------------------------

    def _set(self, subject: str, key: bytes | bytearray | None) -> None:
        with self._lock:
            old = self._keys.get(subject)
            if old is not None and old is not key:
                old[:] = bytes(len(old))  # zero what Python lets us zero
            self._checked[subject] = time.monotonic()
            if key is None:
                self._keys[subject] = None
                self._ciphers.pop(subject, None)
            else:
                kept = key if isinstance(key, bytearray) else bytearray(key)
                self._keys[subject] = kept
                self._ciphers[subject] = AESGCM(bytes(kept))

    async def fetch(self, subjects: set[str]) -> None:
        """Load the data keys (and stream links) of ``subjects``; those without one get None."""
        default = isinstance(self.key_store, StreamKeyStore)
        stored: dict[str, StoredKey] = {}
        for s in subjects:
            records = await call(self.backend.read_stream(subject_stream(s)))
            links = {ev.stream for ev in map(self.codec.decode, records)
                     if isinstance(ev, SubjectStreamLinked)}
            with self._lock:
                self._links.setdefault(s, set()).update(links)
            if default:
                found = StreamKeyStore.key_in(records, self.codec)
                if found is not None:
                    stored[s] = found
        if not default:
            stored = await self.key_store.get(subjects)
        for s in subjects:
            self._set(s, await self.wrapper.unwrap(s, stored[s]) if s in stored else None)

    async def store_new(self, w: _Writing) -> bool:
        """Store the keys a save created; False when another writer's key won (encode again)."""
        if not w.new_keys:
            return True
        wrapped = {s: await self.wrapper.wrap(s, bytes(k)) for s, k in w.new_keys.items()}
        stored = await self.key_store.create(wrapped)
        ours = True
        for s, key in w.new_keys.items():
            now = stored.get(s)
            if now is None:
                raise SubjectForgottenError(s)
            if now == wrapped[s]:
                self._set(s, key)
            else:
                ours = False
                self._set(s, await self.wrapper.unwrap(s, now))
        return ours

    def link_writes(self, w: _Writing) -> list[StreamWrite]:
        return [link_write(s, streams, self.codec, self.tenant) for s, streams in w.new_links.items()]

    def linked(self, w: _Writing) -> None:
        with self._lock:
            for s, streams in w.new_links.items():
                self._links.setdefault(s, set()).update(streams)

    def streams_of(self, subject: str) -> set[str]:
        return set(self._links.get(subject, ()))

    @staticmethod
    def subject_of_stream(stream_id: str) -> str | None:
        return stream_id[len(SUBJECT_STREAM_PREFIX):] if stream_id.startswith(SUBJECT_STREAM_PREFIX) else None

    def dropped(self, subject: str) -> None:
        """The subject was forgotten: zero and drop its key here too."""
        self._set(subject, None)
        with self._lock:
            self._links.pop(subject, None)

    def close(self) -> None:
        with self._lock:
            for key in self._keys.values():
                if key is not None:
                    key[:] = bytes(len(key))
            self._keys.clear()
            self._ciphers.clear()
