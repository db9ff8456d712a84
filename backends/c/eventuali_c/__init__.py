"""The native eventuali engine: a C library behind ``include/eventuali.h``, loaded with CFFI.

Registered under the ``eventuali.backends`` entry-point group as ``c`` (with a
higher priority than the reference ``python`` engine, so ``auto`` prefers it
when it loads).  Importing this package loads the library and checks its ABI
version; any failure raises ``BackendUnavailableError`` naming the library
path and the fix.  ``EVENTUALI_C_LIBRARY`` loads another library that
implements the same header.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventuali.errors import ConfigurationError, UnknownSchemeError
from eventuali.records import StoreURL

from ._abi import LIBRARY_ENV_VAR
from ._native import abi_version, ffi, lib, library_path
from .store import CStore, error_from_status

__version__ = "0.1.0"
__all__ = ["CBackend", "CStore", "__version__"]

_SYNCHRONOUS = {"normal": 0, "full": lib.EVENTUALI_OPEN_SYNCHRONOUS_FULL}


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
            "library override": LIBRARY_ENV_VAR,
        }

    @classmethod
    def open(cls, url: StoreURL) -> CStore:
        if url.scheme == "memory":
            scheme = lib.EVENTUALI_SCHEME_MEMORY
            allowed: set[str] = set()
        elif url.scheme == "sqlite":
            scheme = lib.EVENTUALI_SCHEME_SQLITE
            allowed = {"synchronous"}
        else:
            raise UnknownSchemeError(
                f"the c backend does not serve scheme {url.scheme!r} ({url.redacted()!r}); it "
                f"serves {', '.join(sorted(cls.schemes))}"
            )
        unknown = sorted(set(url.options) - allowed)
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(map(repr, unknown))} in store URL "
                f"{url.redacted()!r}; {url.scheme}:// accepts "
                f"{', '.join(sorted(allowed)) or 'no options'}"
            )
        flags = 0
        if "synchronous" in url.options:
            value = url.options["synchronous"].lower()
            if value not in _SYNCHRONOUS:
                raise ConfigurationError(
                    f"option synchronous={url.options['synchronous']!r} in store URL "
                    f"{url.redacted()!r} is not one of: normal, full"
                )
            flags |= _SYNCHRONOUS[value]
        path = url.path.encode("utf-8")
        created_by = f"c {__version__}".encode()
        out = ffi.new("eventuali_store **")
        status = lib.eventuali_open(scheme, path, len(path), flags, created_by, len(created_by), out)
        if status:
            raise error_from_status(status)
        return CStore(out[0], url.redacted())
