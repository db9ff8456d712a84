"""Mapping psycopg / psycopg_pool exceptions to the errors the protocol promises (both engines)."""

from __future__ import annotations

import re
from typing import Any

from eventuali.errors import (
    ConfigurationError,
    DuplicateEventError,
    OptimisticConcurrencyError,
    StorageError,
    StoreClosedError,
    StreamDeletedError,
    TransientStorageError,
)

from .postgres_config import _SESSION_SETTINGS, PostgresConfig


class RetryAppend(Exception):
    """A concurrent writer created one of our streams first: redo the append from the start."""


_DUP_ID_RE = re.compile(r"\(event_id\)=\(\\x([0-9a-fA-F]{32})\)")


def map_append_error(exc: Exception, params: tuple) -> Exception | None:
    """The eventuali error for a database error raised by ``eventuali_append``, or None.

    A concurrent writer that created one of our new streams first (a unique
    violation on (stream_id, version)) or a deadlock means: run the append
    again, it will see the other writer's result and decide properly.
    """
    import psycopg

    diag: Any = getattr(exc, "diag", None)
    state = getattr(diag, "sqlstate", None)
    if state == "EV409":
        expected, actual = (int(x) for x in (diag.message_detail or "0 0").split())
        return OptimisticConcurrencyError(diag.message_primary, expected, actual)
    if state == "EV410":
        return StreamDeletedError(diag.message_primary)
    if isinstance(exc, psycopg.errors.DeadlockDetected):
        return RetryAppend()
    if isinstance(exc, psycopg.errors.UniqueViolation):
        constraint = diag.constraint_name or ""
        if constraint in ("eventuali_events_stream", "eventuali_streams_pkey"):
            return RetryAppend()
        if constraint == "eventuali_events_event_id":
            m = _DUP_ID_RE.search(diag.message_detail or "")
            return DuplicateEventError(bytes.fromhex(m.group(1)) if m else b"")
    return None


def map_error(exc: BaseException, cfg: PostgresConfig, operation: str) -> Exception:
    """Turn a psycopg / psycopg_pool exception into the eventuali error the protocol promises."""
    import psycopg
    import psycopg_pool

    if isinstance(exc, psycopg_pool.PoolTimeout):
        return TransientStorageError(
            f"{operation}: no database connection to {cfg.where} became free within "
            f"{cfg.pool_timeout:g}s (pool of {cfg.max_size}); the server may be down or "
            "overloaded; retry, or raise pool_size/max_overflow/pool_timeout in the URL"
        )
    if isinstance(exc, psycopg_pool.PoolClosed):
        return StoreClosedError(f"{operation}: the store {cfg.where} is closed")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return StorageError(
            f"{operation}: permission denied on {cfg.where} (schema {cfg.schema!r}): "
            f"{exc.diag.message_primary or exc}; grant the user the privilege, or use a "
            "schema it owns (URL option schema=…)"
        )
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return TransientStorageError(
            f"{operation} on {cfg.where} was cut off: {str(exc).strip()}; nothing half-done is "
            "visible - it is safe to retry"
        )
    if isinstance(exc, psycopg.Error):
        return StorageError(f"{operation} on {cfg.where} failed: {str(exc).strip()}")
    return exc  # type: ignore[return-value]


def connect_error(exc: BaseException, cfg: PostgresConfig) -> Exception:
    """A clear error for a failure to open the first connection of a store."""
    import psycopg

    text = str(exc).strip()
    url = cfg.url
    if isinstance(exc, psycopg.OperationalError) and (
        "password authentication failed" in text
        or "authentication failed" in text
        or "role" in text
        and "does not exist" in text
        or "no password supplied" in text
    ):
        return ConfigurationError(
            f"cannot log in to {cfg.where} as user {url.user!r}: {text}; check the user name and "
            "password in the URL"
        )
    if isinstance(exc, psycopg.OperationalError) and "database" in text and "does not exist" in text:
        return ConfigurationError(
            f"database {url.database!r} named in {cfg.where} does not exist: create it "
            f"(createdb {url.database}) or fix the URL"
        )
    if isinstance(exc, psycopg.OperationalError) and (
        "invalid value for parameter" in text
        or "requires a Boolean value" in text
        or "requires an integer value" in text
        or "unrecognized configuration parameter" in text
    ):
        # A session setting from the URL (work_mem=, jit=, ...) the server refuses.
        return ConfigurationError(
            f"the server refused a setting in {cfg.where}: {text.splitlines()[-1].strip()}; fix "
            f"that option's value in the URL (valid names: {', '.join(_SESSION_SETTINGS)})"
        )
    if isinstance(exc, psycopg.OperationalError):
        return TransientStorageError(
            f"cannot connect to {cfg.where} (host {url.host or 'local socket'!r}, port "
            f"{url.port or 5432}) within connect_timeout={cfg.connect_timeout}s: {text}; check that "
            "the server runs and is reachable, then retry"
        )
    return map_error(exc, cfg, "opening the store")

