"""What every conformance test stands on: record builders and the store fixtures.

:class:`BackendFixtures` gives a test its store: ``eventuali_target`` (which
backend, which scheme) -> ``store_url`` (a new, empty store) -> ``open_store``
(every handle the test opens, closed after it) -> ``backend`` (the first one).

Reopening is real: :meth:`StoreHandles.reopen` closes *every* handle the test
opened (the capability probe included) before it opens the store again, so an
engine that shares state between handles open at the same time in one process
must, once the last handle is closed, read its storage afresh on the next open.
Each test runs with the working directory set to a directory of its own, so an
engine that writes relative paths leaves nothing behind.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from eventuali.protocol import Backend
from eventuali.records import ANY, NewRecord, ReadFilter, Record, StreamWrite

# Not "from eventuali import registry": the package exports the event-class registry
# under that name; the module is only reliably reached by its full name.
from eventuali.registry import load as load_backend
from eventuali.url import parse_url

from .marks import missing_capabilities
from .targets import Target
from .urls import url_factory

# --- building blocks ---------------------------------------------------------------


def new_id() -> bytes:
    return uuid.uuid4().bytes


def new_record(
    event_type: str = "Happened",
    payload: bytes = b'{"n":1}',
    metadata: bytes = b'{"correlation_id":"c-1"}',
    schema_version: int = 1,
    timestamp: int = 1_700_000_000_000_000,
    event_id: bytes | None = None,
) -> NewRecord:
    return NewRecord(event_id or new_id(), event_type, schema_version, timestamp, metadata, payload)


def records(n: int, event_type: str = "Happened") -> list[NewRecord]:
    return [new_record(event_type, payload=b'{"i":%d}' % i) for i in range(n)]


def write(
    stream_id: str,
    expected: int,
    recs: list[NewRecord] | int = 1,
    stream_type: str = "Thing",
    tenant: str = "",
) -> StreamWrite:
    if isinstance(recs, int):
        recs = records(recs)
    return StreamWrite(stream_id, stream_type, expected, recs, tenant)


def read_everything(backend: Backend, page: int = 1000, filter: ReadFilter | None = None) -> list[Record]:
    """Page through read_all the way a subscriber does (from = last + 1)."""
    out: list[Record] = []
    position = 1
    while True:
        batch = backend.read_all(position, page, filter)
        if not batch:
            return out
        out.extend(batch)
        position = batch[-1].position + 1


def vector(name: str) -> Any:
    """A golden vector from ``eventuali/testing/vectors/NAME.json``."""
    text = resources.files("eventuali.testing").joinpath(f"vectors/{name}.json").read_text("utf-8")
    return json.loads(text)



def append_later(backend_name: str, url: str, delay: float) -> None:
    """Child process body: append one event to stream ``late`` after ``delay`` seconds."""
    time.sleep(delay)
    backend = load_backend(backend_name).open(parse_url(url))
    try:
        backend.append([write("late", ANY, 1)])
    finally:
        backend.close()




def new_record_from_json(r: dict) -> NewRecord:
    return NewRecord(bytes.fromhex(r["event_id"]), r["event_type"], r["schema_version"],
                     r["timestamp"], bytes.fromhex(r["metadata"]), bytes.fromhex(r["payload"]))


def record_to_json(r: Record) -> dict:
    d = r._asdict()
    for key in ("event_id", "metadata", "payload"):
        d[key] = d[key].hex()
    return d


def record_from_json(d: dict) -> Record:
    d = dict(d)
    for key in ("event_id", "metadata", "payload"):
        d[key] = bytes.fromhex(d[key])
    return Record(**d)



# --- fixtures ----------------------------------------------------------------------


class StoreHandles:
    """Every handle a test opened on its store.  Call it to open one more."""

    def __init__(self, open_one: Callable[[], Backend]) -> None:
        self._open_one = open_one
        self.opened: list[Backend] = []

    def __call__(self) -> Backend:
        backend = self._open_one()
        self.opened.append(backend)
        return backend

    def close_all(self) -> None:
        """Close every handle opened so far (``close()`` is idempotent)."""
        for backend in self.opened:
            backend.close()

    def reopen(self) -> Backend:
        """Close every handle this test opened, then open the store anew.

        Nothing of the engine stays open in between, so what the new handle sees
        is what the engine stored, not what an open handle still holds in memory.
        """
        self.close_all()
        return self()


class BackendFixtures:
    """How the tests get a store: ``eventuali_target`` -> ``store_url`` -> ``backend``."""

    def make_backend(self, target: Target, url: str) -> Backend:
        """Open the store at ``url``; override to open an engine without the registry."""
        return load_backend(target.backend).open(parse_url(url))

    @pytest.fixture(autouse=True)
    def _own_working_directory(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Run in a directory of the test's own: relative paths an engine writes vanish with it."""
        cwd = tmp_path / "cwd"
        cwd.mkdir(exist_ok=True)
        monkeypatch.chdir(cwd)

    @pytest.fixture
    def store_url(self, eventuali_target: Target, tmp_path: Path) -> Iterator[str]:
        """The URL of a new, empty store (the same URL for every open in one test)."""
        if eventuali_target.url is not None:
            yield eventuali_target.url.format(tmp_path=tmp_path, unique=uuid.uuid4().hex)
            return
        yield from url_factory(eventuali_target.scheme).provision(tmp_path)

    @pytest.fixture
    def open_store(self, eventuali_target: Target, store_url: str) -> Iterator[StoreHandles]:
        """Open the test's store (again); every store opened is closed after the test."""
        handles = StoreHandles(lambda: self.make_backend(eventuali_target, store_url))
        yield handles
        handles.close_all()

    @pytest.fixture
    def backend(self, open_store: StoreHandles) -> Backend:
        return open_store()

    @pytest.fixture(autouse=True)
    def _capabilities(self, request: pytest.FixtureRequest, eventuali_target: Target) -> None:
        """Skip, with the reason, a test whose ``requires`` the backend does not declare.

        The probe is a handle of its own, closed at once: no handle outlives the
        probe, so a reopen in the test really reopens the engine.
        """
        if not any(request.node.iter_markers("requires")):
            return
        probe = request.getfixturevalue("open_store")()
        try:
            declared = probe.capabilities
        finally:
            probe.close()
        missing = missing_capabilities(request.node, declared)
        if missing:
            pytest.skip(
                f"backend {eventuali_target.backend!r} on {eventuali_target.scheme!r} does not "
                f"declare capability {', '.join(missing)}"
            )

    def opened_through_the_registry(self) -> bool:
        """True unless a subclass overrides :meth:`make_backend` (child processes need the registry)."""
        return type(self).make_backend is BackendFixtures.make_backend
