"""Which streams, checkpoints and snapshots a store holds, on every engine.

The Backend protocol has no call that lists streams or checkpoints, and this
module does not add one (every engine, C included, would have to implement it
to serve a tool).  Instead there are two sources of the same answers:

- :class:`ScanCatalog` uses the protocol only: streams come from one pass of
  ``read_all`` (the filter is pushed to the engine); checkpoint names from the
  library's own bookkeeping streams (``$projection:NAME``, ``$parked:NAME``)
  plus names the caller gives.  It works on any engine and any storage,
  including ``memory://`` and third-party engines, at the cost of reading every
  event.
- :class:`SQLCatalog` reads the table layout that every engine serving
  ``sqlite://`` and ``postgresql://`` shares (``eventuali/schema/*.sql``),
  read-only: a stream listing is one indexed query, and it also sees
  checkpoints that no bookkeeping stream names and deleted streams' tombstones.

:func:`open_catalog` picks the SQL one where the scheme has that layout.  Both
return the same :class:`StreamInfo` rows for the same store (tests check it).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import NotAnEventualiStoreError, StorageError
from ..projections import RESERVED_STREAM_TYPE
from ..protocol import Backend
from ..records import ReadFilter, Snapshot, StoreURL
from ..url import sqlite_options
from .records import iter_records

_BOOKKEEPING_PREFIXES = ("$projection:", "$parked:")


@dataclass(frozen=True)
class StreamInfo:
    stream_id: str
    stream_type: str
    tenant: str
    version: int
    """The stream's current version (its last event's)."""
    events: int
    """Events stored (fewer than ``version`` after truncation)."""
    first_timestamp: int
    last_timestamp: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProjectionInfo:
    name: str
    position: int | None
    """Stored checkpoint, or None when the name has none."""
    lag: int
    """Events of the store's head not yet handled (head - position)."""
    parked: int
    """Records parked under this name (``$parked:NAME``)."""


def _stream_filter(stream_type: str | None, prefix: str | None) -> ReadFilter | None:
    if stream_type is None and not prefix:
        return None
    return ReadFilter(
        stream_types=frozenset({stream_type}) if stream_type is not None else None,
        stream_id_prefix=prefix or None,
    )


class ScanCatalog:
    """Answers from the protocol alone (see the module docstring)."""

    lists_all_checkpoints = False
    """The protocol cannot list checkpoint names: only bookkeeping streams and given names show."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def streams(
        self, stream_type: str | None = None, prefix: str | None = None, limit: int | None = None
    ) -> list[StreamInfo]:
        """Streams with at least one event, by id; ``limit`` keeps the first ones."""
        acc: dict[str, list[Any]] = {}
        for r in iter_records(self.backend, 1, _stream_filter(stream_type, prefix)):
            row = acc.get(r.stream_id)
            if row is None:
                acc[r.stream_id] = [r.stream_type, r.tenant, r.version, 1, r.timestamp, r.timestamp]
            else:
                row[2] = r.version
                row[3] += 1
                row[5] = r.timestamp
        ids = sorted(acc)[:limit] if limit is not None else sorted(acc)
        return [StreamInfo(sid, *acc[sid]) for sid in ids]

    def checkpoint_names(self, extra: Iterable[str] = ()) -> set[str]:
        names = set(extra)
        bookkeeping = ReadFilter(stream_types=frozenset({RESERVED_STREAM_TYPE}))
        for r in iter_records(self.backend, 1, bookkeeping):
            for p in _BOOKKEEPING_PREFIXES:
                if r.stream_id.startswith(p):
                    names.add(r.stream_id[len(p):])
        return names

    def stats(self) -> dict[str, Any]:
        n = 0
        for _ in iter_records(self.backend):
            n += 1
        return {"head": self.backend.head(), "events": n}

    def close(self) -> None:
        """Nothing of its own to release (the backend is the caller's)."""


class SQLCatalog(ScanCatalog):
    """Answers from a read-only SQL connection to the shared table layout."""

    lists_all_checkpoints = True
    path: str | None = None
    """The SQLite file, whose size the stats report."""

    def __init__(self, backend: Backend, conn: Any, schema: str, placeholder: str) -> None:
        super().__init__(backend)
        self.conn = conn
        self.t = schema  # table-name prefix, already quoted
        self.p = placeholder

    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql.replace("{t}", self.t).replace("?", self.p), params)
        rows = cur.fetchall()
        if self.p == "%s":
            self.conn.rollback()  # end the read transaction: hold no snapshot between calls
        return list(rows)

    def streams(
        self, stream_type: str | None = None, prefix: str | None = None, limit: int | None = None
    ) -> list[StreamInfo]:
        where = ["EXISTS (SELECT 1 FROM {t}eventuali_events e WHERE e.stream_id = s.stream_id)"]
        params: list[Any] = []
        if stream_type is not None:
            where.append("s.stream_type = ?")
            params.append(stream_type)
        if prefix:
            # ">=" lets the primary key start the scan at the prefix (ids compare byte-wise)
            where.append("s.stream_id >= ? AND substr(s.stream_id, 1, ?) = ?")
            params += [prefix, len(prefix), prefix]
        sql = (
            "SELECT s.stream_id, s.stream_type, s.tenant, s.version,"
            " (SELECT count(*) FROM {t}eventuali_events e WHERE e.stream_id = s.stream_id),"
            " (SELECT e.timestamp FROM {t}eventuali_events e WHERE e.stream_id = s.stream_id"
            "  ORDER BY e.version LIMIT 1),"
            " (SELECT e.timestamp FROM {t}eventuali_events e WHERE e.stream_id = s.stream_id"
            "  ORDER BY e.version DESC LIMIT 1)"
            " FROM {t}eventuali_streams s WHERE " + " AND ".join(where) + " ORDER BY s.stream_id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            StreamInfo(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6]))
            for r in self._q(sql, tuple(params))
        ]

    def checkpoint_names(self, extra: Iterable[str] = ()) -> set[str]:
        names = set(extra) | {r[0] for r in self._q("SELECT name FROM {t}eventuali_checkpoints")}
        for (sid,) in self._q(
            "SELECT stream_id FROM {t}eventuali_streams WHERE stream_type = ?",
            (RESERVED_STREAM_TYPE,),
        ):
            for p in _BOOKKEEPING_PREFIXES:
                if sid.startswith(p):
                    names.add(sid[len(p):])
        return names

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"head": self.backend.head()}
        for key, table in (("events", "events"), ("snapshots", "snapshots"),
                           ("checkpoints", "checkpoints")):
            out[key] = int(self._q(f"SELECT count(*) FROM {{t}}eventuali_{table}")[0][0])
        out["streams"], out["deleted_streams"] = (
            int(v or 0) for v in self._q(
                "SELECT count(*), sum(CASE WHEN deleted THEN 1 ELSE 0 END) FROM {t}eventuali_streams"
            )[0]
        )
        meta = dict(self._q("SELECT key, value FROM {t}eventuali_meta"))
        out["schema_version"] = int(meta.get("schema_version", 0))
        out["created_by"] = meta.get("created_by")
        if self.path is not None:
            out["size_bytes"] = os.path.getsize(self.path)
        return out

    def close(self) -> None:
        self.conn.close()


def _open_sqlite(backend: Backend, url: StoreURL) -> ScanCatalog:
    path = sqlite_options(url).path
    if path == ":memory:":
        return ScanCatalog(backend)  # a private in-process database: nothing else can open it
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise NotAnEventualiStoreError(f"{path!r} is not a SQLite database ({exc})") from exc
    if "eventuali_checkpoints" not in tables:
        conn.close()
        raise NotAnEventualiStoreError(
            f"{path!r} has no eventuali tables (found: {', '.join(sorted(tables)) or 'none'})"
        )
    catalog = SQLCatalog(backend, conn, "", "?")
    catalog.path = path
    return catalog


def _open_postgres(backend: Backend, url: StoreURL) -> ScanCatalog:
    import psycopg
    from psycopg import sql

    # libpq reads the URL itself; the query holds engine options (pool_size,
    # schema, ...) that libpq does not know, so it is dropped here.
    scheme_end = url.raw.index("://")
    conninfo = "postgresql" + url.raw.strip()[scheme_end:].split("?", 1)[0]
    schema = url.options.get("schema", "eventuali")
    try:
        conn = psycopg.connect(conninfo, connect_timeout=10)
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to {url.redacted()} for inspection: {exc}") from exc
    prefix = sql.Identifier(schema).as_string(conn) + "."
    return SQLCatalog(backend, conn, prefix, "%s")


def open_catalog(backend: Backend, url: StoreURL) -> ScanCatalog:
    """The fastest catalog for the store at ``url`` (opened as ``backend``)."""
    if url.scheme == "sqlite":
        return _open_sqlite(backend, url)
    if url.scheme == "postgresql":
        return _open_postgres(backend, url)
    return ScanCatalog(backend)


def stream_snapshots(backend: Backend, stream_id: str) -> list[Snapshot]:
    """Every snapshot of a stream, oldest first, through ``load_snapshot`` alone."""
    out: list[Snapshot] = []
    snap = backend.load_snapshot(stream_id)
    while snap is not None:
        out.append(snap)
        snap = backend.load_snapshot(stream_id, snap.version - 1) if snap.version > 0 else None
    return out[::-1]


def projections(catalog: ScanCatalog, extra_names: Iterable[str] = ()) -> list[ProjectionInfo]:
    """Each known checkpoint with its lag behind the head and its parked records."""
    backend = catalog.backend
    head = backend.head()
    out = []
    for name in sorted(catalog.checkpoint_names(extra_names)):
        pos = backend.get_checkpoint(name)
        parked = len(backend.read_stream(f"$parked:{name}"))
        out.append(ProjectionInfo(name, pos, max(head - (pos or 0), 0), parked))
    return out
