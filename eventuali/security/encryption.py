"""``EventEncryption``: AES-256-GCM encryption of event payloads, as an ``EventCodec`` transform.

Each payload is encrypted with the key manager's current key and a fresh
random 96-bit nonce.  The ciphertext header names the key id, so rotated-out
keys keep decrypting old events.  The event's identity (event id, stream id
and, when known at write time, version) is bound as GCM associated data: a
ciphertext copied onto another event - another stream, another version,
another event id - fails authentication instead of decrypting to the wrong
event.

Layout after the codec's one-byte tag ``e``::

    format (1 byte, = 1) | flags (1) | key-id length (1) | key id (ASCII)
    | nonce (12) | ciphertext + GCM tag (16)

``flags`` bit 0 says whether the version was bound.  Everything in the header
is covered by the GCM tag too (it is part of the associated data).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag

from ..errors import DecryptionError, EncryptionError
from ..serialization import AnyPayloadTransform, EventCodec, RecordIdentity
from .keys import KeyManager

FORMAT = 1
NONCE_BYTES = 12
_FLAG_VERSION = 1
_AAD_PREFIX = b"eventuali-aead-v1\x00"


def _aad(header: bytes, identity: RecordIdentity, bind_version: bool) -> bytes:
    stream = identity.stream_id.encode()
    parts = [_AAD_PREFIX, header, identity.event_id, struct.pack(">I", len(stream)), stream]
    if bind_version:
        parts.append(struct.pack(">q", identity.version))
    return b"".join(parts)


class EventEncryption:
    """AES-256-GCM payload transform (tag ``e``), bound to each event's identity.

    ::

        keys = KeyManager.generate("2026-01")
        store = await EventStore.create(url, codec=EventCodec(transforms=[EventEncryption(keys)]))

    or, shorter, ``codec=encrypted_codec(keys)`` (which also compresses first).
    """

    tag = b"e"
    binds_identity = True

    def __init__(self, keys: KeyManager, *, native: bool | None = None) -> None:
        if not isinstance(keys, KeyManager):
            raise EncryptionError(
                f"EventEncryption takes a KeyManager, got {type(keys).__name__} {keys!r}; "
                "e.g. EventEncryption(KeyManager({'k1': key_bytes}))"
            )
        keys.current_cipher()  # fail now, not at the first save, when there is no key
        self.keys = keys
        self._headers: dict[tuple[str, int], bytes] = {}
        # encrypt_many through an engine's native batch (OpenSSL), when one is installed:
        # None = when available, False = never, True = required.
        self._seal = None
        if native is not False:
            from ..registry import accelerator

            self._seal = accelerator("aead_seal_many")
            if native and self._seal is None:
                raise EncryptionError(
                    "EventEncryption(native=True): no installed engine offers a native AES-GCM "
                    "batch; install the c engine (pip install ./backends/c) or pass native=None"
                )

    def _header(self, key_id: str, flags: int) -> bytes:
        h = self._headers.get((key_id, flags))
        if h is None:
            kid = key_id.encode("ascii")
            h = bytes((FORMAT, flags, len(kid))) + kid
            self._headers[(key_id, flags)] = h
        return h

    # --- one payload -----------------------------------------------------------------

    def encode(self, data: bytes, identity: RecordIdentity) -> bytes:
        key_id, cipher = self.keys.current_cipher()
        bind_version = identity.version is not None
        header = self._header(key_id, _FLAG_VERSION if bind_version else 0)
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + cipher.encrypt(nonce, data, _aad(header, identity, bind_version))

    def decode(self, data: bytes, identity: RecordIdentity) -> bytes:
        header, key_id, flags, body = self._split(data, identity)
        bind_version = bool(flags & _FLAG_VERSION)
        if bind_version and identity.version is None:
            raise DecryptionError(
                f"event {identity.event_id.hex()} in stream {identity.stream_id!r} was encrypted "
                "bound to its version, and no version was given to decrypt it; decode the stored "
                "record (codec.decode(record)), not a bare payload"
            )
        cipher = self.keys.cipher(key_id)
        try:
            return cipher.decrypt(
                body[:NONCE_BYTES], body[NONCE_BYTES:], _aad(header, identity, bind_version)
            )
        except InvalidTag:
            raise DecryptionError(
                f"payload of event {identity.event_id.hex()} (stream {identity.stream_id!r}, "
                f"version {identity.version}) does not decrypt with key {key_id!r}: the key is "
                "wrong, the bytes were altered, or the ciphertext belongs to another event"
            ) from None

    def _split(self, data: bytes, identity: RecordIdentity) -> tuple[bytes, str, int, bytes]:
        where = f"event {identity.event_id.hex()} (stream {identity.stream_id!r})"
        if len(data) < 3 or data[0] != FORMAT:
            raise DecryptionError(
                f"encrypted payload of {where} has format byte "
                f"{data[:1].hex() or 'none'}; this eventuali reads format {FORMAT}. Upgrade "
                "eventuali, or the payload is corrupt"
            )
        kid_len = data[2]
        end = 3 + kid_len
        if len(data) < end + NONCE_BYTES + 16:
            raise DecryptionError(f"encrypted payload of {where} is truncated ({len(data)} bytes)")
        try:
            key_id = data[3:end].decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionError(f"encrypted payload of {where} has a corrupt key id") from None
        return data[:end], key_id, data[1], data[end:]

    # --- many payloads ---------------------------------------------------------------

    def encrypt_many(
        self, payloads: Sequence[bytes], identities: Sequence[RecordIdentity]
    ) -> list[bytes]:
        """Encrypt many payloads at once (one key lookup, one nonce draw for all).

        Returns what :meth:`encode` would return for each (without the codec tag).
        """
        if len(payloads) != len(identities):
            raise EncryptionError(
                f"encrypt_many got {len(payloads)} payloads and {len(identities)} identities; "
                "give one identity per payload"
            )
        # One getrandom() call for every nonce instead of one per payload.
        nonces = os.urandom(NONCE_BYTES * len(payloads))
        if self._seal is not None and len(payloads) > 1:
            key_id, key = self.keys._current_key()
            event_ids = b"".join([i.event_id for i in identities])
            streams = [i.stream_id.encode() for i in identities]
            # (odd input - a bad event id, an over-long stream id - takes the path below,
            # which names it)
            if len(event_ids) == 16 * len(identities) and max(map(len, streams)) <= 1024:
                return self._seal(
                    key, _AAD_PREFIX, self._header(key_id, 0), self._header(key_id, _FLAG_VERSION),
                    nonces, event_ids, streams,
                    [i.version or 0 for i in identities],
                    bytes([i.version is not None for i in identities]), payloads,
                )
        key_id, cipher = self.keys.current_cipher()
        encrypt = cipher.encrypt
        headers = (self._header(key_id, 0), self._header(key_id, _FLAG_VERSION))
        out = []
        for i, (data, ident) in enumerate(zip(payloads, identities, strict=True)):
            bind = ident.version is not None
            header = headers[bind]
            nonce = nonces[i * NONCE_BYTES : (i + 1) * NONCE_BYTES]
            out.append(header + nonce + encrypt(nonce, data, _aad(header, ident, bind)))
        return out

    def decrypt_many(
        self, payloads: Sequence[bytes], identities: Sequence[RecordIdentity]
    ) -> list[bytes]:
        """Decrypt many payloads (each as :meth:`decode`); the first failure raises."""
        if len(payloads) != len(identities):
            raise DecryptionError(
                f"decrypt_many got {len(payloads)} payloads and {len(identities)} identities; "
                "give one identity per payload"
            )
        ciphers: dict[bytes, object] = {}  # header -> cipher: one key lookup per key id
        out = []
        for data, ident in zip(payloads, identities, strict=True):
            end = 3 + data[2] if len(data) > 3 else 0
            header = data[:end]
            cipher = ciphers.get(header)
            if cipher is None or len(data) < end + NONCE_BYTES + 16 or data[0] != FORMAT:
                # First payload under this header, or a malformed one: the full
                # path checks everything and names the problem.
                out.append(self.decode(data, ident))
                ciphers[header] = self.keys.cipher(header[3:].decode("ascii"))
                continue
            bind = bool(data[1] & _FLAG_VERSION)
            if bind and ident.version is None:
                out.append(self.decode(data, ident))  # raises the explanatory error
                continue
            try:
                out.append(cipher.decrypt(  # type: ignore[attr-defined]
                    data[end : end + NONCE_BYTES], data[end + NONCE_BYTES :],
                    _aad(header, ident, bind),
                ))
            except InvalidTag:
                out.append(self.decode(data, ident))  # raises DecryptionError naming the event
        return out

    def __repr__(self) -> str:
        return f"EventEncryption({self.keys!r})"


def encrypted_codec(
    keys: KeyManager, *, compress: bool = True, strict: bool = True, personal: Any = True,
    **codec_args,
) -> EventCodec:
    """An :class:`EventCodec` that (optionally) compresses, then encrypts every payload.

    Compression must come first: ciphertext does not compress.  ``strict``
    (the default) refuses clear-text records, snapshots and cache entries;
    ``strict=False`` is for stores holding records from before encryption.
    ``personal`` (the default) also encrypts events' personal fields with
    per-subject data keys wrapped by ``keys`` (see docs/security.md), so that
    ``store.forget(subject)`` works; give a ``PersonalData`` for other settings.
    """
    from .personal_codec import PersonalData

    if personal is True:
        codec_args["personal"] = PersonalData(keys)
    elif personal:
        codec_args["personal"] = personal
    from ..compression import ZlibCompression

    transforms: list[AnyPayloadTransform] = [ZlibCompression()] if compress else []
    transforms.append(EventEncryption(keys))
    return EventCodec(transforms=transforms, strict=strict, **codec_args)
