"""Conformance tests: concurrent writers, and the atomicity of the optimistic check.

The guarantee under test: an append's expected-version check and its write are
one atomic step.  Racers run in rounds: every racer reads the stream's version
``v``, all wait at a barrier, then all append one record with ``expected = v``.
Exactly one of them may be accepted, and its record must land at version
``v + 1``; every other one must raise ``OptimisticConcurrencyError(stream, v,
actual)`` and write nothing.  An engine that drops its lock between the check
and the write accepts several appends of one round (the later ones land at
``v + 2``, ``v + 3`` …) and fails here, even though nothing is lost.

The racers are threads (sharing one handle, and - where every open of the URL
reaches the same data - each with a handle of its own), and processes when the
engine declares ``multi_process``.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from eventuali.errors import OptimisticConcurrencyError
from eventuali.protocol import Backend
from eventuali.registry import load as load_backend
from eventuali.url import parse_url

from .fixtures import BackendFixtures, StoreHandles, new_record, read_everything, write
from .marks import requires
from .targets import Target

RACED = "raced"
BARRIER_TIMEOUT = 60.0  # seconds: a racer that died breaks the barrier instead of hanging the rest


def race_rounds(backend: Backend, rounds: int, barrier: Any) -> list[tuple[int, bytes, tuple | None]]:
    """One racer: ``rounds`` times read the version, meet the others, append with it.

    Returns ``(expected, event_id, None)`` for an accepted append and
    ``(expected, event_id, (stream_id, expected, actual))`` for a refused one.
    """
    out: list[tuple[int, bytes, tuple | None]] = []
    for _ in range(rounds):
        barrier.wait()  # the previous round's appends have all returned
        expected = backend.stream_version(RACED)
        barrier.wait()  # every racer has read the same version; nobody has written yet
        rec = new_record("Raced")
        try:
            backend.append([write(RACED, expected, [rec])])
        except OptimisticConcurrencyError as exc:
            out.append((expected, rec.event_id, (exc.stream_id, exc.expected, exc.actual)))
        else:
            out.append((expected, rec.event_id, None))
    return out


def _race_in_child(backend_name: str, url: str, rounds: int, barrier: Any, results: Any) -> None:
    """Child process body: open the store, race, send the outcomes back (or the error)."""
    try:
        backend = load_backend(backend_name).open(parse_url(url))
        try:
            results.put(("ok", race_rounds(backend, rounds, barrier)))
        finally:
            backend.close()
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        barrier.abort()
        results.put(("error", f"{type(exc).__name__}: {exc}"))


@contextmanager
def _frequent_thread_switches() -> Iterator[None]:
    """Switch threads far more often than the default 5 ms, so that a gap between an
    engine's check and its write is hit by another thread instead of hidden by the GIL."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def check_rounds(backend: Backend, outcomes: list[list[tuple]], rounds: int, where: str) -> None:
    """Every round: exactly one append accepted, landed at expected + 1; the rest refused."""
    stored = {r.event_id: r for r in backend.read_stream(RACED)}
    by_round: dict[int, list[tuple]] = {}
    for racer in outcomes:
        assert len(racer) == rounds, f"a racer ({where}) ran {len(racer)} of {rounds} rounds"
        for expected, event_id, refused in racer:
            by_round.setdefault(expected, []).append((event_id, refused))
    for expected, attempts in sorted(by_round.items()):
        accepted = [eid for eid, refused in attempts if refused is None]
        for eid in accepted:
            landed = stored[eid].version if eid in stored else None
            assert landed == expected + 1, (
                f"append is not atomic ({where}): an append accepted with expected_version="
                f"{expected} landed at version {landed}, not {expected + 1}; the version check "
                "and the write must happen under one lock/transaction"
            )
        assert len(accepted) == 1, (
            f"append is not atomic ({where}): {len(accepted)} of {len(attempts)} concurrent "
            f"appends with expected_version={expected} were accepted; exactly one may be"
        )
        for eid, refused in attempts:
            if refused is not None:
                assert refused[:2] == (RACED, expected) and refused[2] > expected, (
                    f"a refused append must raise OptimisticConcurrencyError(stream, expected, "
                    f"actual > expected); got {refused} for expected_version={expected} ({where})"
                )
                assert eid not in stored, f"a refused append wrote its record ({where})"
    assert backend.stream_version(RACED) == rounds == len(stored), (
        f"after {rounds} rounds of racing appends ({where}) the stream holds {len(stored)} "
        f"records at version {backend.stream_version(RACED)}; expected {rounds}"
    )
    assert [r.version for r in backend.read_stream(RACED)] == list(range(1, rounds + 1))
    positions = [r.position for r in read_everything(backend)]
    assert positions == sorted(set(positions)), "read_all positions must rise strictly"


class ConcurrencyContract(BackendFixtures):
    """Concurrent appends: one winner per expected version, the others refused."""

    def test_concurrent_writers_share_one_backend(self, backend: Backend) -> None:
        self._race_threads([backend] * 4, backend, 100, "4 threads sharing one handle")

    def test_concurrent_writers_in_threads(
        self, backend: Backend, open_store: StoreHandles, store_url: str
    ) -> None:
        if not self._shares_data_between_opens(backend, store_url):
            pytest.skip("each open of this URL is a separate store; threads share one backend")
        handles = [open_store() for _ in range(3)]
        self._race_threads(handles, backend, 60, "3 threads, one handle each")

    @requires("multi_process")
    def test_concurrent_writers_in_processes(
        self, backend: Backend, eventuali_target: Target, store_url: str
    ) -> None:
        if not self.opened_through_the_registry():
            pytest.skip("make_backend is overridden: child processes can only open through the registry")
        racers, rounds = 3, 12
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(racers, timeout=BARRIER_TIMEOUT)
        results = ctx.Queue()
        children = [
            ctx.Process(target=_race_in_child,
                        args=(eventuali_target.backend, store_url, rounds, barrier, results))
            for _ in range(racers)
        ]
        for child in children:
            child.start()
        try:
            answers = [results.get(timeout=BARRIER_TIMEOUT * 3) for _ in children]
        finally:
            for child in children:
                child.join(BARRIER_TIMEOUT)
        errors = [detail for kind, detail in answers if kind == "error"]
        assert not errors, f"a racing process failed: {errors}"
        check_rounds(backend, [detail for _, detail in answers], rounds, f"{racers} processes")

    # helpers

    def _shares_data_between_opens(self, backend: Backend, store_url: str) -> bool:
        return ":memory:" not in store_url and (
            "persistent" in backend.capabilities or store_url.startswith("memory://")
        )

    def _race_threads(self, racers: list[Backend], reader: Backend, rounds: int, where: str) -> None:
        barrier = threading.Barrier(len(racers), timeout=BARRIER_TIMEOUT)
        outcomes: list[list[tuple]] = []
        errors: list[BaseException] = []

        def body(handle: Backend) -> None:
            try:
                outcomes.append(race_rounds(handle, rounds, barrier))
            except BaseException as exc:  # noqa: BLE001 - reported below
                barrier.abort()
                errors.append(exc)

        threads = [threading.Thread(target=body, args=(h,)) for h in racers]
        with _frequent_thread_switches():
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert not errors, f"a racing thread failed: {errors!r}"
        check_rounds(reader, outcomes, rounds, where)
