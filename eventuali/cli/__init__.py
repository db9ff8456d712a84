"""The ``eventuali`` command: one module per command group, registered in :data:`COMMANDS`.

Each module named in :data:`COMMANDS` has ``register(subparsers)``, which adds
its sub-commands and sets ``run=handler`` on each; a handler takes the parsed
arguments and a rich ``Console`` and returns the exit status.  Adding a
command group is one line here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from rich.console import Console
from rich.markup import escape

from ..errors import EventualiError

COMMANDS = [
    "eventuali.cli.basic",  # backends, demo, info
    "eventuali.cli.browse",  # streams, events, tail
    "eventuali.cli.transfer",  # export, import, copy
    "eventuali.cli.verify",  # verify
    "eventuali.cli.projections",  # projections
    "eventuali.cli.serve",  # serve (the web console)
    "eventuali.relay.cli",  # relay (to NATS JetStream)
]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eventuali", description="eventuali command line")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Messages and tables go to stderr/stdout through rich; --json output is
    # written to stdout directly, one object a line, so scripts can pipe it.
    console = Console()
    err = Console(stderr=True)
    try:
        return int(args.run(args, console))
    except EventualiError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    except BrokenPipeError:
        # the reader (head, grep -m) has what it wanted; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
