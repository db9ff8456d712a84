"""``KeyManager``: the AES-256 keys that encrypt event payloads, by key id, with rotation.

Every ciphertext names the key id that made it, so rotating keys never needs a
re-encryption pass: new writes use the current key, and old keys stay in the
manager to read what they wrote.  Keys never leave the manager in ciphertext
or messages; only their ids do.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from collections.abc import Mapping
from datetime import datetime, timezone

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import EncryptionError, UnknownKeyError

KEY_BYTES = 32
"""AES-256: every key is 32 bytes."""

KEY_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
"""Key ids are stored in every ciphertext header: short, printable ASCII."""
_KEY_ID_RE = re.compile(KEY_ID_PATTERN)


def check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
        raise EncryptionError(
            f"key id {key_id!r} is invalid; a key id matches {KEY_ID_PATTERN} (1-64 characters: "
            "letters, digits, '.', '_', ':', '-'; starting with a letter or digit)"
        )
    return key_id


def _key_bytes(key_id: str, key: bytes | str) -> bytes:
    if isinstance(key, str):
        try:
            key = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise EncryptionError(
                f"key {key_id!r} is a string that is not valid base64; give 32 raw bytes or their "
                "base64 (KeyManager.generate_key() makes one)"
            ) from None
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        size = len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__
        raise EncryptionError(
            f"key {key_id!r} has {size} bytes; AES-256 needs exactly {KEY_BYTES} "
            "(KeyManager.generate_key() makes one)"
        )
    return bytes(key)


class KeyManager:
    """Holds AES-256 keys by id and knows which one encrypts new payloads.

    ::

        keys = KeyManager({"2026-01": key_bytes})          # current = the only key
        keys = KeyManager.generate("2026-01")              # a fresh random key
        new_id = keys.rotate()                             # new writes use a new key
        keys = KeyManager.from_dict(keys.to_dict())        # base64, for a secret store

    Thread-safe: rotation may happen while other threads encrypt.
    """

    def __init__(
        self, keys: Mapping[str, bytes | str] | None = None, current: str | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._ciphers: dict[str, AESGCM] = {}
        self._current: str | None = None
        for key_id, key in (keys or {}).items():
            self.add_key(key_id, key)
        if current is not None:
            self.set_current(current)
        elif len(self._keys) == 1:
            self._current = next(iter(self._keys))
        elif self._keys:
            raise EncryptionError(
                f"KeyManager got {len(self._keys)} keys ({', '.join(sorted(self._keys))}) and no "
                "current=; name the key that encrypts new payloads"
            )

    # --- construction ------------------------------------------------------------

    @staticmethod
    def generate_key() -> bytes:
        """32 random bytes from the OS, for AES-256."""
        return AESGCM.generate_key(bit_length=256)

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyManager:
        """A manager holding one fresh random key, which is current."""
        return cls({key_id: cls.generate_key()})

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> KeyManager:
        """Inverse of :meth:`to_dict`."""
        keys = data.get("keys")
        if not isinstance(keys, Mapping):
            raise EncryptionError(
                f"key data {sorted(data)!r} has no 'keys' mapping; expected the shape "
                "KeyManager.to_dict() returns: {'current': id, 'keys': {id: base64}}"
            )
        current = data.get("current")
        return cls(dict(keys), current=current if isinstance(current, str) else None)

    @classmethod
    def from_env(cls, var: str = "EVENTUALI_ENCRYPTION_KEYS") -> KeyManager:
        """Keys from an environment variable: ``current_id=base64[,other_id=base64…]``.

        The first key listed is current.
        """
        raw = os.environ.get(var, "").strip()
        if not raw:
            raise EncryptionError(
                f"environment variable {var} is empty or unset; set it to 'key_id=base64key' "
                "(several: comma-separated, the first is current)"
            )
        keys: dict[str, str] = {}
        for item in raw.split(","):
            key_id, sep, value = item.strip().partition("=")
            if not sep:
                raise EncryptionError(
                    f"{var} item {key_id!r} has no '='; expected 'key_id=base64key'"
                )
            keys[key_id.strip()] = value.strip()
        return cls(keys, current=next(iter(keys)))

    def to_dict(self) -> dict[str, object]:
        """``{'current': id, 'keys': {id: base64}}``: for a secret store, never for the event store."""
        with self._lock:
            return {
                "current": self._current,
                "keys": {k: base64.b64encode(v).decode() for k, v in self._keys.items()},
            }

    # --- keys --------------------------------------------------------------------

    def add_key(self, key_id: str, key: bytes | str, *, current: bool = False) -> None:
        """Add a key (raw 32 bytes or base64).  Re-adding an id with other bytes is refused."""
        check_key_id(key_id)
        raw = _key_bytes(key_id, key)
        with self._lock:
            old = self._keys.get(key_id)
            if old is not None and old != raw:
                raise EncryptionError(
                    f"key id {key_id!r} already names a different key; payloads written with it "
                    "would stop decrypting.  Give the new key a new id (keys.rotate() does)"
                )
            self._keys[key_id] = raw
            self._ciphers[key_id] = AESGCM(raw)
            if current:
                self._current = key_id

    def set_current(self, key_id: str) -> None:
        """Encrypt new payloads with ``key_id`` (which must already be held)."""
        with self._lock:
            if key_id not in self._keys:
                raise UnknownKeyError(
                    key_id,
                    f"cannot make key {key_id!r} current: it is not in the KeyManager (held: "
                    f"{', '.join(sorted(self._keys)) or 'none'}); add_key() it first",
                )
            self._current = key_id

    def rotate(self, key_id: str | None = None, key: bytes | str | None = None) -> str:
        """Make a new key current (random unless given); old keys keep decrypting.

        ``key_id`` defaults to a UTC timestamp such as ``20260126T193015Z``.
        Returns the new key id.
        """
        if key_id is None:
            key_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        if key_id in self._keys:
            raise EncryptionError(f"cannot rotate to key id {key_id!r}: it is already held")
        self.add_key(key_id, key if key is not None else self.generate_key(), current=True)
        return key_id

    @property
    def current_key_id(self) -> str:
        cur = self._current
        if cur is None:
            raise EncryptionError(
                "the KeyManager holds no current key, so nothing can be encrypted; "
                "add one with keys.add_key(id, key, current=True) or KeyManager.generate()"
            )
        return cur

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def _current_id(self) -> str:
        """The current key id (call with the lock held)."""
        if self._current is None:
            raise EncryptionError(
                "the KeyManager holds no current key, so nothing can be encrypted; "
                "add one with keys.add_key(id, key, current=True) or KeyManager.generate()"
            )
        return self._current

    def current_cipher(self) -> tuple[str, AESGCM]:
        """The current key id and its cipher (one consistent pair under rotation)."""
        with self._lock:
            cur = self._current_id()
            return cur, self._ciphers[cur]

    def _current_key(self) -> tuple[str, bytes]:
        """The current key id and its raw bytes: for a native batch path only, never stored."""
        with self._lock:
            cur = self._current_id()
            return cur, self._keys[cur]

    def cipher(self, key_id: str) -> AESGCM:
        """The cipher for ``key_id``; ``UnknownKeyError`` naming it if not held."""
        try:
            return self._ciphers[key_id]
        except KeyError:
            raise UnknownKeyError(
                key_id,
                f"payload was encrypted with key {key_id!r}, which this KeyManager does not hold "
                f"(held: {', '.join(sorted(self._keys)) or 'none'}); add that key - old keys must "
                "stay available after rotation",
            ) from None

    def __repr__(self) -> str:  # never the key bytes
        return f"KeyManager(key_ids={self.key_ids!r}, current={self._current!r})"
