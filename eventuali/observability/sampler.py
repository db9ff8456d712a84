"""A statistical (sampling) profiler for ``PerformanceProfiler({"sampling_frequency": hz})``,
and the list of functions that are waiting rather than working.

The sampler is a daemon thread that wakes ``hz`` times a second and records
the Python stack of the profiled thread (``sys._current_frames``); unlike
cProfile it does not slow every call down.  While it runs, the interpreter's
switch interval is lowered to the sampling interval so that busy code is
sampled as often as waiting code (restored on stop).
The samples become the same pstats-style table cProfile gives (own time,
cumulative time, caller edges), so analysis and flame graphs work on both;
calls are counted as samples.

Idle functions - the event loop blocked in its selector, a thread waiting on
a lock or a condition, ``time.sleep`` - are where a thread waits for
something else (a worker thread's commit, a socket).  The profiler reports
their time as idle and leaves them out of the bottlenecks, which are about
where time is spent working.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections import Counter, defaultdict
from types import FrameType

from .flamegraph import Func

_IDLE_BUILTINS = (
    "<method 'poll' of 'select.epoll' objects>",
    "<method 'poll' of 'select.poll' objects>",
    "<method 'control' of 'select.kqueue' objects>",
    "<built-in method select.select>",
    "<method 'acquire' of '_thread.lock' objects>",
    "<method 'acquire' of '_thread.RLock' objects>",
    "<built-in method time.sleep>",
)
_IDLE_PYTHON = {("selectors.py", "select"), ("threading.py", "wait"), ("queue.py", "get"),
                ("threading.py", "_wait_for_tstate_lock"),
                ("selector_events.py", "_read_from_self")}  # the loop draining its wake-up pipe


def is_idle(func: Func) -> bool:
    """True for a function whose own time is waiting (selector poll, lock, sleep)."""
    file, _line, name = func
    if file == "~":
        return name in _IDLE_BUILTINS
    return (file.rsplit("/", 1)[-1], name) in _IDLE_PYTHON


def _key(frame: FrameType) -> Func:
    code = frame.f_code
    return (code.co_filename, code.co_firstlineno, code.co_name)


class StackSampler:
    """Samples one thread's stack ``frequency`` times a second until :meth:`stop`."""

    def __init__(self, frequency: float, thread_id: int | None = None) -> None:
        self.interval = 1.0 / frequency
        self.thread_id = thread_id if thread_id is not None else threading.get_ident()
        self.samples: Counter[tuple[Func, ...]] = Counter()
        """Samples per distinct stack (outermost frame first)."""
        self.seconds: dict[tuple[Func, ...], float] = {}
        """Time per stack: each sample stands for the time since the one before, so a sampler
        that falls behind (no GIL, a busy host) still accounts for the whole wall time."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eventuali-sampler", daemon=True)

    def start(self) -> None:
        # The sampler needs the GIL to look at the other thread, and a thread running
        # Python code hands the GIL over only every switch interval (5 ms by default):
        # without this, busy code would be sampled at 200 Hz at most while waits (which
        # release the GIL) were sampled at the full rate - a bias towards idle time.
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, self.interval))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        sys.setswitchinterval(self._switch)

    def _run(self) -> None:
        next_at = last = time.perf_counter()
        while not self._stop.is_set():
            frame = sys._current_frames().get(self.thread_id)
            stack: list[Func] = []
            while frame is not None:
                stack.append(_key(frame))
                frame = frame.f_back
            now = time.perf_counter()
            if stack:
                key = tuple(reversed(stack))  # outermost first
                self.samples[key] += 1
                self.seconds[key] = self.seconds.get(key, 0.0) + now - last
            last = now
            next_at += self.interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.perf_counter()  # fell behind (GIL held elsewhere): do not burst

    def stats(self) -> dict[Func, tuple]:
        """pstats-style ``{func: (cc, nc, tt, ct, callers)}``: nc counts samples, times in seconds."""
        own: dict[Func, float] = defaultdict(float)
        inclusive: dict[Func, float] = defaultdict(float)
        hits: Counter[Func] = Counter()
        edges: dict[Func, dict[Func, float]] = defaultdict(lambda: defaultdict(float))
        for stack, t in self.seconds.items():
            own[stack[-1]] += t
            for func in set(stack):
                inclusive[func] += t
                hits[func] += self.samples[stack]
            for caller, callee in itertools.pairwise(stack):
                edges[callee][caller] += t
        out: dict[Func, tuple] = {}
        for func, t in inclusive.items():
            callers = {c: (0, 0, 0.0, ct) for c, ct in edges.get(func, {}).items()}
            out[func] = (hits[func], hits[func], own[func], t, callers)
        return out
