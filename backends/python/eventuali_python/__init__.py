"""The reference backend: pure Python engines for memory://, sqlite:// and postgresql://.

Registered under the ``eventuali.backends`` entry-point group as ``python``,
exactly as a third-party backend would be.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventuali._version import __version__
from eventuali.errors import UnknownSchemeError
from eventuali.protocol import AsyncBackend, Backend
from eventuali.records import StoreURL


class PythonBackend:
    """Provider for the reference engines (see :class:`eventuali.protocol.BackendProvider`)."""

    name: ClassVar[str] = "python"
    schemes: ClassVar[frozenset[str]] = frozenset({"memory", "sqlite", "postgresql"})
    priority: ClassVar[int] = 0

    @classmethod
    def describe(cls) -> dict[str, Any]:
        import sqlite3

        facts = {"version": __version__, "sqlite": sqlite3.sqlite_version}
        try:
            import psycopg

            facts["psycopg"] = f"{psycopg.__version__} ({psycopg.pq.__impl__}, libpq {psycopg.pq.version()})"
        except ImportError:
            facts["psycopg"] = 'not installed (pip install "eventuali[postgresql]")'
        return facts

    @classmethod
    def open_async(cls, url: StoreURL) -> AsyncBackend | None:
        """A native async engine for ``url`` (PostgreSQL's async pool), or None.

        For the other schemes the core wraps the sync engine.  No I/O happens
        here (there may be no running event loop yet): the returned backend is
        awaitable - ``await PythonBackend.open_async(url)`` connects, creates
        the schema and raises connection errors at once - and otherwise
        connects on its first call.
        """
        if url.scheme == "postgresql":
            from .postgres import require_psycopg
            from .postgres_async import AsyncPostgresBackend

            require_psycopg()
            return AsyncPostgresBackend(url)
        return None

    @classmethod
    def open(cls, url: StoreURL) -> Backend:
        if url.scheme == "memory":
            from .memory import MemoryBackend

            return MemoryBackend.open(url)
        if url.scheme == "sqlite":
            from .sqlite import SQLiteBackend

            return SQLiteBackend.open(url)
        if url.scheme == "postgresql":
            from .postgres import PostgresBackend

            return PostgresBackend.open(url)
        raise UnknownSchemeError(
            f"the python backend does not serve scheme {url.scheme!r} ({url.redacted()!r}); "
            f"it serves {', '.join(sorted(cls.schemes))}"
        )
