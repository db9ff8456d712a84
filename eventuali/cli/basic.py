"""``eventuali backends`` (what is installed and loads), ``demo`` and ``info``."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import registry
from ..errors import EventualiError
from ..inspection.records import iter_records
from ._common import add_store, open_store


def cmd_backends(args: argparse.Namespace, console: Console) -> int:
    """List registered backends, whether each loads, and the schemes it serves."""
    table = Table(title="eventuali backends (entry-point group eventuali.backends)")
    for col in ("name", "status", "schemes", "priority", "details"):
        table.add_column(col)
    infos = registry.describe_all()
    for info in infos:
        status = "[green]ok[/green]" if info.loads else "[red]cannot load[/red]"
        details = (
            ", ".join(f"{k}={v}" for k, v in info.details.items()) if info.loads else (info.error or "")
        )
        # escape(): details hold text like 'pip install "eventuali[postgresql]"',
        # which rich would otherwise read as a style tag and drop.
        table.add_row(
            info.name, status, ", ".join(sorted(info.schemes)), str(info.priority), escape(details)
        )
    console.print(table)
    chosen = {}
    for scheme in sorted({s for i in infos for s in i.schemes}):
        from ..url import parse_url

        try:
            chosen[scheme] = registry.choose(parse_url(f"{scheme}://x")).name
        except EventualiError as exc:
            chosen[scheme] = f"error: {exc}"
    console.print(
        f"{registry.ENV_VAR}={__import__('os').environ.get(registry.ENV_VAR, 'auto')}; serving: "
        + ", ".join(f"{s}:// -> {n}" for s, n in chosen.items())
    )
    return 0 if any(i.loads for i in infos) else 1


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    """Open accounts, record transactions, save, reload and check every balance."""
    from ..demo import Account
    from ..store import SyncEventStore

    n_acc, n_tx = args.accounts, args.transactions
    store = SyncEventStore.create(args.url, backend=args.backend)
    console.print(f"store: {escape(repr(store))}")
    prefix = f"demo-{int(time.time() * 1000)}-"
    expected = {}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as progress:
        t_save = 0.0
        task = progress.add_task("saving accounts", total=n_acc)
        for i in range(n_acc):
            acc = Account(id=f"{prefix}{i}")
            acc.open(owner=f"owner {i}")
            for j in range(n_tx - 1):
                acc.deposit(10.0 + (j % 7), description=f"transaction {j}")
            expected[acc.id] = acc.balance
            t0 = time.perf_counter()
            store.save(acc)
            t_save += time.perf_counter() - t0
            progress.advance(task)
        t_load = 0.0
        task = progress.add_task("loading and checking", total=n_acc)
        for aid, balance in expected.items():
            t0 = time.perf_counter()
            got = store.load(Account, aid)
            t_load += time.perf_counter() - t0
            if got is None or abs(got.balance - balance) > 1e-6 or got.version != n_tx:
                console.print(f"[red]mismatch for {escape(aid)}: {escape(repr(got))}[/red]")
                return 1
            progress.advance(task)
    total = n_acc * n_tx
    store.close()
    console.print(
        f"[green]ok[/green]: {n_acc} accounts x {n_tx} events = {total} events; "
        f"saved {total / t_save:,.0f} events/s, loaded {total / t_load:,.0f} events/s "
        f"(this run, this machine)"
    )
    return 0


def cmd_info(args: argparse.Namespace, console: Console) -> int:
    """Show what a store holds: head position, per-type counts (reads every record)."""
    store = open_store(args.url, args.backend)
    counts: dict[tuple[str, str], int] = {}
    n = 0
    for r in iter_records(store.backend):
        counts[(r.stream_type, r.event_type)] = counts.get((r.stream_type, r.event_type), 0) + 1
        n += 1
    table = Table(title=escape(f"{store!r}: head {store.head()}, {n} events"))
    table.add_column("aggregate type")
    table.add_column("event type")
    table.add_column("events", justify="right")
    for (st, et), c in sorted(counts.items()):
        table.add_row(escape(st), escape(et), str(c))
    console.print(table)
    store.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("backends", help="list installed backends, whether they load, their schemes"
                   ).set_defaults(run=cmd_backends)
    d = sub.add_parser("demo", help="run the demo workload (saves and reloads accounts)")
    d.add_argument("--url", default="sqlite://eventuali-demo.db", help="store URL (default: %(default)s)")
    d.add_argument("--backend", default=None, help="engine name (default: EVENTUALI_BACKEND or auto)")
    d.add_argument("--accounts", type=int, default=100)
    d.add_argument("--transactions", type=int, default=100, help="events per account")
    d.set_defaults(run=cmd_demo)
    i = sub.add_parser("info", help="summarize a store: head, events per aggregate and event type")
    add_store(i)
    i.set_defaults(run=cmd_info)
