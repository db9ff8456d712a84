"""Threads: the GIL is released while C runs, wait_for wakes on commit, close wakes waiters."""

from __future__ import annotations

import threading
import time

import pytest
from native_helpers import write

from eventuali.errors import StoreClosedError
from eventuali.url import parse_url


def test_blocking_wait_for_in_one_thread_does_not_stop_another(c_provider, tmp_path):
    """A thread blocked in C (wait_for) must not hold the GIL: another thread keeps working."""
    waiting = c_provider.open(parse_url("memory://"))
    working = c_provider.open(parse_url(f"sqlite://{tmp_path / 'w.db'}"))
    started = threading.Event()
    result: dict[str, float] = {}

    def waiter():
        started.set()
        t0 = time.monotonic()
        result["head"] = waiting.wait_for(0, 3.0)
        result["waited"] = time.monotonic() - t0

    t = threading.Thread(target=waiter)
    t.start()
    started.wait()
    time.sleep(0.05)  # the waiter is inside eventuali_wait_for now
    t0 = time.monotonic()
    for i in range(50):
        working.append([write(f"s{i}", 0, 3)])
        assert len(working.read_stream(f"s{i}")) == 3
    busy = time.monotonic() - t0
    assert t.is_alive(), "the waiter returned early: nothing was committed on its store"
    assert busy < 2.5, f"50 appends took {busy:.2f}s while another thread waited in C"
    t.join()
    assert result["head"] == 0 and result["waited"] >= 2.9
    waiting.close()
    working.close()


def test_two_threads_run_c_at_the_same_time(c_provider):
    """Both threads are inside C at once: each sees the other's commit while blocked."""
    a = c_provider.open(parse_url("memory://"))
    b = c_provider.open(parse_url("memory://"))
    seen = {}

    def wait_then_write(mine, other, name):
        other.append([write(name, 0)])
        seen[name] = mine.wait_for(0, 5.0)

    ta = threading.Thread(target=wait_then_write, args=(a, b, "x"))
    tb = threading.Thread(target=wait_then_write, args=(b, a, "y"))
    ta.start()
    tb.start()
    ta.join(10)
    tb.join(10)
    assert seen == {"x": 1, "y": 1}
    a.close()
    b.close()


@pytest.mark.parametrize("scheme", ["memory", "sqlite"])
def test_wait_for_wakes_on_commit_not_on_timeout(c_provider, tmp_path, scheme):
    url = f"memory://wake-{id(tmp_path)}" if scheme == "memory" else f"sqlite://{tmp_path / 'e.db'}"
    reader = c_provider.open(parse_url(url))
    writer = c_provider.open(parse_url(url))  # a second handle on the same store
    out = {}

    def wait():
        t0 = time.monotonic()
        out["head"] = reader.wait_for(0, 10.0)
        out["waited"] = time.monotonic() - t0

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)
    writer.append([write("s", 0, 2)])
    t.join(10)
    assert out["head"] == 2
    assert out["waited"] < 2.0
    reader.close()
    writer.close()


def test_close_wakes_a_waiter_with_store_closed(c_provider):
    store = c_provider.open(parse_url("memory://"))
    out = {}

    def wait():
        try:
            store.wait_for(0, 10.0)
        except StoreClosedError as exc:
            out["exc"] = exc

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    store.close()
    t.join(5)
    assert isinstance(out.get("exc"), StoreClosedError)
    assert time.monotonic() - t0 < 2.0


def test_concurrent_appends_to_one_store_are_serialized(c_store):
    errors = []

    def worker(k):
        try:
            for i in range(20):
                c_store.append([write(f"t{k}-{i}", 0, 2)])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = c_store.read_all()
    assert [r.position for r in records] == list(range(1, 161))


def test_named_memory_store_outlives_its_handles(c_provider):
    """As with the reference engine: open, write, close, open again - the events are there."""
    url = parse_url(f"memory://outlives-{time.monotonic_ns()}")
    first = c_provider.open(url)
    first.append([write("s", 0, 2)])
    first.close()
    again = c_provider.open(url)
    assert [r.version for r in again.read_stream("s")] == [1, 2]
    again.close()
