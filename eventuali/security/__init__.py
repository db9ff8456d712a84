"""Security for stored events: AES-256-GCM payload encryption with key rotation, strict mode,
and personal data with per-subject keys that ``store.forget(subject)`` destroys.

See ``docs/security.md``.  Needs the ``cryptography`` package (extra ``crypto``).
"""

from __future__ import annotations

from ..errors import (
    ClearTextRecordError,
    DecryptionError,
    EncryptionError,
    SubjectForgottenError,
    UnknownKeyError,
)
from ..personal import FORGOTTEN, Personal, Subject
from .encryption import EventEncryption, encrypted_codec
from .forget import ForgetResult
from .keys import KEY_ID_PATTERN, KeyManager
from .keystore import KeyStore, KeyWrapper, MasterKeyWrapper, StoredKey, StreamKeyStore
from .personal_codec import PersonalData

__all__ = [
    "FORGOTTEN",
    "KEY_ID_PATTERN",
    "ClearTextRecordError",
    "DecryptionError",
    "EncryptionError",
    "EventEncryption",
    "ForgetResult",
    "KeyManager",
    "KeyStore",
    "KeyWrapper",
    "MasterKeyWrapper",
    "Personal",
    "PersonalData",
    "StoredKey",
    "StreamKeyStore",
    "Subject",
    "SubjectForgottenError",
    "UnknownKeyError",
    "encrypted_codec",
]
