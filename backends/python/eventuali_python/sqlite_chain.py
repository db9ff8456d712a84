"""The ``integrity=chain`` part of the SQLite engine: the chain table, its entries, its check.

A mixin of :class:`~eventuali_python.sqlite.SQLiteBackend`: entries are written
in the backend's own write transactions (so a failed append chains nothing),
and read or checked on one read snapshot.  Table: ``eventuali/schema/
sqlite_chain.sql``; bytes: :mod:`eventuali.integrity.chain`.
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.parse
from functools import partial
from importlib import resources
from typing import TYPE_CHECKING

from eventuali import record_validation as check
from eventuali.errors import ConfigurationError, SchemaVersionError, StorageError
from eventuali.integrity.chain import (
    GENESIS,
    MODE,
    ChainEntry,
    ChainProblem,
    event_entries,
    retention_entry,
    verify_entries,
)
from eventuali.records import Record

from . import __version__

_make_record = partial(tuple.__new__, Record)
_make_entry = partial(tuple.__new__, ChainEntry)
_CHAIN_COLUMNS = "seq, kind, position, stream_id, version, digest, hash"
_INSERT_CHAIN = f"INSERT INTO eventuali_chain ({_CHAIN_COLUMNS}) VALUES (?,?,?,?,?,?,?)"
_CHAIN_HEAD = f"SELECT {_CHAIN_COLUMNS} FROM eventuali_chain ORDER BY seq DESC LIMIT 1"
_HEAD = "SELECT seq FROM sqlite_sequence WHERE name = 'eventuali_events'"
COLUMNS = (
    "position, event_id, stream_id, stream_type, version, event_type, "
    "schema_version, timestamp, tenant, metadata, payload"
)
"""The events table's columns in :class:`~eventuali.records.Record` order."""


def chain_schema_sql() -> str:
    """The text of ``eventuali/schema/sqlite_chain.sql`` (the ``integrity=chain`` table)."""
    return resources.files("eventuali").joinpath("schema/sqlite_chain.sql").read_text("utf-8")


def split_statements(script: str) -> list[str]:
    """Split the schema script into statements (``executescript`` would COMMIT our transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf)
            buf = ""
    return out


class SQLiteChain:
    """Chain methods over the attributes SQLiteBackend sets (``_conn``, ``_lock``, …)."""

    path: str
    _where: str
    _memory: bool
    _read_only: bool
    _chained: bool
    _lock: threading.RLock

    if TYPE_CHECKING:  # provided by SQLiteBackend

        def _storage_error(self, exc: sqlite3.Error, action: str) -> StorageError: ...

        def _conn_or_raise(self) -> sqlite3.Connection: ...

        def _query_one(self, sql: str, params: tuple) -> tuple | None: ...

    def _open_chain(self, conn: sqlite3.Connection, integrity: str | None) -> bool:
        """Whether the file keeps a hash chain; start one if asked and the store has no event."""
        try:
            found = conn.execute(
                "SELECT value FROM eventuali_meta WHERE key = 'integrity'"
            ).fetchone()
            if found is None and integrity is not None:
                if self._read_only:
                    raise StorageError(
                        f"{self._where} keeps no hash chain and mode=ro cannot start one; open "
                        "it without integrity=chain"
                    )
                conn.execute("BEGIN IMMEDIATE")
                try:
                    found = conn.execute(
                        "SELECT value FROM eventuali_meta WHERE key = 'integrity'"
                    ).fetchone()
                    if found is None:
                        head = conn.execute(_HEAD).fetchone()
                        if head is not None and head[0] > 0:
                            raise ConfigurationError(
                                f"{self._where} already holds events without a hash chain, so "
                                "integrity=chain cannot cover them; copy the events into a new "
                                "store opened with integrity=chain"
                            )
                        for statement in split_statements(chain_schema_sql()):
                            conn.execute(statement)
                        conn.execute(
                            "INSERT INTO eventuali_meta (key, value) VALUES ('integrity', ?)",
                            (MODE,),
                        )
                        found = (MODE,)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise self._storage_error(exc, "open") from exc
        if found is None:
            return False
        if found[0] != MODE:
            raise SchemaVersionError(
                f"{self._where} keeps integrity mode {found[0]!r}, which this eventuali "
                f"({__version__}) does not know; upgrade eventuali to open it"
            )
        return True

    def _chain_events(self, conn: sqlite3.Connection, positions: list[int], rows: list[tuple]) -> None:
        """Chain the rows just inserted, in the append transaction (the write lock is held)."""
        last = conn.execute(_CHAIN_HEAD).fetchone()
        prev, seq = (last[6], last[0] + 1) if last is not None else (GENESIS, 1)
        records = [_make_record((p, *row)) for p, row in zip(positions, rows, strict=True)]
        conn.executemany(_INSERT_CHAIN, event_entries(prev, seq, records))

    def _chain_retention(self, conn: sqlite3.Connection, kind: int, stream_id: str, version: int) -> None:
        last = conn.execute(_CHAIN_HEAD).fetchone()
        prev, seq = (last[6], last[0] + 1) if last is not None else (GENESIS, 1)
        head = conn.execute(_HEAD).fetchone()
        entry = retention_entry(prev, seq, kind, head[0] if head else 0, stream_id, version)
        conn.execute(_INSERT_CHAIN, entry)

    # --- integrity (capability "integrity") --------------------------------------

    def _chain_conn(self) -> sqlite3.Connection:
        conn = self._conn_or_raise()
        if not self._chained:
            raise ConfigurationError(
                f"{self._where} keeps no hash chain; open it with ?integrity=chain"
            )
        return conn

    def chain_head(self) -> ChainEntry | None:
        with self._lock:
            self._chain_conn()
            row = self._query_one(_CHAIN_HEAD, ())
        return None if row is None else _make_entry(row)

    def read_chain(self, from_seq: int = 1, limit: int | None = None) -> list[ChainEntry]:
        check.check_int(from_seq, "from_seq", 1)
        check.check_optional_int(limit, "limit", 1)
        with self._lock:
            conn = self._chain_conn()
            try:
                rows = conn.execute(
                    f"SELECT {_CHAIN_COLUMNS} FROM eventuali_chain WHERE seq >= ? "
                    "ORDER BY seq LIMIT ?",
                    (from_seq, -1 if limit is None else limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise self._storage_error(exc, "read_chain") from exc
        return list(map(_make_entry, rows))

    def verify_chain(self) -> list[ChainProblem]:
        """Check the chain on one read snapshot; a file is read on its own connection."""
        with self._lock:
            conn = self._chain_conn()
            if self._memory:
                return self._verify_on(conn)
        try:
            reader = sqlite3.connect(
                "file:" + urllib.parse.quote(self.path) + "?mode=ro", uri=True,
                isolation_level=None, check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self._storage_error(exc, "verify_chain") from exc
        try:
            reader.execute("BEGIN")  # one snapshot for both cursors
            return self._verify_on(reader)
        finally:
            reader.close()

    def _verify_on(self, conn: sqlite3.Connection) -> list[ChainProblem]:
        try:
            entries = conn.execute(f"SELECT {_CHAIN_COLUMNS} FROM eventuali_chain ORDER BY seq")
            records = conn.execute(f"SELECT {COLUMNS} FROM eventuali_events ORDER BY position")
            return verify_entries(map(_make_entry, entries), map(_make_record, records))
        except sqlite3.Error as exc:
            raise self._storage_error(exc, "verify_chain") from exc

