"""The SQLite engine behind ``sqlite://``, on the standard library's ``sqlite3``.

The file format and the open rules are those of ``eventuali/schema/sqlite.sql``
(read from the package, the same text the C engine embeds), so a file written
by one engine is read and appended to by the other.

Concurrency: each backend holds **one connection guarded by a lock**; calls from
several threads are serialized (SQLite writes are serialized anyway, and the
GIL would serialize the Python work of reads).  Several *processes* may write
the same file: every write starts with ``BEGIN IMMEDIATE``, which takes the
file's write lock before reading the stream versions, so the optimistic check
and the insert see the same state and positions are assigned in commit order;
a writer that finds the lock taken waits up to ``busy_timeout`` ms.

``wait_for`` is woken at once by commits made through any backend on the same
file in this process.  SQLite has no cross-process notification, so commits of
*other processes* are noticed by re-reading the head every
:data:`POLL_INTERVAL` seconds while waiting.

URL options: ``synchronous=full|normal|off`` (default ``normal``: in WAL mode a
process crash loses nothing, an OS crash may lose the last commits but never
corrupts the file; ``full`` syncs every commit), ``busy_timeout=<ms>`` (default
5000).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Sequence
from functools import lru_cache, partial
from importlib import resources
from itertools import chain

from eventuali import record_validation as check
from eventuali.errors import (
    DuplicateEventError,
    NotAnEventualiStoreError,
    OptimisticConcurrencyError,
    SchemaVersionError,
    StorageError,
    StoreClosedError,
    StreamDeletedError,
    TransientStorageError,
)
from eventuali.records import (
    ReadFilter,
    Record,
    Snapshot,
    StoreURL,
    StreamWrite,
    expected_version_matches,
)
from eventuali.url import sqlite_options

from . import __version__, sqlite_nowait

SCHEMA_VERSION = 1
"""The newest schema this engine reads and writes."""
POLL_INTERVAL = 0.05
"""Seconds between head re-reads in ``wait_for`` (catches other processes' commits)."""


_make_record = partial(tuple.__new__, Record)
_make_snapshot = partial(tuple.__new__, Snapshot)

_COLUMNS = (
    "position, event_id, stream_id, stream_type, version, event_type, "
    "schema_version, timestamp, tenant, metadata, payload"
)
_INSERT_EVENT = (
    "INSERT INTO eventuali_events (event_id, stream_id, stream_type, version, event_type, "
    "schema_version, timestamp, tenant, metadata, payload) VALUES "
)
# Rows per INSERT statement.  One multi-row INSERT instead of executemany: with
# AUTOINCREMENT, SQLite updates sqlite_sequence once per *statement*, and the
# per-statement overhead goes too (measured ~25% cheaper per record).  Bounded
# by the variable limit (10 per row): 32766 since SQLite 3.32, 999 before.
_ROWS_PER_INSERT = 500 if sqlite3.sqlite_version_info >= (3, 32, 0) else 99


@lru_cache(maxsize=64)
def _insert_sql(rows: int) -> str:
    return _INSERT_EVENT + ",".join(["(?,?,?,?,?,?,?,?,?,?)"] * rows)
_UPSERT_STREAM = (
    "INSERT INTO eventuali_streams (stream_id, stream_type, tenant, version) VALUES (?,?,?,?) "
    "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version"
)
_UPSERT_CHECKPOINT = (
    "INSERT INTO eventuali_checkpoints (name, position) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
)
_HEAD = "SELECT seq FROM sqlite_sequence WHERE name = 'eventuali_events'"


def schema_sql() -> str:
    """The text of ``eventuali/schema/sqlite.sql``."""
    return resources.files("eventuali").joinpath("schema/sqlite.sql").read_text("utf-8")


def _statements(script: str) -> list[str]:
    """Split the schema script into statements (``executescript`` would COMMIT our transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf)
            buf = ""
    return out


# One condition per database file in this process, shared by every backend on
# that file, so a commit through one wakes wait_for on all of them.
_conditions: dict[str, threading.Condition] = {}
_conditions_lock = threading.Lock()


def _condition_for(key: str) -> threading.Condition:
    with _conditions_lock:
        cond = _conditions.get(key)
        if cond is None:
            cond = _conditions[key] = threading.Condition()
        return cond


class SQLiteBackend:
    """A :class:`eventuali.protocol.Backend` on one SQLite file (or ``:memory:``)."""

    def __init__(
        self, path: str, synchronous: str = "normal", busy_timeout: int = 5000, mode: str = "rw"
    ) -> None:
        self.path = path
        self._memory = path == ":memory:"
        # mode=ro: open an existing store for reading only (inspection, a copy on
        # read-only media); every write raises StorageError and writes nothing.
        self._read_only = mode == "ro"
        self._where = "SQLite :memory: database" if self._memory else f"SQLite file {path!r}"
        self.capabilities = frozenset(
            {"snapshots", "checkpoints", "delete", "truncate", "wait_for"}
            | (set() if self._memory else {"persistent", "multi_process"})
        )
        self._lock = threading.RLock()
        self._closed = False
        self._changed = threading.Condition() if self._memory else _condition_for(path)
        self._synchronous, self._busy_timeout = synchronous.lower(), busy_timeout  # call_nowait
        self._busy_zero = False  # call_nowait set busy_timeout 0; call_waiting restores it
        self._conn = self._connect(synchronous, busy_timeout)

    # The async API's inline path (a call runs on the event loop only if it cannot wait).
    call_nowait = sqlite_nowait.call_nowait
    call_waiting = sqlite_nowait.call_waiting

    @classmethod
    def open(cls, url: StoreURL) -> SQLiteBackend:
        opts = sqlite_options(url)
        return cls(opts.path, opts.synchronous, opts.busy_timeout, "ro" if opts.read_only else "rw")

    def __repr__(self) -> str:
        return f"<SQLiteBackend {self.path}{' closed' if self._closed else ''}>"

    # --- opening ---------------------------------------------------------------

    def _connect(self, synchronous: str, busy_timeout: int) -> sqlite3.Connection:
        if not self._memory:
            directory = os.path.dirname(self.path)
            if not os.path.isdir(directory):
                raise StorageError(
                    f"cannot open {self._where}: the directory {directory!r} does not exist; "
                    "create it first or choose another path"
                )
            if os.path.isdir(self.path):
                raise StorageError(
                    f"cannot open {self._where}: it is a directory; give the path of a file, "
                    f"e.g. sqlite://{os.path.join(self.path, 'events.db')}"
                )
            if self._read_only and not os.path.isfile(self.path):
                raise StorageError(
                    f"cannot open {self._where} read-only (mode=ro): the file does not exist; "
                    "give the path of an existing eventuali database"
                )
            if not self._read_only and not os.access(directory, os.W_OK | os.X_OK):
                raise StorageError(
                    f"cannot open {self._where}: the directory {directory!r} is not writable "
                    "(SQLite in WAL mode needs to create the -wal and -shm files beside the "
                    "database); make it writable or choose another path"
                )
            wanted = os.R_OK if self._read_only else os.R_OK | os.W_OK
            if os.path.exists(self.path) and not os.access(self.path, wanted):
                raise StorageError(
                    f"cannot open {self._where}: the file is not readable and writable by this "
                    "user; fix its permissions or choose another path"
                )
        try:
            target, uri = self.path, False
            if self._read_only:
                target, uri = "file:" + urllib.parse.quote(self.path) + "?mode=ro", True
            conn = sqlite3.connect(
                target,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout / 1000,
                uri=uri,
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self._where}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {busy_timeout}")
            if not self._memory and not self._read_only:
                self._checked_wal(conn)
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            conn.execute("PRAGMA foreign_keys = OFF")
            self._open_schema(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise NotAnEventualiStoreError(
                    f"{self._where} is not an eventuali store (not a SQLite database: {exc}); "
                    "give the path of an eventuali database or of a new file"
                ) from exc
            raise self._storage_error(exc, "open") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _checked_wal(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageError(
                f"cannot switch {self._where} to WAL mode (journal_mode stays {mode!r}); "
                "it needs a local file system that supports shared memory"
            )

    def _tables(self, conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return {r[0] for r in rows}

    def _open_schema(self, conn: sqlite3.Connection) -> None:
        tables = self._tables(conn)
        if not tables and self._read_only:
            raise NotAnEventualiStoreError(
                f"{self._where} is empty; mode=ro opens existing eventuali stores only"
            )
        if not tables:
            # Several processes may create the same file at once: decide again
            # under the write lock.
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._tables(conn):
                    for statement in _statements(schema_sql()):
                        conn.execute(statement)
                    conn.executemany(
                        "INSERT INTO eventuali_meta (key, value) VALUES (?, ?)",
                        [
                            ("schema_version", str(SCHEMA_VERSION)),
                            ("created_by", f"python {__version__}"),
                        ],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            tables = self._tables(conn)
        if "eventuali_meta" not in tables:
            raise NotAnEventualiStoreError(
                f"{self._where} is a SQLite database but not an eventuali store (it has tables "
                f"{', '.join(sorted(tables))} and no eventuali_meta); give the path of an "
                "eventuali database or of a new file"
            )
        row = conn.execute(
            "SELECT value FROM eventuali_meta WHERE key = 'schema_version'"
        ).fetchone()
        try:
            version = int(row[0]) if row else None
        except ValueError:
            version = None
        if version is None:
            raise NotAnEventualiStoreError(
                f"{self._where} has an eventuali_meta table without a valid schema_version; "
                "it was not written by eventuali or is damaged"
            )
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self._where} uses eventuali schema version {version}, newer than version "
                f"{SCHEMA_VERSION} which this eventuali ({__version__}) understands; upgrade "
                "eventuali (pip install -U eventuali) to open it"
            )
        # version < SCHEMA_VERSION: migrations would run here, in order (none yet).

    def _storage_error(self, exc: sqlite3.Error, action: str) -> StorageError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return TransientStorageError(
                f"{action} on {self._where} timed out waiting for another writer ({text}); "
                "retry, or raise the busy_timeout URL option (milliseconds)"
            )
        if "readonly" in text or "read-only" in text:
            return StorageError(
                f"cannot {action} {self._where}: {text}; make the file and its directory "
                "writable by this user"
            )
        return StorageError(f"{action} on {self._where} failed: {text}")

    def _conn_or_raise(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreClosedError(
                f"the store on {self._where} was closed; open a new one with EventStore.create(url)"
            )
        return self._conn

    # --- writes ----------------------------------------------------------------

    def append(
        self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None
    ) -> list[int]:
        check.check_append(writes, checkpoint)
        with self._lock:
            conn = self._conn_or_raise()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._storage_error(exc, "append") from exc
            try:
                positions = self._append_locked(conn, writes, checkpoint)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._storage_error(exc, "append") from exc
                raise
        if positions:
            with self._changed:
                self._changed.notify_all()
        return positions

    def _append_locked(
        self,
        conn: sqlite3.Connection,
        writes: Sequence[StreamWrite],
        checkpoint: tuple[str, int] | None,
    ) -> list[int]:
        rows: list[tuple] = []
        planned: dict[str, int] = {}
        stream_rows = []
        for write in writes:
            stream_id, stream_type, expected, records = write[:4]
            tenant = write[4] if len(write) > 4 else ""
            if stream_id in planned:
                current = planned[stream_id]
            else:
                found = conn.execute(
                    "SELECT version, deleted FROM eventuali_streams WHERE stream_id = ?",
                    (stream_id,),
                ).fetchone()
                if found is not None and found[1]:
                    raise StreamDeletedError(stream_id)
                current = found[0] if found is not None else 0
            if not expected_version_matches(expected, current):
                raise OptimisticConcurrencyError(stream_id, expected, current)
            if records:
                rows.extend(
                    [
                        (eid, stream_id, stream_type, v, etype, sv, ts, tenant, meta, payload)
                        for v, (eid, etype, sv, ts, meta, payload) in enumerate(records, current + 1)
                    ]
                )
                current += len(records)
                stream_rows.append((stream_id, stream_type, tenant, current))
            planned[stream_id] = current
        positions: list[int] = []
        if rows:
            try:
                for start in range(0, len(rows), _ROWS_PER_INSERT):
                    part = (
                        rows
                        if len(rows) <= _ROWS_PER_INSERT
                        else rows[start : start + _ROWS_PER_INSERT]
                    )
                    conn.execute(_insert_sql(len(part)), list(chain.from_iterable(part)))
            except sqlite3.IntegrityError as exc:
                raise self._duplicate(conn, rows, exc) from None
            # One writer holds the file and AUTOINCREMENT never reuses a
            # position, so the batch got consecutive positions ending here.
            last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            positions = list(range(last - len(rows) + 1, last + 1))
            conn.executemany(_UPSERT_STREAM, stream_rows)
        if checkpoint is not None:
            conn.execute(_UPSERT_CHECKPOINT, checkpoint)
        return positions

    def _duplicate(
        self, conn: sqlite3.Connection, rows: list[tuple], exc: sqlite3.IntegrityError
    ) -> Exception:
        """Turn a unique-index violation into the protocol's error.

        In-call duplicates were refused before, so an id is already stored: roll
        back the partial batch first (it holds some of our own ids), then name the
        first id of the call that the store has.
        """
        conn.execute("ROLLBACK")
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            found = {
                row[0]
                for row in conn.execute(
                    f"SELECT event_id FROM eventuali_events WHERE event_id IN "
                    f"({','.join('?' * len(chunk))})",
                    chunk,
                )
            }
            for event_id in chunk:
                if event_id in found:
                    return DuplicateEventError(event_id)
        return StorageError(f"append on {self._where} violated a constraint: {exc}")

    # --- reads -----------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        check.check_read_stream(stream_id, from_version, to_version, limit)
        with self._lock:
            conn = self._conn_or_raise()
            try:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM eventuali_events WHERE stream_id = ? AND version >= ? "
                    "AND version <= ? ORDER BY version LIMIT ?",
                    (
                        stream_id,
                        from_version,
                        check.INT64_MAX if to_version is None else to_version,
                        -1 if limit is None else limit,
                    ),
                ).fetchall()
            except sqlite3.Error as exc:
                raise self._storage_error(exc, "read_stream") from exc
        return list(map(_make_record, rows))

    def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]:
        check.check_read_all(from_position, limit, filter)
        where = ["position >= ?"]
        params: list[object] = [from_position]
        if filter is not None:
            for column, values in (
                ("event_type", filter.event_types),
                ("stream_type", filter.stream_types),
            ):
                if values is not None:
                    if not values:
                        return []
                    where.append(f"{column} IN ({','.join('?' * len(values))})")
                    params.extend(values)
            if filter.stream_id_prefix:
                # substr counts characters, like str.startswith.
                where.append("substr(stream_id, 1, ?) = ?")
                params.extend((len(filter.stream_id_prefix), filter.stream_id_prefix))
            if filter.tenant is not None:
                where.append("tenant = ?")
                params.append(filter.tenant)
        params.append(-1 if limit is None else limit)
        sql = (
            f"SELECT {_COLUMNS} FROM eventuali_events WHERE {' AND '.join(where)} "
            "ORDER BY position LIMIT ?"
        )
        with self._lock:
            conn = self._conn_or_raise()
            try:
                rows = conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._storage_error(exc, "read_all") from exc
        return list(map(_make_record, rows))

    def stream_version(self, stream_id: str) -> int:
        check.check_stream_id(stream_id)
        with self._lock:
            row = self._query_one(
                "SELECT version, deleted FROM eventuali_streams WHERE stream_id = ?", (stream_id,)
            )
        return 0 if row is None or row[1] else row[0]

    def head(self) -> int:
        with self._lock:
            row = self._query_one(_HEAD, ())
        return row[0] if row else 0

    def _query_one(self, sql: str, params: tuple) -> tuple | None:
        conn = self._conn_or_raise()
        try:
            return conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise self._storage_error(exc, "read") from exc

    def _write(self, body) -> object:
        """Run ``body(conn)`` in a BEGIN IMMEDIATE transaction; roll back on any error."""
        with self._lock:
            conn = self._conn_or_raise()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = body(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._storage_error(exc, "write") from exc
            return result

    # --- snapshots -------------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        check.check_snapshot(snapshot)
        snap = Snapshot(*snapshot)

        def body(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT deleted FROM eventuali_streams WHERE stream_id = ?", (snap.stream_id,)
            ).fetchone()
            if row is not None and row[0]:
                raise StreamDeletedError(snap.stream_id)
            conn.execute(
                "INSERT OR REPLACE INTO eventuali_snapshots "
                "(stream_id, version, schema_version, timestamp, payload) VALUES (?,?,?,?,?)",
                snap,
            )

        self._write(body)

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        check.check_stream_id(stream_id)
        check.check_optional_int(max_version, "max_version", 0)
        with self._lock:
            row = self._query_one(
                "SELECT stream_id, version, schema_version, timestamp, payload "
                "FROM eventuali_snapshots WHERE stream_id = ? AND version <= ? "
                "ORDER BY version DESC LIMIT 1",
                (stream_id, check.INT64_MAX if max_version is None else max_version),
            )
        return None if row is None else _make_snapshot(row)

    def prune_snapshots(self, stream_id: str, keep: int) -> int:
        check.check_stream_id(stream_id)
        check.check_int(keep, "keep", 0)

        def body(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM eventuali_snapshots WHERE stream_id = ? AND version NOT IN "
                "(SELECT version FROM eventuali_snapshots WHERE stream_id = ? "
                "ORDER BY version DESC LIMIT ?)",
                (stream_id, stream_id, keep),
            ).rowcount

        return self._write(body)  # type: ignore[return-value]

    # --- checkpoints -----------------------------------------------------------

    def get_checkpoint(self, name: str) -> int | None:
        check.check_name(name, "checkpoint name")
        with self._lock:
            row = self._query_one(
                "SELECT position FROM eventuali_checkpoints WHERE name = ?", (name,)
            )
        return None if row is None else row[0]

    def set_checkpoint(self, name: str, position: int) -> None:
        check.check_checkpoint(name, position)
        self._write(lambda conn: conn.execute(_UPSERT_CHECKPOINT, (name, position)))

    # --- live ------------------------------------------------------------------

    def wait_for(self, after_position: int, timeout: float) -> int:
        check.check_wait(after_position, timeout)
        deadline = time.monotonic() + timeout
        while True:
            current = self.head()
            remaining = deadline - time.monotonic()
            if current > after_position or remaining <= 0:
                return current
            with self._changed:
                # Re-check under the condition so a commit between head() and
                # wait() is not missed; the timeout bounds the poll for other
                # processes' commits.
                if self.head() > after_position:
                    continue
                self._changed.wait(min(remaining, POLL_INTERVAL))

    # --- retention -------------------------------------------------------------

    def delete_stream(self, stream_id: str) -> int:
        check.check_stream_id(stream_id)

        def body(conn: sqlite3.Connection) -> int:
            removed = conn.execute(
                "DELETE FROM eventuali_events WHERE stream_id = ?", (stream_id,)
            ).rowcount
            conn.execute("DELETE FROM eventuali_snapshots WHERE stream_id = ?", (stream_id,))
            conn.execute(
                "INSERT INTO eventuali_streams (stream_id, stream_type, tenant, version, deleted) "
                "VALUES (?, '', '', 0, 1) ON CONFLICT (stream_id) DO UPDATE SET deleted = 1",
                (stream_id,),
            )
            return removed

        return self._write(body)  # type: ignore[return-value]

    def truncate_stream(self, stream_id: str, before_version: int) -> int:
        check.check_stream_id(stream_id)
        check.check_int(before_version, "before_version", 1)
        return self._write(  # type: ignore[return-value]
            lambda conn: conn.execute(
                "DELETE FROM eventuali_events WHERE stream_id = ? AND version < ?",
                (stream_id, before_version),
            ).rowcount
        )

    # --- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()
        with self._changed:
            self._changed.notify_all()

    def __enter__(self) -> SQLiteBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

