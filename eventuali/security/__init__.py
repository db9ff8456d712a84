"""Security for stored events: AES-256-GCM payload encryption with key rotation.

See ``docs/security.md``.  Needs the ``cryptography`` package (extra ``crypto``).
"""

from __future__ import annotations

from ..errors import DecryptionError, EncryptionError, UnknownKeyError
from .encryption import EventEncryption, encrypted_codec
from .keys import KEY_ID_PATTERN, KeyManager

__all__ = [
    "KEY_ID_PATTERN",
    "DecryptionError",
    "EncryptionError",
    "EventEncryption",
    "KeyManager",
    "UnknownKeyError",
    "encrypted_codec",
]
