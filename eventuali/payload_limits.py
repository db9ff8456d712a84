"""What an event payload may hold so that it can always be read back: the write-time checks.

The codec writes an event's JSON with pydantic and reads it back with
pydantic's JSON parser.  Two things the writer produces are refused here,
before anything is stored, because the reader would refuse them for ever:

* **Non-finite floats** (NaN, Infinity, -Infinity).  JSON has no literal for
  them; pydantic's default writes ``null``, which a ``float`` field refuses on
  load.  :class:`~eventuali.event.Event` is configured to write them as the
  JavaScript constants instead, so that they are visible in the bytes, and
  :func:`check_payload` refuses them: what is stored stays standard JSON that any
  tool (``jq``, PostgreSQL ``jsonb``, a browser) reads.  A class that wants to
  keep such values sets ``ser_json_inf_nan="strings"`` in its ``model_config``:
  they are then stored as the strings ``"NaN"``/``"Infinity"``, which pydantic
  reads back as floats.
* **JSON nested deeper than** :data:`MAX_JSON_DEPTH` levels.  pydantic's parser
  stops at 200 levels; the limit leaves room below it for the envelopes that
  carry an event's JSON inside another document (exports, relays).

Both checks cost two ``bytes`` scans per event in C; only a payload that might
break a rule (it contains ``NaN``/``Infinity``, or more than
``MAX_JSON_DEPTH`` brackets) gets the exact, slower look that names the field.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from .errors import SerializationError

MAX_JSON_DEPTH = 128
"""Deepest nesting of JSON objects/arrays an event may have, the event object counting as 1.

The one limit: enforced when an event is saved, and documented in docs/limits.md.
Below pydantic's parser limit (200), so whatever is written can be read.
"""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class _NonFinite(Exception):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(name)


def json_depth(payload: bytes) -> int:
    """How deeply the objects/arrays of a JSON document nest (``{}`` = 1, a scalar = 0)."""
    brackets = _STRING.sub(b"", payload).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _describe(event: Any) -> str:
    d = event.__dict__
    return (
        f"event {type(event).__name__} (type {d.get('event_type')!r}, aggregate "
        f"{d.get('aggregate_id')!r}, version {d.get('aggregate_version')})"
    )


def _field_path(value: Any, test: Any, path: str) -> str | None:
    """The first path (``field[3].key``) below ``value`` whose value passes ``test``."""
    if test(value):
        return path
    if isinstance(value, dict):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for sub, v in items:
        found = _field_path(v, test, sub)
        if found is not None:
            return found
    return None


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def check_payload(event: Any, payload: bytes) -> None:
    """Refuse, with ``SerializationError``, a payload that could not be read back.

    ``payload`` is the event's JSON as :class:`~eventuali.serialization.EventCodec`
    wrote it.  The error names the event, the field and the fix.
    """
    if b"NaN" in payload or b"Infinity" in payload:
        try:  # parse_constant sees only real NaN/Infinity tokens, never text inside strings
            json.loads(payload, parse_constant=_refuse_constant)
        except _NonFinite as exc:
            data = json.loads(payload)
            where = _field_path(
                data, lambda v: isinstance(v, float) and not math.isfinite(v), ""
            ) or "one of its fields"
            raise SerializationError(
                f"{_describe(event)}: field {where} is {exc.args[0]}, which JSON cannot hold, so the "
                "event would never load again; it is not saved. Store None (a float | None field) "
                "for a missing value, or set model_config = ConfigDict(ser_json_inf_nan='strings') "
                "on the event class to store NaN/Infinity as strings that load back as floats"
            ) from None
    if payload.count(b"{") + payload.count(b"[") > MAX_JSON_DEPTH:
        depth = json_depth(payload)
        if depth > MAX_JSON_DEPTH:
            data = json.loads(payload)
            deepest = max(data, key=lambda k: _depth(data[k])) if isinstance(data, dict) else "?"
            raise SerializationError(
                f"{_describe(event)}: its JSON nests {depth} levels deep (field {deepest!r} is the "
                f"deepest); the limit is eventuali.payload_limits.MAX_JSON_DEPTH = {MAX_JSON_DEPTH} "
                "levels, the event object counting as 1 (see docs/limits.md), so it is not saved. "
                "Flatten the field, or store the nested part as a JSON string"
            )
