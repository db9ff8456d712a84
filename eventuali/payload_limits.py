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

Most event classes cannot break either rule, and cost nothing: once per class,
:func:`_plan` reads the class's pydantic schema and tells whether a field can
hold a float at all, and how deep its JSON can nest (a class of strings, ints,
datetimes and lists of them has a fixed, small depth).  Only classes that may
break a rule (``float``, ``Any``, recursive or unknown types) get the byte
scans, two per rule in C; only a payload that might break a rule (it contains
``NaN``/``Infinity``, or more than ``MAX_JSON_DEPTH`` brackets) gets the exact,
slower look that names the field.
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


def _field_path(value: Any, test: Any, path: str) -> tuple[str, Any] | None:
    """The first (path, value) below ``value`` (path like ``field[3].key``) that passes ``test``."""
    if test(value):
        return path, value
    if isinstance(value, dict):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
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


_UNBOUNDED = 1 << 30
_INF = math.inf
# What a class's floats look like in its JSON: none at all; written as NaN/Infinity
# (constants, or strings) so that a byte scan finds them; or written as null by a
# model with pydantic's default ser_json_inf_nan="null" (a nested plain BaseModel),
# where only the event's values tell.
NO_FLOATS, VISIBLE, HIDDEN = 0, 1, 2
# Schema types whose JSON is a scalar that is never a float.
_SCALARS = frozenset({"str", "int", "bool", "uuid", "datetime", "date", "time", "timedelta",
                      "none", "bytes", "decimal", "url", "multi-host-url"})
_WRAPPERS = frozenset({"nullable", "default", "function-after", "function-before",
                       "function-wrap", "model-field", "dataclass-field", "typed-dict-field"})
_ITEMS = frozenset({"list", "set", "frozenset", "generator"})
_plans: dict[type, tuple[tuple[str, ...], int, int]] = {}


def _floats(mode: str) -> int:
    return VISIBLE if mode in ("constants", "strings") else HIDDEN


def _walk(schema: Any, defs: dict[str, Any], stack: tuple[str, ...], mode: str) -> tuple[int, int]:
    """(how its floats show, deepest JSON nesting) of a pydantic-core schema; unknown = worst."""
    kind = schema.get("type")
    unknown = (_floats(mode), _UNBOUNDED)
    if schema.get("serialization") is not None:
        return unknown  # a custom serializer may write anything
    if kind in _SCALARS:
        return NO_FLOATS, 0
    if kind == "float":
        return _floats(mode), 0
    if kind in ("literal", "enum"):
        values = [getattr(v, "value", v) for v in
                  (schema.get("expected") or schema.get("members") or [])]
        if not all(isinstance(v, (str, int, float, bool, type(None))) for v in values):
            return unknown
        return (_floats(mode) if any(isinstance(v, float) for v in values) else NO_FLOATS), 0
    if kind in _WRAPPERS:
        return _walk(schema["schema"], defs, stack, mode)
    if kind == "definitions":
        defs = {**defs, **{d["ref"]: d for d in schema["definitions"]}}
        return _walk(schema["schema"], defs, stack, mode)
    if kind == "definition-ref":
        ref = schema["schema_ref"]
        if ref in stack or ref not in defs:
            return unknown  # recursive: no fixed depth
        return _walk(defs[ref], defs, (*stack, ref), mode)
    if kind in _ITEMS or kind == "dict":
        key = "values_schema" if kind == "dict" else "items_schema"
        floats, depth = _walk(schema.get(key) or {"type": "any"}, defs, stack, mode)
        return floats, depth + 1
    if kind == "tuple":
        parts = [_walk(s, defs, stack, mode) for s in schema.get("items_schema", [])]
        return max((f for f, _ in parts), default=NO_FLOATS), 1 + max((d for _, d in parts),
                                                                      default=0)
    if kind in ("union", "tagged-union"):
        choices = schema["choices"]
        choices = choices.values() if isinstance(choices, dict) else choices
        parts = [_walk(c[0] if isinstance(c, tuple) else c, defs, stack, mode) for c in choices]
        return max((f for f, _ in parts), default=NO_FLOATS), max((d for _, d in parts), default=0)
    if kind in ("model", "dataclass"):
        config = schema.get("config") or {}
        mode = config.get("ser_json_inf_nan", "null")  # each model writes its own floats
        if config.get("extra_fields_behavior") == "allow":
            return _floats(mode), _UNBOUNDED
        ref = schema.get("ref")
        return _walk(schema["schema"], defs, (*stack, ref) if ref else stack, mode)
    if kind in ("model-fields", "typed-dict", "dataclass-args"):
        if schema.get("computed_fields") or schema.get("extras_schema"):
            return unknown
        fields = schema["fields"]
        parts = [_walk(f, defs, stack, mode)
                 for f in (fields.values() if isinstance(fields, dict) else fields)]
        return max((f for f, _ in parts), default=NO_FLOATS), 1 + max((d for _, d in parts),
                                                                      default=0)
    return unknown  # any, custom types, ...: assume the worst


def _unwrap(schema: Any) -> Any:
    while schema.get("type") in ("nullable", "default", "model-field") and not schema.get(
        "serialization"
    ):
        schema = schema["schema"]
    return schema


def _plan(cls: type) -> tuple[tuple[str, ...], int, int]:
    """Per class, once: (its own float fields, how other floats show, deepest nesting).

    The event's own ``float`` fields (the common case) are checked by value, a
    few dict lookups; only floats inside containers or nested models need the
    payload scanned (or, where a nested model writes them as null, its values).
    """
    plan = _plans.get(cls)
    if plan is None:
        try:
            schema = cls.__pydantic_core_schema__  # type: ignore[attr-defined]
            defs = {d["ref"]: d for d in schema.get("definitions", ())}
            model = schema["schema"] if schema["type"] == "definitions" else schema
            fields = model["schema"]["fields"]
            strings = (model.get("config") or {}).get("ser_json_inf_nan") == "strings"
            own = () if strings else tuple(  # "strings" round-trips: nothing to refuse
                name for name, f in fields.items()
                if _unwrap(f).get("type") == "float" and not _unwrap(f).get("serialization")
            )
            others = {k: v for k, v in fields.items() if k not in own}
            floats, depth = _walk(
                {**model, "schema": {**model["schema"], "fields": others}}, defs, (), "null"
            )
            plan = (own, floats, depth)
        except (KeyError, TypeError, AttributeError):  # a schema shape this walk does not know
            plan = ((), HIDDEN, _UNBOUNDED)
        _plans[cls] = plan
    return plan


def _is_non_finite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _refuse_non_finite(event: Any, where: str, shown: str) -> SerializationError:
    return SerializationError(
        f"{_describe(event)}: field {where} is {shown}, which JSON cannot hold, so the "
        "event would never load again; it is not saved. Store None (a float | None field) "
        "for a missing value, or set model_config = ConfigDict(ser_json_inf_nan='strings') "
        "on the event class (and on nested models) to store NaN/Infinity as strings that "
        "load back as floats"
    )


def check_payload(event: Any, payload: bytes) -> None:
    """Refuse, with ``SerializationError``, a payload that could not be read back.

    ``payload`` is the event's JSON as :class:`~eventuali.serialization.EventCodec`
    wrote it.  The error names the event, the field and the fix.
    """
    own, floats, depth = _plan(type(event))
    if own:
        d = event.__dict__
        for name in own:
            v = d[name]
            if v is not None and (v != v or v == _INF or v == -_INF):
                raise _refuse_non_finite(event, name, "NaN" if v != v else (
                    "Infinity" if v > 0 else "-Infinity"))
    if floats == VISIBLE and (b"NaN" in payload or b"Infinity" in payload):
        try:  # parse_constant sees only real NaN/Infinity tokens, never text inside strings
            json.loads(payload, parse_constant=_refuse_constant)
        except _NonFinite as exc:
            found = _field_path(json.loads(payload), _is_non_finite, "")
            where = found[0] if found else "one of its fields"
            raise _refuse_non_finite(event, where, exc.args[0]) from None
    elif floats == HIDDEN:
        # A model on the way writes non-finite floats as null: only the values tell.
        found = _field_path(event.model_dump(), _is_non_finite, "")
        if found is not None:
            where, value = found
            shown = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
            raise _refuse_non_finite(event, where, shown)
    if depth > MAX_JSON_DEPTH and payload.count(b"{") + payload.count(b"[") > MAX_JSON_DEPTH:
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
