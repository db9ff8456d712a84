"""The conformance suite: the Backend protocol, written down as tests.

:class:`BackendContract` collects every test (the groups can also be used one
by one).  The classes have no ``Test`` prefix, so pytest collects them only
where they are bound to a backend: subclass and supply the ``eventuali_target``
fixture (or rely on the ``--eventuali-backend`` / ``--eventuali-scheme``
options of :mod:`eventuali.testing.plugin`), or override
:meth:`BackendFixtures.make_backend` to open your engine yourself::

    class TestMyEngine(BackendContract):
        @pytest.fixture
        def eventuali_target(self):
            return Target(backend="mine", scheme="memory")

A test marked ``@requires("snapshots")`` is skipped, with the reason, when the
backend does not declare that capability.  This module holds the core groups
(append/read, expected versions, duplicate ids, ``read_all``, close, the public
API); the others live in ``contract_*`` modules: ``concurrency`` (racing
writers), ``persistence`` (reopen), ``optional`` (snapshots, checkpoints,
``wait_for``, delete/truncate), ``rules`` (the finer rules of protocol.py) and
``input`` (bad input).  Each failure message names the guarantee that broke.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable

import pytest

from eventuali.errors import (
    DuplicateEventError,
    OptimisticConcurrencyError,
    StoreClosedError,
)
from eventuali.protocol import Backend
from eventuali.records import (
    ANY,
    MAX_STREAM_ID_LENGTH,
    NO_STREAM,
    STREAM_EXISTS,
    NewRecord,
    ReadFilter,
    Record,
    Snapshot,
    StreamWrite,
)
from eventuali.url import parse_url

from .contract_concurrency import ConcurrencyContract
from .contract_input import BAD_CALLS, BadInputContract
from .contract_optional import (
    CheckpointContract,
    RetentionContract,
    SnapshotContract,
    WaitForContract,
)
from .contract_persistence import PersistenceContract
from .contract_rules import RulesContract
from .fixtures import (
    BackendFixtures,
    StoreHandles,
    new_id,
    new_record,
    new_record_from_json,
    read_everything,
    record_to_json,
    records,
    vector,
    write,
)
from .targets import Target

__all__ = [
    "BAD_CALLS", "AppendReadContract", "BackendContract", "BackendFixtures", "BadInputContract",
    "CheckpointContract", "CloseContract", "ConcurrencyContract", "DuplicateEventContract",
    "ExpectedVersionContract", "PersistenceContract", "PublicApiContract", "ReadAllContract",
    "RetentionContract", "RulesContract", "SnapshotContract", "StoreHandles", "Target",
    "WaitForContract", "new_id", "new_record", "read_everything", "records", "vector", "write",
]

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
        self, backend: Backend, open_store: StoreHandles, store_url: str
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
                            [new_record_from_json(r) for r in w["records"]], w.get("tenant", ""))
                for w in step["writes"]
            ]
            if "error" in step:
                with pytest.raises(Exception) as err:  # noqa: B017 - the class name is compared
                    backend.append(writes)
                assert type(err.value).__name__ == step["error"]
            else:
                assert backend.append(writes) == step["positions"]
        assert [record_to_json(r) for r in backend.read_all()] == data["records"]
        for stream_id, version in data["stream_versions"].items():
            assert backend.stream_version(stream_id) == version
        assert backend.head() == data["head"]


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

    def test_context_manager_closes(self, open_store: StoreHandles) -> None:
        with open_store() as backend:
            backend.append([write("s", NO_STREAM, 1)])
        with pytest.raises(StoreClosedError):
            backend.head()


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
    ConcurrencyContract,
    ReadAllContract,
    PersistenceContract,
    SnapshotContract,
    CheckpointContract,
    WaitForContract,
    RetentionContract,
    CloseContract,
    BadInputContract,
    RulesContract,
    PublicApiContract,
):
    """Every conformance test.  Subclass it as ``Test…`` to run it against a backend."""
