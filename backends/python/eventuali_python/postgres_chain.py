"""The ``integrity=chain`` part of the PostgreSQL engine: starting a chain, reading and checking it.

The entries themselves are written on the server, by the triggers of
``eventuali/schema/postgresql_chain.sql``, inside the transaction of the
statement that inserts or deletes events (so the sync and async backends, and
any other client of the schema, chain alike).  This module adds the chain to a
store at open (:func:`chain_steps`, run with the schema steps) and gives the
sync backend ``chain_head``/``read_chain``/``verify_chain``.
"""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
from importlib import resources
from typing import Any

from eventuali import record_validation as check
from eventuali.errors import ConfigurationError, SchemaVersionError, StorageError
from eventuali.integrity.chain import MODE, ChainEntry, ChainProblem, verify_entries
from eventuali.records import Record

_make_entry = partial(tuple.__new__, ChainEntry)
_make_record = partial(tuple.__new__, Record)
_ENTRY_COLUMNS = "seq, kind, position, stream_id, version, digest, hash"
_RECORD_COLUMNS = (
    "position, event_id, stream_id, stream_type, version, event_type, schema_version, "
    "timestamp, tenant, metadata, payload"
)


class ChainStatements:
    """The chain's SQL for one schema (``schema`` already quoted)."""

    def __init__(self, schema: str):
        self.script = (
            resources.files("eventuali").joinpath("schema/postgresql_chain.sql").read_text("utf-8")
        ).replace("{schema}", schema)
        self.read_mode = (
            f"SELECT (SELECT value FROM {schema}.eventuali_meta WHERE key = 'integrity')"
        )
        self.head_entry = (
            f"SELECT {_ENTRY_COLUMNS} FROM {schema}.eventuali_chain ORDER BY seq DESC LIMIT 1"
        )
        self.read = (
            f"SELECT {_ENTRY_COLUMNS} FROM {schema}.eventuali_chain WHERE seq >= %s "
            "ORDER BY seq LIMIT %s"
        )
        self.all_entries = f"SELECT {_ENTRY_COLUMNS} FROM {schema}.eventuali_chain ORDER BY seq"
        self.all_records = (
            f"SELECT {_RECORD_COLUMNS} FROM {schema}.eventuali_events ORDER BY position"
        )


def chain_steps(st: Any, cfg: Any, create: bool) -> Generator[tuple[str, Any], Any, None]:
    """Steps (as :func:`~eventuali_python.postgres.schema_steps`) that start the chain if asked."""
    cs = ChainStatements(st.schema)
    (mode,) = yield (cs.read_mode, None)
    if mode is None and cfg.integrity is not None:
        if not create:
            raise StorageError(
                f"{cfg.where} keeps no hash chain and this connection may not start one; open "
                "the store on the primary first"
            )
        yield ("SELECT pg_advisory_xact_lock(%s)", (cfg.lock_key,))
        (mode,) = yield (cs.read_mode, None)
        if mode is None:
            (head,) = yield (st.head, None)
            if head > 0:
                raise ConfigurationError(
                    f"schema {cfg.schema!r} of {cfg.where} already holds events without a hash "
                    "chain, so integrity=chain cannot cover them; copy the events into a new "
                    "schema opened with integrity=chain"
                )
            yield (cs.script, None)
            yield (st.write_meta, ("integrity", MODE))
            mode = MODE
    if mode is not None and mode != MODE:
        raise SchemaVersionError(
            f"schema {cfg.schema!r} of {cfg.where} keeps integrity mode {mode!r}, which this "
            "eventuali does not know; upgrade eventuali"
        )


class PostgresChain:
    """Chain methods of the sync PostgreSQL backend (``_conn``, ``st`` come from it)."""

    st: Any
    _chain_sql: ChainStatements

    def _conn(self, operation: str) -> Any:  # provided by PostgresBackend
        raise NotImplementedError

    def _chained(self, conn: Any) -> bool:
        self._chain_sql = ChainStatements(self.st.schema)
        return conn.execute(self._chain_sql.read_mode).fetchone()[0] == MODE

    def _require_chain(self) -> ChainStatements:
        if "integrity" not in self.capabilities:  # type: ignore[attr-defined]
            raise ConfigurationError(
                "this PostgreSQL store keeps no hash chain; open it with ?integrity=chain"
            )
        return self._chain_sql

    def chain_head(self) -> ChainEntry | None:
        cs = self._require_chain()
        with self._conn("chain_head") as conn:
            row = conn.execute(cs.head_entry).fetchone()
        return None if row is None else _make_entry(row)

    def read_chain(self, from_seq: int = 1, limit: int | None = None) -> list[ChainEntry]:
        check.check_int(from_seq, "from_seq", 1)
        check.check_optional_int(limit, "limit", 1)
        cs = self._require_chain()
        with self._conn("read_chain") as conn:
            rows = conn.execute(cs.read, (from_seq, limit)).fetchall()
        return list(map(_make_entry, rows))

    def verify_chain(self) -> list[ChainProblem]:
        """Check on one REPEATABLE READ snapshot, streaming both tables through server-side cursors."""
        cs = self._require_chain()
        with self._conn("verify_chain") as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            with conn.cursor(name="eventuali_verify_entries") as entries, conn.cursor(
                name="eventuali_verify_records"
            ) as records:
                entries.itersize = records.itersize = 5000
                entries.execute(cs.all_entries)
                records.execute(cs.all_records)
                return verify_entries(map(_make_entry, entries), map(_make_record, records))
