"""The native eventuali engine: a C library behind ``include/eventuali.h``, loaded with CFFI.

Registered under the ``eventuali.backends`` entry-point group as ``c`` (with a
higher priority than the reference ``python`` engine, so ``auto`` prefers it
when it loads).  Importing this package loads the library and checks its ABI
version; any failure raises ``BackendUnavailableError`` naming the library
path and the fix.  ``EVENTUALI_C_LIBRARY`` loads another library that
implements the same header.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

from eventuali.errors import ConfigurationError, StorageError, UnknownSchemeError
from eventuali.records import StoreURL
from eventuali.url import sqlite_options

from ._native import abi_version, ffi, lib, library_path
from .store import CStore, error_from_status

try:  # built from the repository's VERSION file, like eventuali's own version
    __version__ = version("eventuali-c")
except PackageNotFoundError:  # imported from a checkout without installing
    from eventuali import __version__
__all__ = ["CBackend", "CStore", "__version__"]



class CBackend:
    """Provider for the native engines (see :class:`eventuali.protocol.BackendProvider`)."""

    name: ClassVar[str] = "c"
    schemes: ClassVar[frozenset[str]] = frozenset({"memory", "sqlite"})
    priority: ClassVar[int] = 10

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "version": __version__,
            "library": str(library_path),
            "library version": ffi.string(lib.eventuali_library_version()).decode(),
            "abi version": abi_version,
            "schemes": ", ".join(sorted(cls.schemes)),
            "sqlite": ffi.string(lib.eventuali_sqlite_version()).decode(),
        }

    @classmethod
    def open(cls, url: StoreURL) -> CStore:
        if url.scheme == "memory":
            if url.options:
                raise ConfigurationError(
                    f"store URL {url.redacted()!r}: the memory backend takes no options, got "
                    f"{', '.join(sorted(url.options))}; remove the '?…' part"
                )
            return _open(lib.EVENTUALI_SCHEME_MEMORY, url.path, 0, -1, url)
        if url.scheme != "sqlite":
            raise UnknownSchemeError(
                f"the c backend does not serve scheme {url.scheme!r} ({url.redacted()!r}); it "
                f"serves {', '.join(sorted(cls.schemes))}"
            )
        # The core parses the options, so both engines accept and refuse the same URLs.
        path, synchronous, busy_timeout, read_only = sqlite_options(url)
        if path != ":memory:":
            # the same early, clear errors as the reference engine
            _check_sqlite_path(path, read_only)
        flags = _SYNCHRONOUS[synchronous] | (lib.EVENTUALI_OPEN_READ_ONLY if read_only else 0)
        return _open(lib.EVENTUALI_SCHEME_SQLITE, path, flags, busy_timeout, url)


_SYNCHRONOUS = {
    "full": lib.EVENTUALI_OPEN_SYNCHRONOUS_FULL,
    "normal": 0,
    "off": lib.EVENTUALI_OPEN_SYNCHRONOUS_OFF,
}


def _check_sqlite_path(path: str, read_only: bool) -> None:
    where = f"SQLite file {path!r}"
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise StorageError(
            f"cannot open {where}: the directory {directory!r} does not exist; create it first or "
            "choose another path"
        )
    if os.path.isdir(path):
        raise StorageError(
            f"cannot open {where}: it is a directory; give the path of a file, e.g. "
            f"sqlite://{os.path.join(path, 'events.db')}"
        )
    if read_only and not os.path.isfile(path):
        raise StorageError(
            f"cannot open {where} read-only (mode=ro): the file does not exist; give the path of "
            "an existing eventuali database"
        )
    if not read_only and not os.access(directory, os.W_OK | os.X_OK):
        raise StorageError(
            f"cannot open {where}: the directory {directory!r} is not writable (SQLite in WAL mode "
            "needs to create the -wal and -shm files beside the database); make it writable or "
            "choose another path"
        )
    wanted = os.R_OK if read_only else os.R_OK | os.W_OK
    if os.path.exists(path) and not os.access(path, wanted):
        raise StorageError(
            f"cannot open {where}: the file is not readable and writable by this user; fix its "
            "permissions or choose another path"
        )


def _open(scheme: int, path: str, flags: int, busy_timeout: int, url: StoreURL) -> CStore:
    try:
        raw = path.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(
            f"store URL {url.redacted()!r}: the path is not valid Unicode text"
        ) from None
    created_by = f"c {__version__}".encode()
    out = ffi.new("eventuali_store **")
    status = lib.eventuali_open(
        scheme, raw, len(raw), flags, busy_timeout, created_by, len(created_by), out
    )
    if status:
        raise error_from_status(status)
    return CStore(out[0], url.redacted())
