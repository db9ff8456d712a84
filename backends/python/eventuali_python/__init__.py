"""The reference backend: pure Python engines for memory://, sqlite:// and postgresql://.

Registered under the ``eventuali.backends`` entry-point group as ``python``,
exactly as a third-party backend would be.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventuali.errors import UnknownSchemeError
from eventuali.protocol import Backend
from eventuali.records import StoreURL

__version__ = "0.1.0"


class PythonBackend:
    """Provider for the reference engines (see :class:`eventuali.protocol.BackendProvider`)."""

    name: ClassVar[str] = "python"
    schemes: ClassVar[frozenset[str]] = frozenset({"memory", "sqlite"})
    priority: ClassVar[int] = 0

    @classmethod
    def describe(cls) -> dict[str, Any]:
        import sqlite3

        return {"version": __version__, "sqlite": sqlite3.sqlite_version}

    @classmethod
    def open(cls, url: StoreURL) -> Backend:
        if url.scheme == "memory":
            from .memory import MemoryBackend

            return MemoryBackend.open(url)
        if url.scheme == "sqlite":
            from .sqlite import SQLiteBackend

            return SQLiteBackend.open(url)
        raise UnknownSchemeError(
            f"the python backend does not serve scheme {url.scheme!r} ({url.redacted()!r}); "
            f"it serves {', '.join(sorted(cls.schemes))}"
        )
