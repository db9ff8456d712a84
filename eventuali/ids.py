"""Time-ordered event ids (UUID version 7, RFC 9562).

Why not uuid4: a unique index on random ids makes every insert touch a random
B-tree page, which on SQLite costs more than the rest of the insert (see
PERF-FACTS).  Version-7 ids start with a millisecond timestamp, so new ids land
at the right edge of the index.  The 12 bits after the version hold a
per-process counter (RFC 9562 "method 1" without the reset), so ids from one
process also sort in creation order within a millisecond, unless more than
4,096 are made in that millisecond; the last 62 bits are random.  No lock:
``next()`` on an ``itertools.count`` is atomic under the GIL.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from uuid import UUID, SafeUUID

_rand = random.Random()  # ids need uniqueness, not unpredictability: a fast PRNG, reseeded per process
_counter = itertools.count(_rand.getrandbits(12))
_VERSION_VARIANT = (0x7 << 76) | (0b10 << 62)

_new = object.__new__
_set = object.__setattr__
_UNKNOWN = SafeUUID.unknown  # enum member lookups through the class are slow
_time_ns = time.time_ns
_bits = _rand.getrandbits


def uuid7() -> UUID:
    """A new version-7 UUID."""
    value = (
        ((_time_ns() // 1_000_000) << 80)
        | ((next(_counter) & 0xFFF) << 64)
        | _VERSION_VARIANT
        | _bits(62)
    )
    # UUID.__init__ re-validates its argument in Python; the value is correct by
    # construction, so fill the slots directly (the same object UUID(int=value) makes).
    u = _new(UUID)
    _set(u, "int", value)
    _set(u, "is_safe", _UNKNOWN)
    return u


def _reseed_after_fork() -> None:
    global _counter
    _rand.seed()
    _counter = itertools.count(_rand.getrandbits(12))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_after_fork)
