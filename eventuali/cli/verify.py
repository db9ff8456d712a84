"""``eventuali verify``: run the integrity checks over a store; exit 1 if any fails."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from ..inspection.verify import verify
from ._common import add_decoding, add_json, add_store, codec_for, emit, open_store, progress


def cmd_verify(args: argparse.Namespace, console: Console) -> int:
    codec = codec_for(args)
    anchor = None
    if args.anchor is not None:
        from ..integrity import Anchor

        anchor = Anchor.from_json(args.anchor.read())
    store = open_store(args.url, args.backend, codec)
    try:
        with progress("verifying", store.head() or None) as advance:
            problems = verify(store.backend, codec, progress=advance, anchor=anchor)
    finally:
        store.close()
    if args.json:
        emit(console, args, [p.to_dict() for p in problems], [], "")
    elif problems:
        emit(console, args, [p.to_dict() for p in problems],
             [("check", "check"), ("position", "position"), ("stream_id", "stream"),
              ("message", "problem")], f"{len(problems)} problems")
    else:
        console.print(f"[green]ok[/green]: {escape(args.url)} passed every check")
    return 1 if problems else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check versions, positions, payloads, snapshots and the hash chain")
    add_store(p)
    p.add_argument("--anchor", type=argparse.FileType("r"), metavar="FILE",
                   help="an anchor (eventuali.integrity.anchor(store).to_json()) the store's hash "
                        "chain must still hold: finds a removed tail or a rewritten history")
    add_decoding(p)
    add_json(p)
    p.set_defaults(run=cmd_verify)
