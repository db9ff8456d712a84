"""PerformanceProfiler reports where time is spent working, and honours sampling_frequency.

A save loop on an async SQLite store spends most of its wall time with the
event loop waiting in its selector for the worker thread: that is idle time,
reported as such and never as a bottleneck.  Run on both engines.
"""

from __future__ import annotations

import pytest

from eventuali import ConfigurationError, Event, EventStore
from eventuali.observability import PerformanceProfiler
from eventuali.observability.sampler import is_idle


class ProfiledSaved(Event):
    amount: int


def _hot_loop(n):
    return sum(i * i for i in range(n))


@pytest.fixture(params=["python", "c"])
async def store(request, tmp_path):
    s = await EventStore.create(f"sqlite://{tmp_path / 'prof.db'}", backend=request.param)
    yield s
    await s.close()


def _idle_names():
    return ("epoll", "select", "_read_from_self", "acquire", "sleep", "wait")


@pytest.mark.parametrize("sampling", [None, 1000], ids=["cprofile", "sampling"])
async def test_a_save_loop_reports_working_time_not_the_event_loop_waiting(store, sampling, tmp_path):
    config = {"profile_type": "cpu"}
    if sampling:
        config["sampling_frequency"] = sampling
    profiler = PerformanceProfiler(config)
    async with profiler.profile_context("event_processing"):
        for i in range(150):
            await store.save(ProfiledSaved(amount=i))
        _hot_loop(400_000)  # some real work of our own
    analysis = await profiler.analyze()
    # The loop waits for the worker thread's commits: that is idle time, and reported.
    assert analysis.idle_time_ms > 0
    assert analysis.idle_time_ms <= analysis.wall_time_ms * 1.05
    names = [b.function for b in analysis.bottlenecks]
    assert names, "some working time is always reported"
    assert not [n for n in names if any(w in n for w in _idle_names())], names
    assert any("_hot_loop" in n or "<genexpr>" in n for n in names), names
    assert sum(b.percent_of_total for b in analysis.bottlenecks) <= 100.0 + 1e-6
    if sampling:
        assert analysis.samples > 0 and analysis.function_calls is None
        assert all(b.sampled and "samples" in str(b) for b in analysis.bottlenecks)
    else:
        assert analysis.samples is None and analysis.function_calls > 150
    svg = (await profiler.generate_flame_graph(tmp_path / "p.svg")).read_text()
    assert "_hot_loop" in svg


def test_is_idle_knows_waits_from_work():
    assert is_idle(("~", 0, "<method 'poll' of 'select.epoll' objects>"))
    assert is_idle(("/usr/lib/python3.11/selectors.py", 451, "select"))
    assert is_idle(("~", 0, "<method 'acquire' of '_thread.lock' objects>"))
    assert not is_idle(("/x/eventuali/store.py", 10, "save"))
    assert not is_idle(("~", 0, "<built-in method builtins.sum>"))


def test_sampling_frequency_sets_how_often_the_stack_is_sampled():
    counts = {}
    for hz in (20, 1000):
        profiler = PerformanceProfiler({"profile_type": "cpu", "sampling_frequency": hz})
        with profiler.profile_context(f"hz{hz}"):
            _hot_loop(2_000_000)
        counts[hz] = profiler.analysis(f"hz{hz}").samples
    assert 0 < counts[20] < counts[1000]


def test_sampling_frequency_is_checked():
    for bad in (0, -5, 20_000, "fast", True):
        with pytest.raises(ConfigurationError, match=r"sampling_frequency=.* is invalid; give samples per "
                                                     r"second from 1 to 10000"):
            PerformanceProfiler({"sampling_frequency": bad})
