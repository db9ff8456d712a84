"""The store's read filters: user arguments to a ``ReadFilter``, and which records a
reader of the store's events sees (the library's own bookkeeping left out)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .aggregate import Aggregate
from .errors import InvalidInputError
from .event import Event
from .projections import RESERVED_STREAM_TYPE
from .records import ReadFilter, Record


def read_filter(
    event_types: Iterable[str | type[Event]] | None,
    aggregate_types: Iterable[str | type[Aggregate]] | None,
    aggregate_id_prefix: str | None,
    tenant: str | None,
) -> ReadFilter | None:
    def names(items, attr):
        if items is None:
            return None
        if isinstance(items, (str, type)):
            items = [items]
        return frozenset(i if isinstance(i, str) else getattr(i, attr) for i in items)

    f = ReadFilter(
        event_types=names(event_types, "__event_type__"),
        stream_types=names(aggregate_types, "__aggregate_type__"),
        stream_id_prefix=aggregate_id_prefix,
        tenant=tenant,
    )
    return None if f.is_empty else f


def visible(records: list[Record], f: ReadFilter | None) -> list[Record]:
    """The records a reader of the store's events sees: the library's own bookkeeping
    (leases, projection change logs, key records: stream type ``$eventuali``) only when
    the filter asks for that stream type by name."""
    if f is not None and f.stream_types is not None and RESERVED_STREAM_TYPE in f.stream_types:
        return records
    for r in records:  # most pages hold none: keep the list as it is
        if r.stream_type == RESERVED_STREAM_TYPE:
            return [r for r in records if r.stream_type != RESERVED_STREAM_TYPE]
    return records


def short_page(got: list[Record], asked: int | None) -> bool:
    """True when a page ``read_all`` returned is the last one there is."""
    return asked is None or len(got) < asked


def stream_filter(filters: dict[str, Any]) -> ReadFilter | None:
    """The filter for ``stream_all(**filters)``; unknown keywords are refused by name."""
    unknown = set(filters) - {"event_types", "aggregate_types", "aggregate_id_prefix", "tenant"}
    if unknown:
        raise InvalidInputError(f"unknown filter(s) {sorted(unknown)} for stream_all()")
    return read_filter(filters.get("event_types"), filters.get("aggregate_types"),
                   filters.get("aggregate_id_prefix"), filters.get("tenant"))
