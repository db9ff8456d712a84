"""Time-ordered event ids (UUID version 7, RFC 9562).

Why not uuid4: a unique index on random ids makes every insert touch a random
B-tree page, which on SQLite costs more than the rest of the insert (see
PERF-FACTS).  Version-7 ids start with a millisecond timestamp, so new ids land
at the right edge of the index.  Within one millisecond a process keeps a
monotonic 12-bit sequence (RFC 9562 "method 1") so ids from one process sort
in creation order; the remaining 62 bits are random.
"""

from __future__ import annotations

import random
import threading
import time
from uuid import UUID, SafeUUID

_lock = threading.Lock()
_last_ms = 0
_seq = 0
_rand = random.Random()  # ids need uniqueness, not unpredictability: a fast PRNG, reseeded per process

_new = object.__new__
_set = object.__setattr__


def uuid7() -> UUID:
    """A new version-7 UUID, monotonic within this process."""
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms > _last_ms:
            _last_ms = ms
            _seq = _rand.getrandbits(11)  # random start leaves room to count up
        else:
            _seq += 1
            if _seq > 0xFFF:  # sequence exhausted: borrow the next millisecond
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        seq = _seq
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | _rand.getrandbits(62)
    # UUID.__init__ re-validates its argument in Python; the value is correct by
    # construction, so fill the slots directly (same object UUID(int=value) makes).
    u = _new(UUID)
    _set(u, "int", value)
    _set(u, "is_safe", SafeUUID.unknown)
    return u


def _reseed_after_fork() -> None:
    global _last_ms, _seq
    _rand.seed()
    _last_ms = 0
    _seq = 0


if hasattr(__import__("os"), "register_at_fork"):
    __import__("os").register_at_fork(after_in_child=_reseed_after_fork)
