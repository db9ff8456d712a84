"""Engine settings given to ``EventStore.create(url, **options)``: merged into the URL's options.

The guide keeps its PostgreSQL settings in a dict (``DATABASE_CONFIG``) with
SQLAlchemy's ``connect_args`` and asyncpg's ``server_settings`` nesting.  A
keyword argument is the same thing as the URL option of that name: the nested
dicts flatten into it, and the merged URL then goes through the one validation
every engine applies to URL options (unknown names are refused listing the
valid ones, bad values are refused naming them).  A setting given both in the
URL and as a keyword with different values is refused: neither silently wins.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from .errors import ConfigurationError
from .records import StoreURL

NESTED = ("connect_args", "server_settings")
"""Keys whose dict value holds more settings (the guide's DATABASE_CONFIG layout)."""


def _flatten(options: dict[str, Any], where: str, into: dict[str, str]) -> None:
    for key, value in options.items():
        if isinstance(value, dict):
            if key not in NESTED:
                raise ConfigurationError(
                    f"{where}: keyword argument {key!r} is a dict; only {', '.join(NESTED)} may "
                    "nest settings (as in the guide's DATABASE_CONFIG), give the others flat"
                )
            _flatten(value, where, into)
            continue
        if isinstance(value, bool):
            text = "on" if value else "off"  # PostgreSQL's spelling of a boolean setting
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise ConfigurationError(
                f"{where}: setting {key}={value!r} must be a string or a number, got "
                f"{type(value).__name__}"
            )
        if key in into and into[key] != text:
            raise ConfigurationError(f"{where}: setting {key!r} is given twice ({into[key]!r} and {text!r})")
        into[key] = text


def merge_options(url: StoreURL, options: dict[str, Any], where: str) -> StoreURL:
    """``url`` with ``options`` added to its query options; a conflict is a ``ConfigurationError``."""
    if not options:
        return url
    flat: dict[str, str] = {}
    _flatten(options, where, flat)
    clashes = sorted(k for k in flat if k in url.options and url.options[k] != flat[k])
    if clashes:
        both = ", ".join(f"{k}={url.options[k]!r} in the URL and {k}={flat[k]!r} as a keyword argument"
                         for k in clashes)
        raise ConfigurationError(
            f"{where}: {both}; give each setting once (the URL or the keyword argument)"
        )
    added = {k: v for k, v in flat.items() if k not in url.options}
    if not added:
        return url
    sep = "&" if "?" in url.raw else "?"
    raw = url.raw + ("" if url.raw.endswith(("?", "&")) else sep) + urlencode(added)
    return replace(url, raw=raw, options={**url.options, **added})
