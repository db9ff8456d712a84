"""The conformance suite: the Backend protocol, written down as tests.

:class:`BackendContract` collects every test (the groups below can also be
used one by one).  The classes have no ``Test`` prefix, so pytest collects them
only where they are bound to a backend: subclass and supply the
``eventuali_target`` fixture (or rely on the ``--eventuali-backend`` /
``--eventuali-scheme`` options of :mod:`eventuali.testing.plugin`), or
override :meth:`BackendFixtures.make_backend` to open your engine yourself::

    class TestMyEngine(BackendContract):
        @pytest.fixture
        def eventuali_target(self):
            return Target(backend="mine", scheme="memory")

A test marked ``@requires("snapshots")`` is skipped, with the reason, when the
backend does not declare that capability.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from eventuali.errors import (
    DuplicateEventError,
    InvalidInputError,
    OptimisticConcurrencyError,
    StoreClosedError,
    StreamDeletedError,
)
from eventuali.protocol import Backend
from eventuali.records import (
    ANY,
    MAX_NAME_LENGTH,
    MAX_STREAM_ID_LENGTH,
    NO_STREAM,
    STREAM_EXISTS,
    NewRecord,
    ReadFilter,
    Record,
    Snapshot,
    StreamWrite,
)

# Not "from eventuali import registry": the package exports the event-class registry
# under that name; the module is only reliably reached by its full name.
from eventuali.registry import load as load_backend
from eventuali.url import parse_url

from .marks import missing_capabilities, requires
from .targets import Target
from .urls import SchemeUnavailable, url_factory

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


def _append_with_retries(backend_name: str, url: str, stream_ids: list[str], appends: int) -> tuple:
    """Child process / thread body: append ``appends`` events, one at a time, to the given
    streams in turn, re-reading the version after each conflict.  Returns (ids written,
    conflicts seen)."""
    backend = load_backend(backend_name).open(parse_url(url))
    written: list[bytes] = []
    conflicts = 0
    try:
        for i in range(appends):
            stream_id = stream_ids[i % len(stream_ids)]
            while True:
                version = backend.stream_version(stream_id)
                rec = new_record("Raced")
                try:
                    backend.append([write(stream_id, version, [rec])])
                except OptimisticConcurrencyError as exc:
                    assert exc.stream_id == stream_id and exc.expected == version
                    assert exc.actual > version
                    conflicts += 1
                    continue
                written.append(rec.event_id)
                break
    finally:
        backend.close()
    return written, conflicts


def _append_later(backend_name: str, url: str, delay: float) -> None:
    """Child process body: append one event to stream ``late`` after ``delay`` seconds."""
    time.sleep(delay)
    backend = load_backend(backend_name).open(parse_url(url))
    try:
        backend.append([write("late", ANY, 1)])
    finally:
        backend.close()


# --- fixtures ----------------------------------------------------------------------


class BackendFixtures:
    """How the tests get a store: ``eventuali_target`` -> ``store_url`` -> ``backend``."""

    def make_backend(self, target: Target, url: str) -> Backend:
        """Open the store at ``url``; override to open an engine without the registry."""
        return load_backend(target.backend).open(parse_url(url))

    @pytest.fixture
    def store_url(self, eventuali_target: Target, tmp_path: Path) -> Iterator[str]:
        """The URL of a new, empty store (the same URL for every open in one test)."""
        if eventuali_target.url is not None:
            yield eventuali_target.url.format(tmp_path=tmp_path, unique=uuid.uuid4().hex)
            return
        factory = url_factory(eventuali_target.scheme)
        try:
            with factory.url(tmp_path) as url:
                yield url
        except SchemeUnavailable as exc:
            if factory.required_by and os.environ.get(factory.required_by) == "1":
                pytest.fail(f"{factory.name} store unavailable and {factory.required_by}=1: {exc}")
            pytest.skip(f"{factory.name} store unavailable: {exc}")

    @pytest.fixture
    def open_store(
        self, eventuali_target: Target, store_url: str
    ) -> Iterator[Callable[[], Backend]]:
        """Open the test's store (again); every store opened is closed after the test."""
        opened: list[Backend] = []

        def open_() -> Backend:
            backend = self.make_backend(eventuali_target, store_url)
            opened.append(backend)
            return backend

        yield open_
        for backend in opened:
            backend.close()

    @pytest.fixture
    def backend(self, open_store: Callable[[], Backend]) -> Backend:
        return open_store()

    @pytest.fixture(autouse=True)
    def _capabilities(self, request: pytest.FixtureRequest, eventuali_target: Target) -> None:
        if not any(request.node.iter_markers("requires")):
            return
        backend = request.getfixturevalue("backend")
        missing = missing_capabilities(request.node, backend.capabilities)
        if missing:
            pytest.skip(
                f"backend {eventuali_target.backend!r} on {eventuali_target.scheme!r} does not "
                f"declare capability {', '.join(missing)}"
            )


# --- append and read ---------------------------------------------------------------


class AppendReadContract(BackendFixtures):
    def test_new_store_is_empty(self, backend: Backend) -> None:
        assert backend.head() == 0
        assert backend.read_all() == []
        assert backend.read_stream("nobody") == []
        assert backend.stream_version("nobody") == 0

    def test_round_trip_of_every_field(self, backend: Backend) -> None:
        recs = [
            NewRecord(new_id(), "OrderPlaced", 3, 1_700_000_000_123_456, b'{"user":"u"}', b'{"a":1}'),
            NewRecord(new_id(), "OrderShipped", 1, -5, b"", b""),
            NewRecord(new_id(), "Binary", 0, 2**62, b"\x00\xff", bytes(range(256))),
        ]
        positions = backend.append([write("order-1", NO_STREAM, recs, "Order", "tenant-a")])
        assert len(positions) == 3 and positions == sorted(positions)
        assert len(set(positions)) == 3
        expected = [
            Record(pos, r.event_id, "order-1", "Order", v, r.event_type, r.schema_version,
                   r.timestamp, "tenant-a", r.metadata, r.payload)
            for v, (pos, r) in enumerate(zip(positions, recs, strict=False), 1)
        ]
        stream = backend.read_stream("order-1")
        assert stream == expected
        assert all(type(r) is Record for r in stream)
        assert all(type(r.event_id) is bytes and type(r.payload) is bytes for r in stream)
        assert backend.read_all() == expected
        assert backend.stream_version("order-1") == 3
        assert backend.head() == positions[-1]

    def test_versions_are_contiguous_across_appends(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 2)])
        backend.append([write("s", 2, 3)])
        backend.append([write("s", ANY, 1)])
        assert [r.version for r in backend.read_stream("s")] == [1, 2, 3, 4, 5, 6]
        assert backend.stream_version("s") == 6

    def test_positions_follow_append_order_across_streams(self, backend: Backend) -> None:
        got: list[int] = []
        for i in range(10):
            got += backend.append([write(f"s-{i % 3}", ANY, 2)])
        assert got == sorted(got) and len(set(got)) == 20
        assert [r.position for r in backend.read_all()] == got
        assert backend.head() == got[-1]

    def test_multi_stream_append_returns_positions_in_the_order_given(self, backend: Backend) -> None:
        w = [write("a", NO_STREAM, 2), write("b", NO_STREAM, 1), write("c", NO_STREAM, 3)]
        positions = backend.append(w)
        assert len(positions) == 6 and positions == sorted(positions)
        everything = backend.read_all()
        assert [r.position for r in everything] == positions
        assert [r.stream_id for r in everything] == ["a", "a", "b", "c", "c", "c"]
        assert [r.event_id for r in everything] == [r.event_id for x in w for r in x.records]

    def test_same_stream_twice_in_one_call_sees_its_own_first_write(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 2), write("s", 2, 1)])
        assert [r.version for r in backend.read_stream("s")] == [1, 2, 3]
        with pytest.raises(OptimisticConcurrencyError):
            backend.append([write("s", 3, 1), write("s", 3, 1)])
        assert backend.stream_version("s") == 3

    def test_empty_append_writes_nothing(self, backend: Backend) -> None:
        assert backend.append([]) == []
        assert backend.head() == 0

    def test_write_without_records_only_checks_the_version(self, backend: Backend) -> None:
        assert backend.append([write("s", NO_STREAM, [])]) == []
        assert backend.stream_version("s") == 0
        backend.append([write("s", NO_STREAM, 1)])
        assert backend.append([write("s", 1, [])]) == []
        with pytest.raises(OptimisticConcurrencyError):
            backend.append([write("s", 0, [])])
        assert backend.stream_version("s") == 1 and backend.head() == 1

    def test_read_stream_ranges_and_limit(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 10)])
        versions = lambda rs: [r.version for r in rs]  # noqa: E731
        assert versions(backend.read_stream("s", 4)) == list(range(4, 11))
        assert versions(backend.read_stream("s", 4, 6)) == [4, 5, 6]
        assert versions(backend.read_stream("s", 4, None, 2)) == [4, 5]
        assert versions(backend.read_stream("s", 1, 10, 100)) == list(range(1, 11))
        assert versions(backend.read_stream("s", 10, 10)) == [10]
        assert backend.read_stream("s", 11) == []
        assert versions(backend.read_stream("s", 9, 50)) == [9, 10]

    def test_large_payload_round_trips(self, backend: Backend) -> None:
        big = os.urandom(1024 * 1024)
        meta = json.dumps({"blob": "x" * 100_000}).encode()
        backend.append([write("big", NO_STREAM, [new_record(payload=big, metadata=meta)])])
        (rec,) = backend.read_stream("big")
        assert rec.payload == big and rec.metadata == meta

    @pytest.mark.parametrize(
        "stream_id",
        ["注文-42", "ünïcödé/😀", "e\u0301", "a" * MAX_STREAM_ID_LENGTH, "😀" * MAX_STREAM_ID_LENGTH,
         " spaces and\ttabs ", "quote'\"--;DROP"],
        ids=["cjk", "emoji", "combining", "max-ascii", "max-emoji", "whitespace", "sql"],
    )
    def test_unicode_and_edge_stream_ids(self, backend: Backend, stream_id: str) -> None:
        rec = new_record("Événement-😀", payload="données ✓".encode())
        backend.append([write(stream_id, NO_STREAM, [rec], "Catégorie-🐍", "租户")])
        (got,) = backend.read_stream(stream_id)
        assert got.stream_id == stream_id and got.event_type == "Événement-😀"
        assert got.stream_type == "Catégorie-🐍" and got.tenant == "租户"
        assert backend.stream_version(stream_id) == 1
        assert backend.read_all(filter=ReadFilter(stream_id_prefix=stream_id[:3])) == [got]

    def test_many_small_streams(self, backend: Backend) -> None:
        backend.append([write(f"small-{i}", NO_STREAM, 1) for i in range(300)])
        for i in range(0, 300, 2):
            backend.append([write(f"small-{i}", 1, 1)])
        assert backend.head() == 450
        assert len(read_everything(backend, 64)) == 450
        assert all(backend.stream_version(f"small-{i}") == (2 if i % 2 == 0 else 1) for i in range(300))
        assert [r.version for r in backend.read_stream("small-298")] == [1, 2]

    def test_large_batch_in_one_call(self, backend: Backend) -> None:
        w = [write("big-1", NO_STREAM, 1234), write("big-2", NO_STREAM, 1), write("big-1", 1234, 567)]
        positions = backend.append(w)
        assert len(positions) == 1802 and positions == sorted(set(positions))
        assert [r.position for r in backend.read_all()] == positions
        assert [r.version for r in backend.read_stream("big-1")] == list(range(1, 1802))
        assert [r.event_id for r in backend.read_all()] == [r.event_id for x in w for r in x.records]

    def test_one_long_stream(self, backend: Backend) -> None:
        for batch in range(10):
            backend.append([write("long", batch * 500, 500)])
        assert backend.stream_version("long") == 5000
        stream = backend.read_stream("long")
        assert [r.version for r in stream] == list(range(1, 5001))
        assert len({r.event_id for r in stream}) == 5000
        assert [r.version for r in backend.read_stream("long", 4990, None, 5)] == list(range(4990, 4995))


# --- optimistic concurrency -------------------------------------------------------


class ExpectedVersionContract(BackendFixtures):
    def test_exact_version(self, backend: Backend) -> None:
        backend.append([write("s", 0, 2)])
        backend.append([write("s", 2, 1)])
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("s", 2, 1)])
        assert (err.value.stream_id, err.value.expected, err.value.actual) == ("s", 2, 3)
        assert "s" in str(err.value)
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("s", 7, 1)])
        assert err.value.actual == 3
        assert backend.stream_version("s") == 3 and backend.head() == 3

    def test_exact_version_on_a_new_stream(self, backend: Backend) -> None:
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("new", 1, 1)])
        assert (err.value.expected, err.value.actual) == (1, 0)
        assert backend.head() == 0

    def test_any(self, backend: Backend) -> None:
        backend.append([write("s", ANY, 1)])
        backend.append([write("s", ANY, 2)])
        assert backend.stream_version("s") == 3

    def test_no_stream(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 1)])
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("s", NO_STREAM, 1)])
        assert (err.value.stream_id, err.value.expected, err.value.actual) == ("s", NO_STREAM, 1)
        assert backend.stream_version("s") == 1

    def test_stream_exists(self, backend: Backend) -> None:
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("s", STREAM_EXISTS, 1)])
        assert (err.value.expected, err.value.actual) == (STREAM_EXISTS, 0)
        backend.append([write("s", NO_STREAM, 1)])
        backend.append([write("s", STREAM_EXISTS, 1)])
        assert backend.stream_version("s") == 2

    def test_failed_multi_stream_append_writes_nothing(self, backend: Backend) -> None:
        backend.append([write("b", NO_STREAM, 1)])
        head = backend.head()
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("a", NO_STREAM, 3), write("b", NO_STREAM, 1), write("c", ANY, 1)])
        assert err.value.stream_id == "b"
        assert backend.head() == head
        assert backend.read_stream("a") == [] and backend.read_stream("c") == []
        assert backend.stream_version("a") == 0
        assert len(backend.read_all()) == 1
        # the failed call left no trace: the same writes succeed once corrected
        backend.append([write("a", NO_STREAM, 3), write("b", 1, 1), write("c", ANY, 1)])
        assert [r.version for r in backend.read_stream("a")] == [1, 2, 3]

    def test_concurrent_writers_in_threads(self, backend: Backend, eventuali_target: Target, store_url: str) -> None:
        if not self._shares_data_between_opens(backend, store_url):
            pytest.skip("each open of this URL is a separate store; threads share one backend")
        self._race_threads(eventuali_target, store_url, backend)

    def test_concurrent_writers_share_one_backend(self, backend: Backend) -> None:
        results: list[tuple[list[bytes], int]] = []
        errors: list[BaseException] = []

        def body() -> None:
            written, conflicts = [], 0
            try:
                for i in range(25):
                    stream_id = ("x", "y")[i % 2]
                    while True:
                        version = backend.stream_version(stream_id)
                        rec = new_record("Raced")
                        try:
                            backend.append([write(stream_id, version, [rec])])
                        except OptimisticConcurrencyError as exc:
                            assert exc.actual > version
                            conflicts += 1
                            continue
                        written.append(rec.event_id)
                        break
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            results.append((written, conflicts))

        threads = [threading.Thread(target=body) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        self._check_race(backend, results, ["x", "y"], 100)

    @requires("multi_process")
    def test_concurrent_writers_in_processes(self, backend: Backend, eventuali_target: Target, store_url: str) -> None:
        backend.append([write("x", NO_STREAM, 1), write("y", NO_STREAM, 1)])
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(3) as pool:
            results = pool.starmap(
                _append_with_retries,
                [(eventuali_target.backend, store_url, ["x", "y"], 20)] * 3,
            )
        self._check_race(backend, results, ["x", "y"], 60, already=2)

    # helpers

    def _shares_data_between_opens(self, backend: Backend, store_url: str) -> bool:
        return ":memory:" not in store_url and (
            "persistent" in backend.capabilities or store_url.startswith("memory://")
        )

    def _race_threads(self, target: Target, url: str, backend: Backend) -> None:
        results: list[tuple] = []
        errors: list[BaseException] = []

        def body() -> None:
            try:
                results.append(_append_with_retries(target.backend, url, ["x", "y"], 20))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=body) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        self._check_race(backend, results, ["x", "y"], 60)

    def _check_race(self, backend: Backend, results: list, streams: list[str], total: int, already: int = 0) -> None:
        written = [eid for ids, _ in results for eid in ids]
        assert len(written) == total and len(set(written)) == total
        stored = [r for s in streams for r in backend.read_stream(s)]
        assert len(stored) == total + already  # nothing lost, nothing duplicated
        assert set(written) <= {r.event_id for r in stored}
        for s in streams:
            assert [r.version for r in backend.read_stream(s)] == list(
                range(1, backend.stream_version(s) + 1)
            )
        positions = [r.position for r in read_everything(backend)]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)


# --- duplicate event ids ------------------------------------------------------------


class DuplicateEventContract(BackendFixtures):
    def test_stored_event_id_is_refused(self, backend: Backend) -> None:
        rec = new_record()
        backend.append([write("s", NO_STREAM, [rec])])
        with pytest.raises(DuplicateEventError) as err:
            backend.append([write("t", NO_STREAM, [new_record(), new_record(event_id=rec.event_id)])])
        assert err.value.event_id == rec.event_id
        assert backend.read_stream("t") == [] and backend.head() == 1

    def test_same_event_id_twice_in_one_call_is_refused(self, backend: Backend) -> None:
        eid = new_id()
        with pytest.raises(DuplicateEventError) as err:
            backend.append([write("s", NO_STREAM, [new_record(event_id=eid), new_record(event_id=eid)])])
        assert err.value.event_id == eid
        with pytest.raises(DuplicateEventError):
            backend.append([write("a", NO_STREAM, [new_record(event_id=eid)]),
                            write("b", NO_STREAM, [new_record(event_id=eid)])])
        assert backend.head() == 0 and backend.read_all() == []

    def test_retrying_an_acknowledged_append_never_duplicates(self, backend: Backend) -> None:
        w = write("s", ANY, 3)
        backend.append([w])
        with pytest.raises(DuplicateEventError):
            backend.append([w])
        assert len(backend.read_stream("s")) == 3


# --- read_all ------------------------------------------------------------------------


class ReadAllContract(BackendFixtures):
    def _populate(self, backend: Backend) -> list[Record]:
        for i in range(12):
            backend.append([
                write(f"order-{i}", NO_STREAM, [new_record("Placed"), new_record("Paid")], "Order",
                      "acme" if i % 2 else "globex"),
                write(f"user-{i}", NO_STREAM, [new_record("Registered")], "User", "acme"),
            ])
        return backend.read_all()

    def test_paging_returns_everything_once_in_order(self, backend: Backend) -> None:
        everything = self._populate(backend)
        assert len(everything) == 36
        for page in (1, 5, 7, 36, 100):
            assert read_everything(backend, page) == everything
        assert backend.read_all(everything[10].position, 3) == everything[10:13]
        assert backend.read_all(0, 2) == everything[:2]
        assert backend.read_all(backend.head() + 1) == []

    @pytest.mark.parametrize(
        "filter",
        [
            ReadFilter(event_types=frozenset({"Paid"})),
            ReadFilter(event_types=frozenset({"Paid", "Registered"})),
            ReadFilter(event_types=frozenset()),
            ReadFilter(stream_types=frozenset({"User"})),
            ReadFilter(stream_id_prefix="order-1"),
            ReadFilter(stream_id_prefix=""),
            ReadFilter(tenant="acme"),
            ReadFilter(tenant="nobody"),
            ReadFilter(event_types=frozenset({"Placed"}), stream_types=frozenset({"Order"}),
                       stream_id_prefix="order-", tenant="globex"),
            ReadFilter(),
        ],
        ids=["type", "types", "no-types", "stream-type", "prefix", "empty-prefix", "tenant",
             "unknown-tenant", "all-filters", "empty-filter"],
    )
    def test_filters_page_like_the_reference_semantics(self, backend: Backend, filter: ReadFilter) -> None:
        everything = self._populate(backend)
        expected = [r for r in everything if filter.matches(r)]
        assert backend.read_all(1, None, filter) == expected
        for page in (1, 4):
            assert read_everything(backend, page, filter) == expected
        if expected:
            middle = expected[len(expected) // 2]
            assert backend.read_all(middle.position, 2, filter) == [
                r for r in expected if r.position >= middle.position
            ][:2]

    def test_paging_reader_during_concurrent_writes_skips_nothing(
        self, backend: Backend, open_store: Callable[[], Backend], store_url: str
    ) -> None:
        """The concurrent-writer gap problem: a reader paging with from = last + 1 while
        writers commit must end up with every event exactly once, in position order."""
        separate = ":memory:" not in store_url and (
            "persistent" in backend.capabilities or store_url.startswith("memory://")
        )
        writers = [open_store() if separate else backend for _ in range(3)]
        done = threading.Event()
        errors: list[BaseException] = []

        def produce(w: Backend, n: int) -> None:
            try:
                for i in range(40):
                    w.append([write(f"w{n}-{i % 4}", ANY, 1 + i % 3)])
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=produce, args=(w, n)) for n, w in enumerate(writers)]
        for t in threads:
            t.start()
        seen: list[Record] = []
        position = 1

        def drain() -> None:
            nonlocal position
            while batch := backend.read_all(position, 7):
                seen.extend(batch)
                position = batch[-1].position + 1

        def watch() -> None:
            for t in threads:
                t.join()
            done.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        while not done.is_set():
            drain()
        watcher.join()
        drain()
        assert not errors, errors
        assert seen == backend.read_all()
        assert len(seen) == 3 * sum(1 + i % 3 for i in range(40))

    def test_prefix_filter_is_literal(self, backend: Backend) -> None:
        backend.append([write("a%b", NO_STREAM, 1), write("axb", NO_STREAM, 1), write("a_c", NO_STREAM, 1)])
        assert [r.stream_id for r in backend.read_all(filter=ReadFilter(stream_id_prefix="a%"))] == ["a%b"]
        assert [r.stream_id for r in backend.read_all(filter=ReadFilter(stream_id_prefix="a_"))] == ["a_c"]

    def test_golden_vector_operations(self, backend: Backend) -> None:
        """The scripted operations of vectors/operations.json give the recorded results."""
        data = vector("operations")
        for step in data["steps"]:
            writes = [
                StreamWrite(w["stream_id"], w["stream_type"], w["expected"],
                            [_new_record_from_json(r) for r in w["records"]], w.get("tenant", ""))
                for w in step["writes"]
            ]
            if "error" in step:
                with pytest.raises(Exception) as err:  # noqa: B017 - the class name is compared
                    backend.append(writes)
                assert type(err.value).__name__ == step["error"]
            else:
                assert backend.append(writes) == step["positions"]
        assert [_record_to_json(r) for r in backend.read_all()] == data["records"]
        for stream_id, version in data["stream_versions"].items():
            assert backend.stream_version(stream_id) == version
        assert backend.head() == data["head"]


def _new_record_from_json(r: dict) -> NewRecord:
    return NewRecord(bytes.fromhex(r["event_id"]), r["event_type"], r["schema_version"],
                     r["timestamp"], bytes.fromhex(r["metadata"]), bytes.fromhex(r["payload"]))


def _record_to_json(r: Record) -> dict:
    d = r._asdict()
    for key in ("event_id", "metadata", "payload"):
        d[key] = d[key].hex()
    return d


def _record_from_json(d: dict) -> Record:
    d = dict(d)
    for key in ("event_id", "metadata", "payload"):
        d[key] = bytes.fromhex(d[key])
    return Record(**d)


# --- persistence --------------------------------------------------------------------


class PersistenceContract(BackendFixtures):
    @requires("persistent")
    def test_reopening_sees_everything_acknowledged(self, open_store: Callable[[], Backend]) -> None:
        first = open_store()
        first.append([write("a", NO_STREAM, 3), write("b", NO_STREAM, 1)])
        first.append([write("a", 3, 2)], checkpoint=("projector", 4))
        before = first.read_all()
        caps = first.capabilities
        if "snapshots" in caps:
            first.save_snapshot(Snapshot("a", 5, 1, 123, b"state"))
        first.close()
        second = open_store()
        assert second.read_all() == before
        assert second.head() == before[-1].position
        assert second.stream_version("a") == 5
        assert second.get_checkpoint("projector") == 4
        if "snapshots" in caps:
            assert second.load_snapshot("a") == Snapshot("a", 5, 1, 123, b"state")
        positions = second.append([write("a", 5, 1)])
        assert positions[0] > before[-1].position

    @requires("persistent")
    def test_two_open_stores_see_each_others_writes(self, open_store: Callable[[], Backend]) -> None:
        one, two = open_store(), open_store()
        one.append([write("s", NO_STREAM, 1)])
        assert two.stream_version("s") == 1
        with pytest.raises(OptimisticConcurrencyError):
            two.append([write("s", NO_STREAM, 1)])
        two.append([write("s", 1, 1)])
        assert [r.version for r in one.read_stream("s")] == [1, 2]

    def test_sqlite_file_format_is_the_shared_one(self, eventuali_target: Target, store_url: str) -> None:
        """A file written row by row as vectors/sqlite_v1.json says reads back as its records,
        and the engine's own appends land in the same columns (cross-engine compatibility)."""
        url = parse_url(store_url)
        if url.scheme != "sqlite" or url.path == ":memory:":
            pytest.skip("the SQLite file-format vector applies to sqlite:// files")
        data = vector("sqlite_v1")
        path = url.path
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        script = resources.files("eventuali").joinpath("schema/sqlite.sql").read_text("utf-8")
        with sqlite3.connect(path) as conn:
            conn.executescript(script)
            for table, rows in data["tables"].items():
                for row in rows:
                    row = {k: bytes.fromhex(v[4:]) if isinstance(v, str) and v.startswith("hex:") else v
                           for k, v in row.items()}
                    conn.execute(
                        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                        list(row.values()),
                    )
        conn.close()
        reopened = self.make_backend(eventuali_target, store_url)
        try:
            expected = [_record_from_json(r) for r in data["records"]]
            assert reopened.read_all() == expected
            for stream_id, version in data["stream_versions"].items():
                assert reopened.stream_version(stream_id) == version
            assert reopened.head() == data["head"]
            if "checkpoints" in reopened.capabilities:
                assert reopened.get_checkpoint("projector") == 3
            if "snapshots" in reopened.capabilities:
                assert reopened.load_snapshot("order-1") == Snapshot("order-1", 2, 1, 7, b'{"state":1}')
            with pytest.raises(StreamDeletedError):
                reopened.append([write("gone", ANY, 1)])
            rec = new_record("Appended", payload=b"p", metadata=b"m", timestamp=42)
            (position,) = reopened.append([write("order-1", 2, [rec], "Order", "acme")])
            assert position == data["head"] + 1
        finally:
            reopened.close()
        with sqlite3.connect(path) as conn:
            row = conn.execute(
                "SELECT position, event_id, stream_id, stream_type, version, event_type, "
                "schema_version, timestamp, tenant, metadata, payload FROM eventuali_events "
                "WHERE position = ?", (position,)
            ).fetchone()
            stream = conn.execute(
                "SELECT stream_type, tenant, version, deleted FROM eventuali_streams "
                "WHERE stream_id = 'order-1'"
            ).fetchone()
        conn.close()
        assert row == (position, rec.event_id, "order-1", "Order", 3, "Appended", 1, 42, "acme", b"m", b"p")
        assert stream == ("Order", "acme", 3, 0)


# --- snapshots, checkpoints, wait_for, retention, close -----------------------------


class SnapshotContract(BackendFixtures):
    @requires("snapshots")
    def test_save_load_and_prune(self, backend: Backend) -> None:
        assert backend.load_snapshot("s") is None
        for v in (3, 10, 7):
            backend.save_snapshot(Snapshot("s", v, 1, 1000 + v, b"state-%d" % v))
        backend.save_snapshot(Snapshot("other", 1, 1, 0, b""))
        assert backend.load_snapshot("s") == Snapshot("s", 10, 1, 1010, b"state-10")
        assert backend.load_snapshot("s", max_version=9) == Snapshot("s", 7, 1, 1007, b"state-7")
        assert backend.load_snapshot("s", max_version=2) is None
        backend.save_snapshot(Snapshot("s", 10, 2, 5, b"replaced"))
        assert backend.load_snapshot("s") == Snapshot("s", 10, 2, 5, b"replaced")
        assert backend.prune_snapshots("s", keep=2) == 1
        assert backend.load_snapshot("s", max_version=6) is None
        assert backend.load_snapshot("s", max_version=7) is not None
        assert backend.prune_snapshots("s", keep=0) == 2
        assert backend.load_snapshot("s") is None
        assert backend.prune_snapshots("nobody", keep=1) == 0
        assert backend.load_snapshot("other") == Snapshot("other", 1, 1, 0, b"")

    @requires("snapshots")
    def test_large_snapshot(self, backend: Backend) -> None:
        state = os.urandom(1024 * 1024)
        backend.save_snapshot(Snapshot("big", 1, 1, 0, state))
        loaded = backend.load_snapshot("big")
        assert loaded is not None and loaded.payload == state


class CheckpointContract(BackendFixtures):
    @requires("checkpoints")
    def test_get_and_set(self, backend: Backend) -> None:
        assert backend.get_checkpoint("proj") is None
        backend.set_checkpoint("proj", 5)
        backend.set_checkpoint("other", 0)
        backend.set_checkpoint("proj", 3)  # overwrite, even backwards
        assert backend.get_checkpoint("proj") == 3
        assert backend.get_checkpoint("other") == 0

    @requires("checkpoints")
    def test_checkpoint_in_the_append_transaction(self, backend: Backend) -> None:
        positions = backend.append([write("s", NO_STREAM, 2)], checkpoint=("proj", 17))
        assert backend.get_checkpoint("proj") == 17 and len(positions) == 2
        with pytest.raises(OptimisticConcurrencyError):
            backend.append([write("s", NO_STREAM, 1)], checkpoint=("proj", 99))
        assert backend.get_checkpoint("proj") == 17
        with pytest.raises(DuplicateEventError):
            rec = backend.read_stream("s")[0]
            backend.append([write("t", NO_STREAM, [new_record(event_id=rec.event_id)])],
                           checkpoint=("proj", 98))
        assert backend.get_checkpoint("proj") == 17
        assert backend.append([], checkpoint=("proj", 20)) == []
        assert backend.get_checkpoint("proj") == 20

    @requires("checkpoints")
    def test_an_empty_write_fences_the_checkpoint(self, backend: Backend) -> None:
        # What leases rely on (eventuali.scaling): a write without records on the lease
        # stream, at the holder's version, guards the checkpoint stored with it.
        backend.append([write("$lease", NO_STREAM, 2)])
        backend.append([write("s", NO_STREAM, 1), write("$lease", 2, [])], checkpoint=("p", 5))
        assert backend.get_checkpoint("p") == 5
        backend.append([write("$lease", 2, 1)])  # another holder took the lease
        with pytest.raises(OptimisticConcurrencyError) as err:
            backend.append([write("s", 1, 1), write("$lease", 2, [])], checkpoint=("p", 9))
        assert err.value.stream_id == "$lease"
        assert backend.get_checkpoint("p") == 5 and backend.stream_version("s") == 1


class WaitForContract(BackendFixtures):
    def test_returns_at_once_when_already_past(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 2)])
        started = time.monotonic()
        assert backend.wait_for(0, 10) == 2
        assert time.monotonic() - started < 2

    def test_times_out_with_the_head(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 1)])
        started = time.monotonic()
        assert backend.wait_for(1, 0.2) == 1
        assert 0.15 <= time.monotonic() - started < 5
        assert backend.wait_for(5, 0) == 1

    @requires("wait_for")
    def test_wakes_on_commit(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 1)])
        timer = threading.Timer(0.3, lambda: backend.append([write("s", 1, 2)]))
        started = time.monotonic()
        timer.start()
        try:
            head = backend.wait_for(1, 30)
        finally:
            timer.join()
        assert head >= 2
        assert time.monotonic() - started < 10  # woken, not timed out

    @requires("wait_for", "persistent")
    def test_wakes_on_commit_through_another_open_store(self, open_store: Callable[[], Backend]) -> None:
        waiter, writer = open_store(), open_store()
        writer.append([write("s", NO_STREAM, 1)])
        timer = threading.Timer(0.3, lambda: writer.append([write("s", 1, 1)]))
        started = time.monotonic()
        timer.start()
        try:
            assert waiter.wait_for(1, 30) >= 2
        finally:
            timer.join()
        assert time.monotonic() - started < 10


    @requires("wait_for", "multi_process")
    def test_wakes_on_commit_from_another_process(
        self, backend: Backend, eventuali_target: Target, store_url: str
    ) -> None:
        backend.append([write("s", NO_STREAM, 1)])
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=_append_later, args=(eventuali_target.backend, store_url, 0.5))
        child.start()
        try:
            started = time.monotonic()
            head = backend.wait_for(1, 60)
            waited = time.monotonic() - started
        finally:
            child.join(60)
        assert child.exitcode == 0
        assert head == 2
        assert waited < 30  # woken (or polled), not timed out


class RetentionContract(BackendFixtures):
    @requires("delete")
    def test_delete_stream(self, backend: Backend) -> None:
        backend.append([write("doomed", NO_STREAM, 3), write("kept", NO_STREAM, 1)])
        caps = backend.capabilities
        if "snapshots" in caps:
            backend.save_snapshot(Snapshot("doomed", 3, 1, 0, b"s"))
        assert backend.delete_stream("doomed") == 3
        assert backend.read_stream("doomed") == []
        assert backend.stream_version("doomed") == 0
        assert [r.stream_id for r in backend.read_all()] == ["kept"]
        if "snapshots" in caps:
            assert backend.load_snapshot("doomed") is None
        for expected in (ANY, NO_STREAM, STREAM_EXISTS, 0, 3):
            with pytest.raises(StreamDeletedError) as err:
                backend.append([write("doomed", expected, 1)])
            assert err.value.stream_id == "doomed"
        with pytest.raises(StreamDeletedError):  # and the whole call is refused
            backend.append([write("fresh", NO_STREAM, 1), write("doomed", ANY, 1)])
        assert backend.read_stream("fresh") == []
        assert backend.delete_stream("doomed") == 0
        assert backend.head() == 4  # positions are never reused
        assert backend.append([write("kept", 1, 1)]) == [5]

    @requires("delete")
    def test_deleting_an_unknown_stream_tombstones_it(self, backend: Backend) -> None:
        assert backend.delete_stream("never") == 0
        with pytest.raises(StreamDeletedError):
            backend.append([write("never", NO_STREAM, 1)])

    @requires("truncate")
    def test_truncate_stream(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 5), write("t", NO_STREAM, 2)])
        assert backend.truncate_stream("s", 3) == 2
        assert [r.version for r in backend.read_stream("s")] == [3, 4, 5]
        assert [r.version for r in backend.read_stream("s", 2, 3)] == [3]
        assert backend.stream_version("s") == 5
        backend.append([write("s", 5, 1)])
        assert [r.version for r in backend.read_stream("s")] == [3, 4, 5, 6]
        assert backend.truncate_stream("s", 3) == 0
        assert backend.truncate_stream("s", 100) == 4
        assert backend.read_stream("s") == [] and backend.stream_version("s") == 6
        backend.append([write("s", 6, 1)])
        assert [r.version for r in backend.read_stream("s")] == [7]
        assert backend.truncate_stream("unknown", 5) == 0
        assert [r.stream_id for r in backend.read_all()] == ["t", "t", "s"]


class CloseContract(BackendFixtures):
    def test_close_is_idempotent_and_later_calls_fail(self, backend: Backend) -> None:
        backend.append([write("s", NO_STREAM, 1)])
        backend.close()
        backend.close()
        calls: list[Callable[[], object]] = [
            lambda: backend.append([write("s", 1, 1)]),
            lambda: backend.read_stream("s"),
            lambda: backend.read_all(),
            lambda: backend.stream_version("s"),
            lambda: backend.head(),
            lambda: backend.wait_for(0, 0),
        ]
        caps = backend.capabilities
        if "snapshots" in caps:
            calls += [lambda: backend.load_snapshot("s"),
                      lambda: backend.save_snapshot(Snapshot("s", 1, 1, 0, b"")),
                      lambda: backend.prune_snapshots("s", 1)]
        if "checkpoints" in caps:
            calls += [lambda: backend.get_checkpoint("c"), lambda: backend.set_checkpoint("c", 1)]
        if "delete" in caps:
            calls.append(lambda: backend.delete_stream("s"))
        if "truncate" in caps:
            calls.append(lambda: backend.truncate_stream("s", 1))
        for call in calls:
            with pytest.raises(StoreClosedError):
                call()

    def test_context_manager_closes(self, open_store: Callable[[], Backend]) -> None:
        with open_store() as backend:
            backend.append([write("s", NO_STREAM, 1)])
        with pytest.raises(StoreClosedError):
            backend.head()


# --- bad input ----------------------------------------------------------------------

_OK = new_record()
_LONG_ID = "x" * (MAX_STREAM_ID_LENGTH + 1)
_LONG_NAME = "n" * (MAX_NAME_LENGTH + 1)


def _rec(**changes: Any) -> NewRecord:
    return _OK._replace(**{"event_id": new_id(), **changes})


BAD_CALLS: list[Any] = [
    pytest.param(lambda b: b.append([write("", NO_STREAM, 1)]), id="append-empty-stream-id"),
    pytest.param(lambda b: b.append([write(_LONG_ID, NO_STREAM, 1)]), id="append-long-stream-id"),
    pytest.param(lambda b: b.append([write(42, NO_STREAM, 1)]), id="append-int-stream-id"),  # type: ignore[arg-type]
    pytest.param(lambda b: b.append([write("a\x00b", NO_STREAM, 1)]), id="append-nul-stream-id"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_id=b"x" * 15)])]), id="event-id-15-bytes"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_id=b"x" * 17)])]), id="event-id-17-bytes"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_id=str(uuid.uuid4()))])]), id="event-id-str"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_id=uuid.uuid4())])]), id="event-id-uuid"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_type="")])]), id="empty-event-type"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_type=_LONG_NAME)])]), id="long-event-type"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(event_type=7)])]), id="int-event-type"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(schema_version=-1)])]), id="negative-schema-version"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(schema_version="1")])]), id="str-schema-version"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(timestamp=1.5)])]), id="float-timestamp"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(timestamp=2**63)])]), id="huge-timestamp"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(metadata="{}")])]), id="str-metadata"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(payload=None)])]), id="none-payload"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, [_rec(), ("too", "short")])]), id="short-record"),  # type: ignore[list-item]
    pytest.param(lambda b: b.append([write("s", -4, 1)]), id="unknown-negative-expected"),
    pytest.param(lambda b: b.append([write("s", "0", 1)]), id="str-expected"),  # type: ignore[arg-type]
    pytest.param(lambda b: b.append([write("s", None, 1)]), id="none-expected"),  # type: ignore[arg-type]
    pytest.param(lambda b: b.append([write("s", NO_STREAM, 1, _LONG_NAME)]), id="long-stream-type"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, 1, "T", _LONG_NAME)]), id="long-tenant"),
    pytest.param(lambda b: b.append(write("s", NO_STREAM, 1)), id="write-not-in-a-list"),
    pytest.param(lambda b: b.append("s"), id="writes-a-str"),
    pytest.param(lambda b: b.append([write("ok", NO_STREAM, 1), write("", NO_STREAM, 1)]), id="second-write-bad"),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, 1)], checkpoint=("", 1)), id="checkpoint-empty-name", marks=requires("checkpoints")),
    pytest.param(lambda b: b.append([write("s", NO_STREAM, 1)], checkpoint=("c", -1)), id="checkpoint-negative", marks=requires("checkpoints")),
    pytest.param(lambda b: b.read_stream(""), id="read-empty-stream-id"),
    pytest.param(lambda b: b.read_stream(_LONG_ID), id="read-long-stream-id"),
    pytest.param(lambda b: b.read_stream("s", 0), id="from-version-0"),
    pytest.param(lambda b: b.read_stream("s", -1), id="from-version-negative"),
    pytest.param(lambda b: b.read_stream("s", 5, 4), id="to-below-from"),
    pytest.param(lambda b: b.read_stream("s", 1, None, 0), id="read-stream-limit-0"),
    pytest.param(lambda b: b.read_all(-1), id="negative-position"),
    pytest.param(lambda b: b.read_all(1, 0), id="read-all-limit-0"),
    pytest.param(lambda b: b.read_all(1, -5), id="read-all-negative-limit"),
    pytest.param(lambda b: b.read_all(1, None, {"event_types": ["x"]}), id="filter-a-dict"),
    pytest.param(lambda b: b.read_all(1, None, ReadFilter(event_types="Placed")), id="filter-types-a-str"),  # type: ignore[arg-type]
    pytest.param(lambda b: b.stream_version(""), id="version-empty-stream-id"),
    pytest.param(lambda b: b.wait_for(-1, 0), id="wait-negative-position"),
    pytest.param(lambda b: b.wait_for(0, -1), id="wait-negative-timeout"),
    pytest.param(lambda b: b.save_snapshot(Snapshot("s", 0, 1, 0, b"")), id="snapshot-version-0", marks=requires("snapshots")),
    pytest.param(lambda b: b.save_snapshot(Snapshot("", 1, 1, 0, b"")), id="snapshot-empty-id", marks=requires("snapshots")),
    pytest.param(lambda b: b.save_snapshot(Snapshot("s", 1, 1, 0, "x")), id="snapshot-str-payload", marks=requires("snapshots")),  # type: ignore[arg-type]
    pytest.param(lambda b: b.load_snapshot("s", -1), id="snapshot-negative-max", marks=requires("snapshots")),
    pytest.param(lambda b: b.prune_snapshots("s", -1), id="prune-negative-keep", marks=requires("snapshots")),
    pytest.param(lambda b: b.get_checkpoint(""), id="get-checkpoint-empty", marks=requires("checkpoints")),
    pytest.param(lambda b: b.set_checkpoint("c", -1), id="set-checkpoint-negative", marks=requires("checkpoints")),
    pytest.param(lambda b: b.set_checkpoint(_LONG_NAME, 1), id="set-checkpoint-long-name", marks=requires("checkpoints")),
    pytest.param(lambda b: b.delete_stream(""), id="delete-empty-stream-id", marks=requires("delete")),
    pytest.param(lambda b: b.truncate_stream("s", 0), id="truncate-before-0", marks=requires("truncate")),
    pytest.param(lambda b: b.truncate_stream("", 1), id="truncate-empty-stream-id", marks=requires("truncate")),
]


class BadInputContract(BackendFixtures):
    @pytest.mark.parametrize("call", BAD_CALLS)
    def test_bad_input_is_refused_and_writes_nothing(self, backend: Backend, call: Callable[[Backend], object]) -> None:
        backend.append([write("s", NO_STREAM, 2)])
        before = backend.read_all()
        with pytest.raises(InvalidInputError) as err:
            call(backend)
        assert str(err.value)  # a message that says what is wrong
        assert backend.read_all() == before
        assert backend.stream_version("s") == 2


class PublicApiContract(BackendFixtures):
    """The backend under the core: what a user of ``EventStore`` sees."""

    def test_sync_store_saves_and_loads_aggregates(self, backend: Backend, store_url: str) -> None:
        from eventuali import SyncEventStore

        from . import api_model as m

        store = SyncEventStore(backend, parse_url(store_url))
        cart = m.ConformanceCart(id="cart-ü-1")
        cart.apply(m.ConformanceItemAdded(sku="a", quantity=2))
        cart.apply(m.ConformanceItemAdded(sku="b", quantity=1))
        store.save(cart)
        loaded = store.load(m.ConformanceCart, "cart-ü-1")
        assert loaded is not None and loaded.version == 2 and loaded.items == {"a": 2, "b": 1}
        assert store.load(m.ConformanceCart, "nobody") is None
        stale = store.load(m.ConformanceCart, "cart-ü-1")
        assert stale is not None
        loaded.apply(m.ConformanceItemAdded(sku="c", quantity=5))
        store.save(loaded)
        stale.apply(m.ConformanceItemAdded(sku="d", quantity=1))
        with pytest.raises(OptimisticConcurrencyError):
            store.save(stale)
        events = store.load_events("cart-ü-1")
        assert [e.sku for e in events] == ["a", "b", "c"]  # type: ignore[attr-defined]
        assert [e.aggregate_version for e in events] == [1, 2, 3]

    def test_async_store_through_the_registry(self, eventuali_target: Target, store_url: str) -> None:
        import asyncio

        from eventuali import EventStore

        from . import api_model as m

        async def scenario() -> tuple:
            store = await EventStore.create(store_url, backend=eventuali_target.backend)
            try:
                carts = []
                for i in range(3):
                    cart = m.ConformanceCart(id=f"cart-{i}")
                    cart.apply(m.ConformanceItemAdded(sku="x", quantity=i + 1))
                    carts.append(cart)
                await store.save(*carts)  # several aggregates, atomically
                loaded = [await store.load(m.ConformanceCart, f"cart-{i}") for i in range(3)]
                by_type = await store.load_events_by_type(m.ConformanceCart)
                return loaded, by_type
            finally:
                await store.close()

        loaded, by_type = asyncio.run(scenario())
        assert [c.items for c in loaded] == [{"x": 1}, {"x": 2}, {"x": 3}]
        assert [e.aggregate_id for e in by_type] == ["cart-0", "cart-1", "cart-2"]


class BackendContract(
    AppendReadContract,
    ExpectedVersionContract,
    DuplicateEventContract,
    ReadAllContract,
    PersistenceContract,
    SnapshotContract,
    CheckpointContract,
    WaitForContract,
    RetentionContract,
    CloseContract,
    BadInputContract,
    PublicApiContract,
):
    """Every conformance test.  Subclass it as ``Test…`` to run it against a backend."""
