"""URL options of ``postgresql://`` stores: parsing, checking, and the libpq connection string.

Shared by the sync and async PostgreSQL engines (:mod:`.postgres`, :mod:`.postgres_async`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from eventuali.errors import ConfigurationError
from eventuali.records import StoreURL
from eventuali.url import integrity_option

CAPABILITIES = frozenset(
    {"persistent", "multi_process", "snapshots", "checkpoints", "delete", "truncate", "wait_for",
     "replication"}
)
"""What both PostgreSQL engines declare (``integrity`` is added per store, when it is chained)."""

_INSTALL_HINT = 'pip install "eventuali[postgresql]"'

DEFAULT_SCHEMA = "eventuali"
_OPTION_DEFAULTS: dict[str, str] = {
    "application_name": "eventuali",
    "pool_size": "2",  # connections kept open (psycopg_pool min_size)
    "max_overflow": "8",  # extra connections under load (max_size = pool_size + max_overflow)
    "pool_timeout": "30",  # seconds to wait for a free connection
    "pool_recycle": "3600",  # seconds before a connection is replaced (max_lifetime)
    "connect_timeout": "10",  # seconds; bounded so an unreachable host fails fast
    "schema": DEFAULT_SCHEMA,
}
# libpq settings passed through unchanged (TLS is the one a production URL needs).
_LIBPQ_PASSTHROUGH = ("sslmode", "sslrootcert", "sslcert", "sslkey", "target_session_attrs")
# Server setting per connection.  "off" trades durability for speed: a server crash
# (not a client crash) may lose the last fraction of a second of acknowledged
# appends - never half of one.  Left to the server's default unless given.
_SYNC_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")
# Per-session server settings a URL may carry (the guide's DATABASE_CONFIG "server_settings"),
# sent as "-c name=value" at connect; the server checks the values.
_SESSION_SETTINGS = ("jit", "work_mem", "maintenance_work_mem", "statement_timeout",
                     "lock_timeout", "idle_in_transaction_session_timeout")
# Settings only a server start can change: named so the error says where they go.
_SERVER_START_SETTINGS = ("shared_preload_libraries", "shared_buffers", "max_connections",
                          "wal_level", "max_wal_senders")
_SETTING_VALUE_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
VALID_OPTIONS = (
    tuple(sorted(_OPTION_DEFAULTS)) + _LIBPQ_PASSTHROUGH
    + ("synchronous_commit", "command_timeout", "integrity")
    + _SESSION_SETTINGS
)
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class PostgresConfig:
    """The settings of one ``postgresql://`` URL, checked."""

    url: StoreURL
    conninfo: str
    schema: str
    min_size: int
    max_size: int
    pool_timeout: float
    max_lifetime: float
    connect_timeout: int
    integrity: str | None = None
    """``integrity=chain``: start a hash chain (see postgres_chain)."""

    @property
    def pool_options(self) -> dict:
        """The guide's pool settings as psycopg_pool arguments (sync and async pools alike)."""
        return {
            "kwargs": {"autocommit": True},
            "min_size": self.min_size,
            "max_size": self.max_size,
            "timeout": self.pool_timeout,
            "max_lifetime": self.max_lifetime,
        }

    @property
    def where(self) -> str:
        """The URL without its password, for messages."""
        return self.url.redacted()

    @property
    def lock_key(self) -> int:
        """Advisory-lock key of this store's schema (signed 64-bit)."""
        digest = hashlib.blake2b(f"eventuali:{self.schema}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    @property
    def channel(self) -> str:
        """LISTEN/NOTIFY channel of this store (an identifier, at most 63 bytes)."""
        return f"eventuali_{self.schema}"[:63]

    @classmethod
    def from_url(cls, url: StoreURL) -> PostgresConfig:
        start_only = sorted(set(url.options) & set(_SERVER_START_SETTINGS))
        if start_only:
            raise ConfigurationError(
                f"option {start_only[0]!r} in store URL {url.redacted()!r} is a PostgreSQL "
                "server-start setting, which a connection cannot change; set it in "
                "postgresql.conf (or ALTER SYSTEM) and restart the server, and remove it from the URL"
            )
        unknown = sorted(set(url.options) - set(VALID_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"in store URL {url.redacted()!r}; valid options for postgresql:// are "
                f"{', '.join(VALID_OPTIONS)}"
            )
        opts = {**_OPTION_DEFAULTS, **url.options}

        def number(name: str, kind: type, minimum: float) -> Any:
            raw = opts[name]
            try:
                value = kind(raw)
            except ValueError:
                value = None
            if value is None or value < minimum:
                raise ConfigurationError(
                    f"option {name}={raw!r} in store URL {url.redacted()!r} must be "
                    f"{'an integer' if kind is int else 'a number'} >= {minimum}; "
                    f"the default is {_OPTION_DEFAULTS[name]}"
                )
            return value

        pool_size = number("pool_size", int, 1)
        max_overflow = number("max_overflow", int, 0)
        pool_timeout = number("pool_timeout", float, 0.001)
        pool_recycle = number("pool_recycle", float, 1)
        connect_timeout = number("connect_timeout", int, 1)
        schema = opts["schema"]
        if not _IDENT_RE.match(schema):
            raise ConfigurationError(
                f"option schema={schema!r} in store URL {url.redacted()!r} is not a plain "
                "PostgreSQL identifier; use letters, digits and '_' (at most 63, not starting "
                f"with a digit), e.g. schema={DEFAULT_SCHEMA}"
            )
        from psycopg.conninfo import make_conninfo

        params: dict[str, Any] = {
            "host": url.host,
            "port": url.port,
            "user": url.user,
            "password": url.password,
            "dbname": url.database,
            "application_name": opts["application_name"],
            "connect_timeout": connect_timeout,
        }
        params.update({k: url.options[k] for k in _LIBPQ_PASSTHROUGH if k in url.options})
        # eventuali_append relies on READ COMMITTED: after waiting for a stream row
        # lock, its next statement reads the version the other writer committed.  A
        # server or role default of REPEATABLE READ/SERIALIZABLE would turn every
        # such wait into a serialization failure, so the store pins its own sessions.
        server_options = ["-c default_transaction_isolation=read\\ committed"]
        if "synchronous_commit" in url.options:
            sc = url.options["synchronous_commit"]
            if sc not in _SYNC_COMMIT:
                raise ConfigurationError(
                    f"option synchronous_commit={sc!r} in store URL {url.redacted()!r} is not one "
                    f"of {', '.join(_SYNC_COMMIT)}"
                )
            server_options.append(f"-c synchronous_commit={sc}")
        if "command_timeout" in url.options:
            # asyncpg's name for a per-statement limit, in seconds: statement_timeout.
            seconds = url.options["command_timeout"]
            try:
                ms = round(float(seconds) * 1000)
            except ValueError:
                ms = -1
            if ms < 0:
                raise ConfigurationError(
                    f"option command_timeout={seconds!r} in store URL {url.redacted()!r} must be "
                    "a number of seconds >= 0 (0 = no limit)"
                )
            server_options.append(f"-c statement_timeout={ms}")
        for name in _SESSION_SETTINGS:
            if name in url.options:
                value = url.options[name]
                if not _SETTING_VALUE_RE.match(value):
                    raise ConfigurationError(
                        f"option {name}={value!r} in store URL {url.redacted()!r} is not a plain "
                        "setting value; use letters, digits and . _ + - (e.g. 256MB, off, 30s)"
                    )
                server_options.append(f"-c {name}={value}")
        params["options"] = " ".join(server_options)
        conninfo = make_conninfo("", **{k: v for k, v in params.items() if v is not None})
        return cls(
            url=url,
            conninfo=conninfo,
            schema=schema,
            min_size=pool_size,
            max_size=pool_size + max_overflow,
            pool_timeout=pool_timeout,
            max_lifetime=pool_recycle,
            connect_timeout=connect_timeout,
            integrity=integrity_option(url),
        )


def require_psycopg() -> None:
    """Raise ConfigurationError with the install command when psycopg 3 / psycopg_pool are missing."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            f"postgresql:// needs psycopg 3 and psycopg_pool, which are not installed ({exc}); "
            f"install them with: {_INSTALL_HINT}"
        ) from None
    from .postgres_arrays import register

    register()

