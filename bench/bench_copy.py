"""``eventuali copy`` throughput: a SQLite store of demo accounts copied to PostgreSQL.

Builds the source (``--accounts`` x ``--events`` demo events, saved one
aggregate at a time), then runs the ``copy`` command in this process into a
fresh PostgreSQL schema and prints its own summary (events/s of the copy
phase; the verification pass - digests of both stores in lockstep - is timed
separately).  One run, one number: on a shared machine compare runs taken side
by side.

Usage: ``python bench/bench_copy.py --postgres postgresql://postgres@127.0.0.1:5432/test
[--accounts 10000] [--events 100] [--batch 2000] [--backend python]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from eventuali.cli import main
from eventuali.demo import Account
from eventuali.store import SyncEventStore


def build(url: str, accounts: int, events: int) -> float:
    t0 = time.perf_counter()
    with SyncEventStore.create(url) as store:
        for i in range(accounts):
            acc = Account(id=f"acc-{i:07d}")
            acc.open(owner=f"owner {i}")
            for j in range(events - 1):
                acc.deposit(10.0 + j % 7, description=f"transaction {j}")
            store.save(acc)
    return time.perf_counter() - t0


def main_() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--postgres", required=True)
    p.add_argument("--accounts", type=int, default=10_000)
    p.add_argument("--events", type=int, default=100)
    p.add_argument("--batch", type=int, default=2_000)
    p.add_argument("--backend", default=None, help="engine for both stores")
    args = p.parse_args()
    schema = f"bench_copy_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        src = f"sqlite://{Path(tmp) / 'source.db'}"
        built = build(src, args.accounts, args.events)
        print(json.dumps({"built_events": args.accounts * args.events, "build_seconds": round(built, 1)}))
        dst = f"{args.postgres.split('?')[0]}?schema={schema}"
        argv = ["copy", src, dst, "--batch", str(args.batch), "--json"]
        if args.backend:
            argv += ["--backend", args.backend, "--dst-backend", args.backend]
        t0 = time.perf_counter()
        code = main(argv)
        print(json.dumps({"exit": code, "copy_and_verify_seconds": round(time.perf_counter() - t0, 1)}))
    with psycopg.connect(args.postgres.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main_()
