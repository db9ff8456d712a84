"""``eventuali export``, ``import`` and ``copy``: back a store up, restore it, move it."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import IO

from rich.console import Console
from rich.markup import escape

from ..errors import ConfigurationError
from ..inspection import transfer
from ..inspection.catalog import open_catalog
from ._common import add_json, add_store, open_store, print_json, progress


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    store = open_store(args.url, args.backend)
    catalog = open_catalog(store.backend, store.url)
    out = open(args.output, "w", encoding="utf-8") if args.output != "-" else sys.stdout
    try:
        with progress("exporting", store.head() or None) as advance:
            digest = transfer.export(store.backend, catalog, out,
                                     snapshots=not args.no_snapshots,
                                     checkpoints=not args.no_checkpoints,
                                     checkpoint_names=args.checkpoint, progress=advance)
    finally:
        if out is not sys.stdout:
            out.close()
        catalog.close()
        store.close()
    err = Console(stderr=True)
    if not catalog.lists_all_checkpoints and not args.no_checkpoints:
        err.print("[yellow]note:[/yellow] this store's engine cannot list checkpoint names; "
                  "exported those of projections found in the store and those named with "
                  "--checkpoint")
    err.print(f"exported {digest.count} events, digest {digest.hexdigest()}"
                               + (f" to {escape(args.output)}" if args.output != "-" else ""))
    return 0


def cmd_import(args: argparse.Namespace, console: Console) -> int:
    if args.file != "-" and not os.path.isfile(args.file):
        raise ConfigurationError(f"no export file at {args.file!r}; give the path `eventuali "
                                 "export -o FILE` wrote")
    spool = None
    path = args.file
    if path == "-":
        # import reads its input twice (check, then write): keep stdin in a file
        spool = tempfile.NamedTemporaryFile("w+", encoding="utf-8", suffix=".jsonl")
        shutil.copyfileobj(sys.stdin, spool)
        spool.flush()
        path = spool.name
    store = open_store(args.url, args.backend, must_exist=False)
    files: list = []

    def open_lines() -> IO[str]:
        files.append(open(path, encoding="utf-8"))
        return files[-1]

    try:
        with progress("importing", None) as advance:
            result = transfer.import_export(store.backend, open_lines, merge=args.merge,
                                            progress=advance, batch=args.batch)
    finally:
        for f in files:
            f.close()
        if spool is not None:
            spool.close()
        store.close()
    if args.json:
        print_json(result)
    else:
        console.print(f"imported {result['events']} events (skipped {result['skipped']} already "
                      f"there), {result['snapshots']} snapshots, {result['checkpoints']} "
                      f"checkpoints; digest {result['digest']}")
    return 0


def cmd_copy(args: argparse.Namespace, console: Console) -> int:
    src = open_store(args.src, args.backend)
    dst = open_store(args.dst, args.dst_backend, must_exist=False)
    catalog = open_catalog(src.backend, src.url)
    err = Console(stderr=True)
    try:
        head = src.head()
        done = dst.backend.get_checkpoint(transfer.COPY_CHECKPOINT) or 0
        t0 = time.perf_counter()
        with progress("copying events", max(head - done, 0) or None) as advance:
            result = transfer.copy(src.backend, catalog, dst.backend, batch=args.batch,
                                   progress=advance)
        elapsed = time.perf_counter() - t0
        if done:
            err.print(f"resumed after source position {done}")
        names = catalog.checkpoint_names(args.checkpoint)
        cps = [(n, p) for n in sorted(names)
               if n != transfer.COPY_CHECKPOINT and (p := src.backend.get_checkpoint(n)) is not None]
        with progress("verifying", head or None) as advance:
            check = transfer.compare(src.backend, dst.backend, cps, progress=advance)
        for name, pos in check["checkpoints"].items():
            dst.backend.set_checkpoint(name, pos)
    finally:
        catalog.close()
        src.close()
        dst.close()
    ok = (check["source_events"] == check["target_events"]
          and check["source_digest"] == check["target_digest"])
    rate = result["events"] / elapsed if elapsed > 0 else 0.0
    summary = {**result, "seconds": round(elapsed, 3), "events_per_second": round(rate),
               "source_head": head, **check, "verified": ok}
    if args.json:
        print_json(summary)
    elif ok:
        console.print(f"[green]copied[/green] {result['events']} events in {elapsed:.1f} s "
                      f"({rate:,.0f} events/s), {result['snapshots']} snapshots, "
                      f"{len(check['checkpoints'])} checkpoints; verified: "
                      f"{check['target_events']} events, digest {check['target_digest']}")
    if not ok:
        err.print(f"[red]verification failed[/red]: source {check['source_events']} events "
                  f"(digest {check['source_digest']}), target {check['target_events']} events "
                  f"(digest {check['target_digest']}); first difference at source position "
                  f"{check['first_difference']}")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write the whole store as JSON lines (see docs/cli.md)")
    add_store(p)
    p.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    p.add_argument("--no-snapshots", action="store_true", help="leave snapshots out")
    p.add_argument("--no-checkpoints", action="store_true", help="leave checkpoints out")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME",
                   help="also export this checkpoint (for engines that cannot list them)")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("import", help="load an export into a store (empty, unless --merge)")
    add_store(p)
    p.add_argument("file", help="export file ('-' for stdin)")
    p.add_argument("--merge", choices=transfer.MERGE_POLICIES, default="refuse",
                   help="refuse (default): the target must be empty; skip-existing: add only "
                        "the events the target lacks (the same event at the same version)")
    p.add_argument("--batch", type=int, default=transfer.BATCH, help="events per append")
    add_json(p)
    p.set_defaults(run=cmd_import)

    p = sub.add_parser("copy", help="copy a store to another (any engine/storage), resumable")
    add_store(p, "src")
    p.add_argument("dst", help="target store URL (empty, or a copy in progress)")
    p.add_argument("--dst-backend", default=None, help="engine for the target")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME",
                   help="also copy this checkpoint (for engines that cannot list them)")
    p.add_argument("--batch", type=int, default=transfer.BATCH, help="events per append")
    add_json(p)
    p.set_defaults(run=cmd_copy)
