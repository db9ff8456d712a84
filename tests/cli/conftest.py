"""Fixtures for the command-line tests: a fresh store on every installed (engine, storage) pair."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventuali.cli import main
from eventuali.demo import Account
from eventuali.store import SyncEventStore
from eventuali.testing.targets import Target, installed_targets
from eventuali.testing.urls import url_factories

# sqlite://:memory: is private to one open store, so no command can look at it.
TARGETS = [t for t in installed_targets()[0] if t.scheme in ("memory", "sqlite", "postgresql")]


def provision(scheme: str, tmp_path: Path) -> Iterator[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    yield from url_factories()[scheme].provision(tmp_path)


@pytest.fixture(params=TARGETS, ids=str)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(url, backend name) of a new, empty store."""
    t: Target = request.param
    yield from ((url, t.backend) for url in provision(t.scheme, tmp_path / "src"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/other-{uuid.uuid4().hex[:6]}.db"


@pytest.fixture
def pg_target(tmp_path: Path) -> Iterator[str]:
    yield from provision("postgresql", tmp_path / "pg")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command in this process; (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def seed(url: str, backend: str, accounts: int = 3, deposits: int = 3, prefix: str = "acc-"
         ) -> list[str]:
    """Accounts with an open event and ``deposits`` deposits each; returns their ids."""
    ids = []
    with SyncEventStore.create(url, backend=backend) as store:
        for i in range(accounts):
            acc = Account(id=f"{prefix}{i}")
            acc.open(owner=f"owner {i}")
            for j in range(deposits):
                acc.deposit(10.0 + j, description=f"deposit {j}")
            store.save(acc)
            ids.append(acc.id)
    return ids
