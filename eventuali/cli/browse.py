"""``eventuali streams``, ``events`` and ``tail``: look at what a store holds, and follow it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..errors import InvalidInputError
from ..inspection.catalog import open_catalog
from ..inspection.records import follow, iso, iter_records, record_view
from ..records import ReadFilter, Record
from ._common import add_decoding, add_json, add_store, codec_for, emit, open_store, print_json

_EVENT_COLUMNS = [("position", "pos"), ("stream_id", "stream"), ("version", "v"),
                  ("event_type", "type"), ("timestamp", "timestamp"), ("data", "data")]


def _positive(name: str, value: int | None, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise InvalidInputError(f"{name} {value} is invalid; give a whole number >= {minimum}")


def cmd_streams(args: argparse.Namespace, console: Console) -> int:
    _positive("--limit", args.limit)
    store = open_store(args.url, args.backend)
    catalog = open_catalog(store.backend, store.url)
    try:
        rows = [
            {**s.to_dict(), "first_timestamp": iso(s.first_timestamp),
             "last_timestamp": iso(s.last_timestamp)}
            for s in catalog.streams(args.type, args.prefix, args.limit)
        ]
    finally:
        catalog.close()
        store.close()
    emit(console, args, rows,
         [("stream_id", "stream"), ("stream_type", "type"), ("version", "version"),
          ("events", "events"), ("first_timestamp", "first"), ("last_timestamp", "last"),
          ("tenant", "tenant")],
         f"{len(rows)} streams")
    return 0


def _view_rows(view: dict[str, Any]) -> dict[str, Any]:
    # The table's data column shows whatever the record holds: decoded JSON or
    # base64 with the reason it did not decode - never nothing.
    if "data" not in view:
        view = {**view, "data": f"(undecoded: {view['undecoded']}) {view['payload_b64']}"}
    return view


def cmd_events(args: argparse.Namespace, console: Console) -> int:
    _positive("--from-version", args.from_version)
    codec = codec_for(args)
    store = open_store(args.url, args.backend, codec)
    try:
        views = [record_view(r, codec)
                 for r in store.backend.read_stream(args.stream, args.from_version)]
    finally:
        store.close()
    if not views and not args.json:
        console.print(f"stream {escape(args.stream)!r} has no events"
                      + (f" from version {args.from_version}" if args.from_version > 1 else ""))
        return 0
    if args.json:
        emit(console, args, views, [], "")
        return 0
    for v in views:
        header = (f"[bold]#{v['version']}[/bold] {escape(v['event_type'])} "
                  f"(position {v['position']}, {escape(v['timestamp'])}, id {v['event_id']}"
                  + (f", decoded as {escape(v['decoded_as'])}" if "decoded_as" in v else "") + ")")
        console.print(header)
        if v.get("metadata"):
            console.print("  metadata: " + escape(json.dumps(v["metadata"], ensure_ascii=False)))
        body = (json.dumps(v["data"], indent=2, ensure_ascii=False) if "data" in v
                else f"(undecoded: {v['undecoded']})\n{v['payload_b64']}")
        console.print(escape(body), highlight=False)
    return 0


def cmd_tail(args: argparse.Namespace, console: Console) -> int:
    _positive("--from", args.from_position)
    codec = codec_for(args)
    store = open_store(args.url, args.backend, codec)
    flt = ReadFilter(event_types=frozenset(args.type)) if args.type else None
    backend = store.backend
    records: Iterator[Record]
    try:
        if args.follow:
            start = args.from_position or backend.head() + 1
            records = (r for r in follow(backend, start, flt) if r is not None)
        else:
            records = iter_records(backend, args.from_position or 1, flt)
        for r in records:
            v = _view_rows(record_view(r, codec))
            if args.json:
                print_json(v)
            else:
                console.print(
                    f"{v['position']:>8} {escape(v['timestamp'])} {escape(v['stream_id'])} "
                    f"v{v['version']} [bold]{escape(v['event_type'])}[/bold] "
                    + escape(json.dumps(v["data"], ensure_ascii=False)
                             if not isinstance(v["data"], str) else v["data"]),
                    highlight=False, soft_wrap=True)
    finally:
        store.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("streams", help="list streams: id, type, version, first/last timestamps")
    add_store(p)
    p.add_argument("--type", default=None, help="only streams of this aggregate type")
    p.add_argument("--prefix", default=None, help="only stream ids starting with this")
    p.add_argument("--limit", type=int, default=None, help="at most N streams (by id)")
    add_json(p)
    p.set_defaults(run=cmd_streams)

    p = sub.add_parser("events", help="one stream's events, decoded where the classes import")
    add_store(p)
    p.add_argument("stream", help="stream (aggregate) id")
    p.add_argument("--from-version", type=int, default=1)
    add_decoding(p)
    add_json(p)
    p.set_defaults(run=cmd_events)

    p = sub.add_parser("tail", help="the global feed; --follow waits for new events")
    add_store(p)
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing events as they commit (Ctrl-C to stop)")
    p.add_argument("--type", action="append", default=[],
                   help="only events of this type (repeatable)")
    p.add_argument("--from", dest="from_position", type=int, default=None, metavar="POSITION",
                   help="start at this global position (default: 1, or the head with --follow)")
    add_decoding(p)
    add_json(p)
    p.set_defaults(run=cmd_tail)
