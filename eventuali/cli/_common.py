"""What every store command shares: the URL arguments, opening a store, output and progress."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..errors import ConfigurationError
from ..inspection.records import reading_codec
from ..serialization import EventCodec
from ..store import SyncEventStore
from ..url import parse_url, sqlite_options


def add_store(p: argparse.ArgumentParser, name: str = "url", backend: str = "--backend") -> None:
    p.add_argument(name, help="store URL: sqlite://file.db, postgresql://user@host/db, memory://")
    p.add_argument(backend, default=None, dest=backend.lstrip("-").replace("-", "_"),
                   help="engine name, e.g. python or c (default: EVENTUALI_BACKEND or auto)")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print one JSON object a line (for scripts) instead of a table")


def add_decoding(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first, so its event classes decode payloads (repeatable)")
    p.add_argument("--keys-env", default=None, metavar="VAR",
                   help="environment variable holding the encryption keys (KeyManager.from_env)")


def codec_for(args: argparse.Namespace) -> EventCodec:
    """Import the modules that define event classes, then build a codec that reads everything."""
    for name in getattr(args, "imports", []):
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to the user
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(
                f"--import {name}: cannot import it ({exc}); give a module importable from "
                "the current directory or the environment, e.g. --import myapp.events"
            ) from exc
        finally:
            sys.path.remove(os.getcwd())
    return reading_codec(getattr(args, "keys_env", None))


def open_store(url: str, backend: str | None, codec: EventCodec | None = None,
               must_exist: bool = True) -> SyncEventStore:
    """Open the store; a SQLite file that does not exist is an error, not a new store."""
    parsed = parse_url(url)
    if must_exist and parsed.scheme == "sqlite":
        path = sqlite_options(parsed).path
        if path != ":memory:" and not os.path.exists(path):
            raise ConfigurationError(
                f"no SQLite store at {path!r} (from {url!r}); check the path - this command "
                "reads an existing store and does not create one"
            )
    return SyncEventStore.create(url, backend=backend, codec=codec)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def emit(console: Console, args: argparse.Namespace, rows: Sequence[dict[str, Any]],
         columns: Sequence[tuple[str, str]], title: str) -> None:
    """Rows as a rich table, or as JSON lines under ``--json``."""
    if args.json:
        for row in rows:
            print_json(row)
        return
    table = Table(title=escape(title))
    for _, heading in columns:
        table.add_column(heading, overflow="fold")  # wrap long ids: never cut them
    for row in rows:
        table.add_row(*(escape(_cell(row.get(key))) for key, _ in columns))
    console.print(table)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (stdout stays clean for data); yields ``advance(n)``."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
