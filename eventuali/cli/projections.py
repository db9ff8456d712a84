"""``eventuali projections``: each checkpoint, its lag behind the head, parked records; reset."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape

from ..errors import InvalidInputError
from ..inspection.catalog import ScanCatalog, open_catalog, projections
from ..protocol import Backend
from ._common import add_json, add_store, emit, open_store


def cmd_projections(args: argparse.Namespace, console: Console) -> int:
    store = open_store(args.url, args.backend)
    catalog = open_catalog(store.backend, store.url)
    try:
        if args.reset is not None:
            return _reset(args, console, store.backend, catalog)
        rows = [p.__dict__ for p in projections(catalog, args.name)]
        emit(console, args, rows, [("name", "checkpoint"), ("position", "position"),
                                   ("lag", "lag"), ("parked", "parked")],
             f"head {store.head()}: {len(rows)} checkpoints")
    finally:
        catalog.close()
        store.close()
    return 0


def _reset(args: argparse.Namespace, console: Console, backend: Backend,
           catalog: ScanCatalog) -> int:
    name = args.reset
    if name not in catalog.checkpoint_names(args.name):
        raise InvalidInputError(f"no checkpoint named {name!r}; `eventuali projections URL` "
                                "lists the names")
    if backend.stream_version(f"$projection:{name}") > 0:
        raise InvalidInputError(
            f"{name!r} is a StoredProjection: its read model lives in the store next to the "
            "checkpoint, and resetting the checkpoint alone would replay every event on top of "
            "it; rebuild it from code with `await streamer.rebuild(projection)`"
        )
    if not args.yes:
        if not sys.stdin.isatty():
            raise InvalidInputError(f"--reset {name} needs confirmation: run it in a terminal "
                                    "or add --yes")
        answer = console.input(f"reset checkpoint {escape(name)!r} to 0, so the projection "
                               "rebuilds from the first event? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console.print("nothing changed")
            return 1
    backend.set_checkpoint(name, 0)
    console.print(f"checkpoint {escape(name)!r} reset to 0: the projection gets every event again "
                  "on its next start (clear its read model before that)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("projections", help="checkpoints, their lag and parked records; --reset")
    add_store(p)
    p.add_argument("--name", action="append", default=[],
                   help="also show this checkpoint (names are found in the store where it can "
                        "list them; see docs/cli.md)")
    p.add_argument("--reset", default=None, metavar="NAME",
                   help="set checkpoint NAME to 0 so its projection rebuilds (asks first)")
    p.add_argument("--yes", action="store_true", help="do not ask before --reset")
    add_json(p)
    p.set_defaults(run=cmd_projections)
