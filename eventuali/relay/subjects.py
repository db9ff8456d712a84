"""Subject templates of the relay and NATS subject matching (no NATS needed to use this).

``events.{aggregate_type}.{event_type}`` becomes ``events.User.UserRegistered``.
The fields are those of a stored record; a field that does not exist is
refused when the relay is made, not when the first event arrives.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError

DEFAULT_SUBJECT = "events.{aggregate_type}.{event_type}"
FIELDS = {
    "aggregate_type": "stream_type",
    "event_type": "event_type",
    "aggregate_id": "stream_id",
    "stream_id": "stream_id",
    "tenant": "tenant",
    "version": "version",
    "position": "position",
}
"""Template field -> Record attribute."""

_UNSAFE = str.maketrans({c: "_" for c in " \t\r\n*>."})


def compile_subject(template: str) -> Callable[[Any], str]:
    """A function Record -> subject; raises ConfigurationError naming an unknown field."""
    if not isinstance(template, str) or not template:
        raise ConfigurationError(f"subject template {template!r} is empty; e.g. {DEFAULT_SUBJECT!r}")
    parts: list[tuple[str, str | None]] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigurationError(f"subject template {template!r} is malformed ({exc})") from exc
    for literal, field, spec, conv in parsed:
        if field is not None and (field not in FIELDS or spec or conv):
            raise ConfigurationError(
                f"subject template {template!r} has unknown field {{{field}}}; the fields are "
                + ", ".join("{" + f + "}" for f in FIELDS)
            )
        parts.append((literal, FIELDS[field] if field is not None else None))
    if any(c in template for c in " \t\r\n"):
        raise ConfigurationError(f"subject template {template!r} contains white space, which "
                                 "NATS subjects cannot")

    def subject(record: Any) -> str:
        # A value becomes one subject token: dots, wildcards and spaces inside it are replaced.
        return "".join(lit + ("" if attr is None else str(getattr(record, attr)).translate(_UNSAFE)
                              or "_")
                       for lit, attr in parts)

    return subject


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: ``*`` is one token, ``>`` one or more trailing tokens."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


def subject_root(template: str) -> str:
    """The wildcard that covers every subject of ``template`` (``events.>`` for the default)."""
    head = template.split("{", 1)[0]
    tokens = [t for t in head.split(".") if t]
    if "{" in template and not head.endswith("."):
        tokens = tokens[:-1]  # the field shares a token with a literal
    return ".".join([*tokens, ">"]) if "{" in template else template
