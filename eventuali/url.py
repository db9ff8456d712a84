"""Parse store URLs into :class:`~eventuali.records.StoreURL`.

The core parses once so that every backend interprets a URL the same way.
Accepted forms: ``memory://[name]``, ``sqlite://relative.db``,
``sqlite:///abs/path.db``, ``sqlite://:memory:``, a bare filesystem path
(means SQLite), ``postgresql://user:pass@host:port/db?opt=v`` (also
``postgres://``), and any of these with ``+backend`` after the scheme
(``sqlite+c:///x.db``) to pick the engine.

Any other scheme (a third-party engine's) keeps its location as written:
``path`` is everything between ``://`` and ``?``, percent-decoded, case and
slashes untouched (``jsonl://Events.jsonl`` -> path ``Events.jsonl``,
``jsonl:///data/e.jsonl`` -> ``/data/e.jsonl``).  For engines that talk to a
server, ``host``, ``port``, ``user``, ``password`` and ``database`` are also
filled in when that text reads as ``user:pass@host:port/database`` (the host
lowercased, as hostnames are), and left ``None`` when it does not.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ConfigurationError
from .records import StoreURL

_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9.\-]*)(?:\+(?P<backend>[A-Za-z0-9_\-]+))?://")
_SCHEME_ALIASES = {"postgres": "postgresql", "sqlite3": "sqlite"}
_SERVER_SCHEMES = frozenset({"postgresql"})
"""Schemes whose ``path`` is the URL path (``/db``); any other scheme keeps an opaque path."""


def parse_url(url: str) -> StoreURL:
    """Parse ``url``; raise ``ConfigurationError`` naming the URL and the accepted forms."""
    if not isinstance(url, str):
        raise ConfigurationError(
            f"store URL must be a string, got {type(url).__name__} {url!r}; "
            "e.g. 'sqlite://events.db', 'memory://' or 'postgresql://user@host/db'"
        )
    raw = url
    url = url.strip()
    if not url:
        raise ConfigurationError(
            "store URL is empty; use e.g. 'sqlite://events.db', 'memory://' or "
            "'postgresql://user@host/db'"
        )
    m = _SCHEME_RE.match(url)
    if m is None:
        if "://" in url or url.startswith(("postgresql:", "postgres:", "memory:", "sqlite:")):
            raise ConfigurationError(
                f"malformed store URL {raw!r}; expected 'scheme://…', e.g. 'sqlite://events.db', "
                "'memory://' or 'postgresql://user@host/db'"
            )
        # A bare path means a SQLite file.
        return StoreURL(raw=raw, scheme="sqlite", path=url)
    scheme = m.group("scheme").lower()
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    backend = m.group("backend")
    rest = url[m.end() :]
    if scheme in ("sqlite", "memory"):
        path, _, query = rest.partition("?")
        options = _parse_query(query, raw)
        path = unquote(path)
        if path.startswith("//"):
            # sqlite:////abs/x.db (an absolute path pasted after sqlite:///) means /abs/x.db;
            # POSIX would otherwise keep the leading "//" as a distinct root.
            path = "/" + path.lstrip("/")
        if scheme == "sqlite" and not path:
            raise ConfigurationError(
                f"store URL {raw!r} names no SQLite file; use 'sqlite://events.db' (relative), "
                "'sqlite:///abs/path.db' (absolute) or 'sqlite://:memory:'"
            )
        return StoreURL(raw=raw, scheme=scheme, backend=backend, path=path, options=options)
    # Network URLs: netloc/path form.
    parts = urlsplit("x://" + rest)
    try:
        port = parts.port
    except ValueError as exc:
        if scheme in _SERVER_SCHEMES:
            raise ConfigurationError(f"malformed port in store URL {raw!r}: {exc}") from None
        port = None  # an opaque location such as 'C:/x': no server fields
    if scheme in _SERVER_SCHEMES:
        path = parts.path
    else:
        path = unquote(rest.partition("?")[0])  # the location exactly as written
    return StoreURL(
        raw=raw,
        scheme=scheme,
        backend=backend,
        path=path,
        host=unquote(parts.hostname) if parts.hostname else None,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        database=unquote(parts.path.lstrip("/")) or None,
        options=_parse_query(parts.query, raw),
    )


def _parse_query(query: str, raw: str) -> dict[str, str]:
    if not query:
        return {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ConfigurationError(
            f"malformed query string {query!r} in store URL {raw!r}; expected 'key=value&key=value'"
        ) from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key in options:
            raise ConfigurationError(f"option {key!r} is given twice in store URL {raw!r}")
        options[key] = value
    return options


class SQLiteOptions(NamedTuple):
    """The ``sqlite://`` URL options, parsed once for every engine that serves SQLite."""

    path: str
    """Absolute file path, or ``:memory:``."""
    synchronous: str
    """``full``, ``normal`` (default) or ``off``."""
    busy_timeout: int
    """Milliseconds to wait for another writer's lock (default 5000)."""
    read_only: bool
    """``mode=ro``: open an existing store for reading only."""


SQLITE_OPTIONS = ("synchronous", "busy_timeout", "mode")
SQLITE_SYNCHRONOUS = ("full", "normal", "off")


def sqlite_options(url: StoreURL) -> SQLiteOptions:
    """Validate and parse a ``sqlite://`` URL's options; ``ConfigurationError`` names the bad one."""
    unknown = sorted(set(url.options) - set(SQLITE_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"store URL {url.redacted()!r}: unknown SQLite option(s) {', '.join(unknown)}; "
            f"valid options are {', '.join(SQLITE_OPTIONS)} "
            "(e.g. sqlite://events.db?synchronous=full&busy_timeout=10000)"
        )
    synchronous = url.options.get("synchronous", "normal").lower()
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ConfigurationError(
            f"store URL {url.redacted()!r}: synchronous={url.options['synchronous']!r} is not "
            f"valid; use one of {', '.join(SQLITE_SYNCHRONOUS)}"
        )
    raw_timeout = url.options.get("busy_timeout", "5000")
    try:
        busy_timeout = int(raw_timeout)
        if not 0 <= busy_timeout < 2**31:  # SQLite takes a C int
            raise ValueError
    except ValueError:
        raise ConfigurationError(
            f"store URL {url.redacted()!r}: busy_timeout={raw_timeout!r} is not valid; give "
            "a whole number of milliseconds from 0 to 2147483647, e.g. busy_timeout=5000"
        ) from None
    mode = url.options.get("mode", "rw").lower()
    if mode not in ("rw", "ro"):
        raise ConfigurationError(
            f"store URL {url.redacted()!r}: mode={url.options['mode']!r} is not valid; use "
            "mode=rw (default) or mode=ro (read only)"
        )
    path = url.path
    if path != ":memory:":
        path = os.path.abspath(os.path.expanduser(path))
    elif mode == "ro":
        raise ConfigurationError(
            f"store URL {url.redacted()!r}: mode=ro needs a database file, not :memory:"
        )
    return SQLiteOptions(path, synchronous, busy_timeout, mode == "ro")
