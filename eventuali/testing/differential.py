"""Differential testing: one random workload on two backends must give identical results.

:class:`BackendComparison` is a hypothesis ``RuleBasedStateMachine`` that sends
the same commands to two backends — appends with right and wrong expected
versions, reused (duplicate) event ids, reads and filtered ``read_all``,
snapshots, checkpoints, deletions and truncations, and bad arguments — and
asserts that both return equal values or raise the same exception class with
the same details.  Bind it by naming the two stores::

    class MemoryVsSQLite(BackendComparison):
        def open_left(self):
            return open_url("python", "memory://")

        def open_right(self):
            return open_url("python", f"sqlite://{self.tmp_dir}/d.db")

    TestMemoryVsSQLite = MemoryVsSQLite.TestCase
    TestMemoryVsSQLite.settings = settings(max_examples=30, stateful_step_count=30,
                                           deadline=None)

Optional rules (snapshots, checkpoints, delete, truncate) run only when both
backends declare the capability.  It finds disagreements; it is not where a
rule is defined: every rule it exercises is stated in :mod:`eventuali.protocol`
and checked on its own by the conformance suite (``contract_rules`` and the
other groups), so an engine is held to it without a second engine to compare.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from eventuali.errors import EventualiError
from eventuali.protocol import Backend
from eventuali.records import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    NewRecord,
    ReadFilter,
    Snapshot,
    StreamWrite,
)

# Not "from eventuali import registry": the package exports the event-class registry
# under that name; the module is only reliably reached by its full name.
from eventuali.registry import load as load_backend
from eventuali.url import parse_url

STREAMS = ["a", "b", "order-1", "order-2", "注文-😀"]
DELETABLE = ["b", "注文-😀"]  # deletion is forever: keep the other streams writable
EVENT_TYPES = ["Created", "Renamed", "Closed"]

streams = st.sampled_from(STREAMS)
# What the writer expects: resolved against the current version when the command runs.
# Mostly right ones, so that streams grow and the other commands have data to act on.
expectations = st.sampled_from(["right", "any", "right", "wrong", "no_stream", "exists", "right"])
# None = a fresh id (most of the time), an int = reuse an earlier id (a duplicate).
event_id_choices = st.integers(0, 1000).map(lambda n: n if n % 8 == 7 else None)
record_specs = st.tuples(event_id_choices, st.sampled_from(EVENT_TYPES), st.binary(max_size=8))
write_specs = st.tuples(
    streams,
    expectations,
    st.lists(record_specs, max_size=4),
    st.sampled_from(["Order", "User"]),
    st.sampled_from(["", "acme"]),
)
# Each field is usually unrestricted, so that combined filters still match something.
read_filters = st.builds(
    ReadFilter,
    event_types=st.sampled_from(
        [None, None, frozenset({"Created"}), frozenset({"Renamed", "Closed"}), frozenset()]
    ),
    stream_types=st.sampled_from([None, None, frozenset({"Order"}), frozenset({"User"})]),
    stream_id_prefix=st.sampled_from([None, None, "", "a", "order", "注"]),
    tenant=st.sampled_from([None, None, "", "acme"]),
)
filters = st.one_of(st.none(), read_filters)


def open_url(backend: str, url: str) -> Backend:
    """Open ``url`` with the registered backend ``backend``."""
    return load_backend(backend).open(parse_url(url))


def _outcome(call: Callable[[Backend], Any], backend: Backend) -> tuple:
    try:
        return ("ok", call(backend))
    except EventualiError as exc:
        details = {k: getattr(exc, k) for k in ("stream_id", "expected", "actual", "event_id") if hasattr(exc, k)}
        return ("error", type(exc).__name__, details)


class BackendComparison(RuleBasedStateMachine):
    """Same commands to ``open_left()`` and ``open_right()``; every answer must match."""

    def open_left(self) -> Backend:
        raise NotImplementedError("subclass BackendComparison and open the first backend")

    def open_right(self) -> Backend:
        raise NotImplementedError("subclass BackendComparison and open the second backend")

    def __init__(self) -> None:
        super().__init__()
        self.tmp_dir = tempfile.mkdtemp(prefix="eventuali-differential-")
        self.left = self.open_left()
        self.right = self.open_right()
        self.caps = self.left.capabilities & self.right.capabilities
        self.used_ids: list[bytes] = []
        self.clock = 1_700_000_000_000_000

    def teardown(self) -> None:
        self.left.close()
        self.right.close()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def both(self, call: Callable[[Backend], Any]) -> tuple:
        left, right = _outcome(call, self.left), _outcome(call, self.right)
        assert left == right, f"backends disagree:\n left:  {left!r}\n right: {right!r}"
        return left

    # --- commands --------------------------------------------------------------

    def _record(self, spec: tuple) -> NewRecord:
        reuse, event_type, payload = spec
        if reuse is not None and self.used_ids:
            event_id = self.used_ids[reuse % len(self.used_ids)]
        else:
            event_id = uuid.uuid4().bytes
            self.used_ids.append(event_id)
        self.clock += 1
        return NewRecord(event_id, event_type, 1, self.clock, b'{"m":1}', payload)

    def _expected(self, stream_id: str, how: str, planned: dict[str, int]) -> int:
        current = planned.get(stream_id, self.left.stream_version(stream_id))
        return {
            "right": current,
            "wrong": current + 1,
            "any": ANY,
            "no_stream": NO_STREAM,
            "exists": STREAM_EXISTS,
        }[how]

    @initialize(sizes=st.lists(st.integers(1, 3), min_size=len(STREAMS), max_size=len(STREAMS)))
    def seed(self, sizes: list[int]) -> None:
        """Start from a store with data, so that reads and retention have something to act on."""
        writes = [
            StreamWrite(s, "Order" if s.startswith("order") else "User", NO_STREAM,
                        [self._record((None, EVENT_TYPES[i % 3], b"seed")) for i in range(n)],
                        "acme" if i % 2 else "")
            for i, (s, n) in enumerate(zip(STREAMS, sizes, strict=False))
        ]
        self.both(lambda b: b.append(writes))

    @rule(stream_id=streams, n=st.integers(1, 3), any_version=st.booleans())
    def append_to_one_stream(self, stream_id: str, n: int, any_version: bool) -> None:
        expected = ANY if any_version else self.left.stream_version(stream_id)
        new = [self._record((None, EVENT_TYPES[i % 3], b"x")) for i in range(n)]
        self.both(lambda b: b.append([StreamWrite(stream_id, "Order", expected, new, "acme")]))

    @rule(specs=st.lists(write_specs, max_size=3), checkpoint=st.one_of(st.none(), st.integers(0, 50)))
    def append(self, specs: list, checkpoint: int | None) -> None:
        planned: dict[str, int] = {}
        writes = []
        for stream_id, how, recs, stream_type, tenant in specs:
            expected = self._expected(stream_id, how, planned)
            new = [self._record(r) for r in recs]
            planned[stream_id] = planned.get(stream_id, self.left.stream_version(stream_id)) + len(new)
            writes.append(StreamWrite(stream_id, stream_type, expected, new, tenant))
        cp = ("proj", checkpoint) if checkpoint is not None and "checkpoints" in self.caps else None
        outcome = self.both(lambda b: b.append(writes, cp))
        event("append " + ("ok" if outcome[0] == "ok" else outcome[1]))

    @rule(
        stream_id=streams,
        from_version=st.integers(-1, 8),
        to_version=st.one_of(st.none(), st.integers(0, 8)),
        limit=st.one_of(st.none(), st.integers(0, 4)),
    )
    def read_stream(self, stream_id: str, from_version: int, to_version: int | None, limit: int | None) -> None:
        self.both(lambda b: b.read_stream(stream_id, from_version, to_version, limit))

    @rule(from_position=st.integers(-1, 12), limit=st.one_of(st.none(), st.integers(0, 6)), filter=filters)
    def read_all(self, from_position: int, limit: int | None, filter: ReadFilter | None) -> None:
        outcome = self.both(lambda b: b.read_all(from_position, limit, filter))
        event("read_all " + ("non-empty" if outcome[0] == "ok" and outcome[1] else "empty/error"))

    @rule(from_position=st.integers(0, 12), limit=st.one_of(st.none(), st.integers(1, 6)),
          filter=read_filters)
    def read_all_filtered(self, from_position: int, limit: int | None, filter: ReadFilter) -> None:
        self.both(lambda b: b.read_all(from_position, limit, filter))

    @rule(after=st.integers(-1, 40))
    def wait_for_without_waiting(self, after: int) -> None:
        self.both(lambda b: b.wait_for(after, 0))

    @precondition(lambda self: "snapshots" in self.caps)
    @rule(stream_id=streams, version=st.integers(0, 8), payload=st.binary(max_size=8))
    def save_snapshot(self, stream_id: str, version: int, payload: bytes) -> None:
        self.both(lambda b: b.save_snapshot(Snapshot(stream_id, version, 1, 7, payload)))

    @precondition(lambda self: "snapshots" in self.caps)
    @rule(stream_id=streams, max_version=st.one_of(st.none(), st.integers(-1, 8)))
    def load_snapshot(self, stream_id: str, max_version: int | None) -> None:
        self.both(lambda b: b.load_snapshot(stream_id, max_version))

    @precondition(lambda self: "snapshots" in self.caps)
    @rule(stream_id=streams, keep=st.integers(-1, 3))
    def prune_snapshots(self, stream_id: str, keep: int) -> None:
        self.both(lambda b: b.prune_snapshots(stream_id, keep))

    @precondition(lambda self: "checkpoints" in self.caps)
    @rule(name=st.sampled_from(["proj", "other", ""]), position=st.integers(-1, 50))
    def set_checkpoint(self, name: str, position: int) -> None:
        self.both(lambda b: b.set_checkpoint(name, position))

    @precondition(lambda self: "delete" in self.caps)
    @rule(stream_id=st.sampled_from(DELETABLE))
    def delete_stream(self, stream_id: str) -> None:
        self.both(lambda b: b.delete_stream(stream_id))

    @precondition(lambda self: "truncate" in self.caps)
    @rule(stream_id=streams, before=st.integers(0, 8))
    def truncate_stream(self, stream_id: str, before: int) -> None:
        self.both(lambda b: b.truncate_stream(stream_id, before))

    # --- what must always agree ------------------------------------------------

    @invariant()
    def same_state(self) -> None:
        self.both(lambda b: b.head())
        self.both(lambda b: b.read_all())
        self.both(lambda b: [b.stream_version(s) for s in STREAMS])
        if "checkpoints" in self.caps:
            self.both(lambda b: (b.get_checkpoint("proj"), b.get_checkpoint("other")))
