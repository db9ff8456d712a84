"""Every exception eventuali raises, in one module.

Backends raise these classes and no others for the conditions below, so user
code catches the same error whichever engine serves the store.  Messages name
the offending value, where it came from, and the fix.
"""

from __future__ import annotations


class EventualiError(Exception):
    """Base class of every eventuali error."""


# --- configuration -----------------------------------------------------------


class ConfigurationError(EventualiError, ValueError):
    """A URL, option or setting is malformed or names something unknown."""


class UnknownSchemeError(ConfigurationError):
    """No installed backend serves the URL's scheme."""


class BackendNotFoundError(ConfigurationError):
    """A backend was named (argument, URL or ``EVENTUALI_BACKEND``) that is not registered."""


class BackendUnavailableError(EventualiError):
    """A backend is registered but cannot be used (missing library, ABI mismatch, …)."""


# --- input -------------------------------------------------------------------


class InvalidInputError(EventualiError, ValueError):
    """An argument or record violates the protocol (empty stream id, version < 1, …)."""


class SerializationError(EventualiError, ValueError):
    """An event or aggregate could not be turned into bytes, or back."""


class MissingApplyMethodError(EventualiError, AttributeError):
    """An aggregate has no ``apply_<snake_case_event>`` method for an event it was given."""


# --- storage state -----------------------------------------------------------


class OptimisticConcurrencyError(EventualiError):
    """A stream's version was not what the writer expected; nothing was written.

    ``expected`` is the caller's expected version (an int, or one of the
    sentinels ``ANY``/``NO_STREAM``/``STREAM_EXISTS``); ``actual`` is the
    stream's version when the check ran (0 when the stream does not exist).
    """

    def __init__(self, stream_id: str, expected: int, actual: int, message: str | None = None):
        from .records import expected_version_name

        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            message
            or (
                f"stream {stream_id!r}: expected version {expected_version_name(expected)}, "
                f"actual version {actual}; reload the aggregate and retry the command"
            )
        )

    def __reduce__(self):  # keep the fields across pickling (multiprocessing)
        return (type(self), (self.stream_id, self.expected, self.actual, str(self)))


class DuplicateEventError(EventualiError):
    """An event id that is already stored was appended again; nothing was written."""

    def __init__(self, event_id: bytes, message: str | None = None):
        self.event_id = event_id
        super().__init__(
            message or f"event id {event_id.hex()} is already stored; event ids must be unique"
        )

    def __reduce__(self):
        return (type(self), (self.event_id, str(self)))


class StreamDeletedError(EventualiError):
    """The stream was deleted (tombstoned) and cannot be appended to again."""

    def __init__(self, stream_id: str, message: str | None = None):
        self.stream_id = stream_id
        super().__init__(
            message or f"stream {stream_id!r} was deleted; a deleted stream id cannot be reused"
        )

    def __reduce__(self):
        return (type(self), (self.stream_id, str(self)))


class StorageError(EventualiError):
    """The storage engine failed (I/O, permissions, corrupt file, lost connection)."""


class NotAnEventualiStoreError(StorageError):
    """The database exists but was not created by eventuali."""


class SchemaVersionError(StorageError):
    """The database was written by a newer eventuali schema than this one understands."""


class TransientStorageError(StorageError):
    """The operation was cut off (connection lost, server restart, lock timeout).

    It is safe to retry: either the whole operation took effect or none of it did,
    and a retry of an append with the same event ids never duplicates (it raises
    ``DuplicateEventError`` if the first attempt had in fact committed).
    """


class StoreClosedError(EventualiError):
    """The store or backend was used after ``close()``."""


# --- encryption --------------------------------------------------------------


class EncryptionError(EventualiError):
    """Payload encryption is misconfigured (no key, malformed key, bad key id)."""


class DecryptionError(EncryptionError, SerializationError):
    """A stored payload does not decrypt: wrong key, tampered bytes, or moved to another event."""


class UnknownKeyError(DecryptionError):
    """A payload names a key id the key manager does not hold."""

    def __init__(self, key_id: str, message: str | None = None):
        self.key_id = key_id
        super().__init__(
            message
            or f"no encryption key with id {key_id!r}; add it to the KeyManager (old keys must "
            "stay available to read what they encrypted)"
        )

    def __reduce__(self):
        return (type(self), (self.key_id, str(self)))


class ClearTextRecordError(DecryptionError):
    """A strict encrypted store read a record (or snapshot) stored in clear text.

    Strict mode is the default of every codec that encrypts: a clear payload
    on such a store was either written before encryption was turned on (open
    with ``strict=False`` and migrate) or put there by someone else.
    """


class SubjectForgottenError(InvalidInputError):
    """Personal data was given for a subject that ``store.forget`` has forgotten; nothing was written."""

    def __init__(self, subject: str, message: str | None = None):
        self.subject = subject
        super().__init__(
            message
            or f"subject {subject!r} was forgotten (store.forget); its personal data cannot be "
            "stored again, and nothing was written. Use a new subject id for a new person"
        )

    def __reduce__(self):
        return (type(self), (self.subject, str(self)))
