"""PostgreSQL binary array parameters, built with a few C-level passes per column.

An append sends its records as arrays (one per column) to ``eventuali_append``.
psycopg's generic list dumper runs Python code for every element (about 1 µs
each, more than the rest of the append's client side together); these
builders produce the binary wire format directly - header, then length and
bytes per element - so the per-element work stays in C:

* fixed-width integers go through :mod:`array` (one conversion, one byte swap,
  one strided copy to put the 4-byte length words between the values), or for
  int8 columns of up to 512 elements through one cached :class:`struct.Struct`;
* byte strings of one length (event ids, and in practice most event types,
  metadata and stream names of one append) are one ``bytes.join`` with the
  length word as separator;
* columns where every element is the same (schema versions, event types)
  are one bytes multiplication;
* anything else interleaves ``map``-built length words with the elements in
  one list and joins it.

Measured on 100-element columns this cut the client side of an append from
about 540 µs to about 100 µs (bench/bench_postgres.py prints the append's
parts).  Each result is a ``bytes`` subclass whose dumper hands it to libpq
unchanged, with the array's type OID.
"""

from __future__ import annotations

import functools
import struct
import sys
from array import array
from collections.abc import Callable, Sequence

_HEADER = struct.Struct(">iiiii")  # ndim, flags (no NULLs), element OID, length, lower bound
_EMPTY = struct.Struct(">iii")  # ndim 0, flags, element OID
_I32 = struct.Struct(">i").pack
_I64 = struct.Struct(">q").pack
_LEN4 = _I32(4)
_LEN8 = _I32(8)
_SWAP = sys.byteorder == "little"
# The length words 4 and 8 as the native int32 whose bytes are their big-endian form.
_LEN4_NATIVE = int.from_bytes(_LEN4, sys.byteorder, signed=True)
_LEN8_NATIVE = int.from_bytes(_LEN8, sys.byteorder, signed=True)
if array("i").itemsize != 4 or array("q").itemsize != 8:  # pragma: no cover - exotic ABIs
    raise ImportError("eventuali's PostgreSQL arrays need 4-byte 'i' and 8-byte 'q' array items")


class _Array(bytes):
    """A binary-format array, ready for the wire."""

    element_oid = 0


class TextArray(_Array):
    element_oid = 25  # text; array OID 1009


class ByteaArray(_Array):
    element_oid = 17  # bytea; array OID 1001


class Int4Array(_Array):
    element_oid = 23  # int4; array OID 1007


class Int8Array(_Array):
    element_oid = 20  # int8; array OID 1016


_ARRAY_OIDS = {TextArray: 1009, ByteaArray: 1001, Int4Array: 1007, Int8Array: 1016}


def _wrap(cls: type[_Array], n: int, body: bytes) -> _Array:
    if n == 0:
        return cls(_EMPTY.pack(0, 0, cls.element_oid))
    return cls(_HEADER.pack(1, 0, cls.element_oid, n, 1) + body)


def _same(items: Sequence[object]) -> bool:
    """All elements equal (``list.count`` compares in C, identity first)."""
    return items.count(items[0]) == len(items)


def _var(items: Sequence[bytes]) -> bytes:
    """Length word + bytes per element."""
    n = len(items)
    if n == 0:
        return b""
    first = len(items[0])
    if list(map(len, items)).count(first) == n:
        sep = _I32(first)
        return sep + sep.join(items)
    parts: list[bytes] = [b""] * (2 * n)
    parts[0::2] = map(_I32, map(len, items))
    parts[1::2] = items
    return b"".join(parts)


def bytea_array(items: Sequence[bytes]) -> _Array:
    return _wrap(ByteaArray, len(items), _var(items))


def text_array(items: Sequence[str]) -> _Array:
    n = len(items)
    if n and _same(items):
        one = items[0].encode()
        return _wrap(TextArray, n, (_I32(len(one)) + one) * n)
    return _wrap(TextArray, n, _var(list(map(str.encode, items))))


def int4_array(items: Sequence[int]) -> _Array:
    n = len(items)
    if n == 0:
        return _wrap(Int4Array, 0, b"")
    if _same(items):
        return _wrap(Int4Array, n, (_LEN4 + _I32(items[0])) * n)
    values = array("i", items)  # OverflowError names nothing: callers check ranges first
    if _SWAP:
        values.byteswap()
    out = array("i", [_LEN4_NATIVE]) * (2 * n)
    out[1::2] = values
    return _wrap(Int4Array, n, out.tobytes())


_STRUCT_MAX = 512  # compiled formats kept for up to this many elements (~25 KB each at most)


@functools.lru_cache(maxsize=64)
def _int8_struct(n: int) -> Callable[..., bytes]:
    return struct.Struct(">" + "iq" * n).pack


def int8_array(items: Sequence[int]) -> _Array:
    n = len(items)
    if n == 0:
        return _wrap(Int8Array, 0, b"")
    if _same(items):
        return _wrap(Int8Array, n, (_LEN8 + _I64(items[0])) * n)
    if n <= _STRUCT_MAX:
        interleaved: list[int] = [8] * (2 * n)
        interleaved[1::2] = items
        return _wrap(Int8Array, n, _int8_struct(n)(*interleaved))
    values = array("q", items)
    if _SWAP:
        values.byteswap()
    words = array("i", values.tobytes())  # each value as two big-endian 4-byte words
    out = array("i", [_LEN8_NATIVE]) * (3 * n)
    out[1::3] = words[0::2]
    out[2::3] = words[1::2]
    return _wrap(Int8Array, n, out.tobytes())


def offsets_array(counts: Sequence[int]) -> _Array:
    """int4[] of 1..count for each count in turn (a record's index within its write)."""
    global _OFFSETS
    offsets = _OFFSETS  # one read: another thread may replace the cache meanwhile
    longest = max(counts, default=0)
    if len(offsets) < 8 * longest:
        offsets = int4_array(range(1, 2 * longest + 1))[20:]  # without the header
        if len(offsets) > len(_OFFSETS):
            _OFFSETS = offsets
    return _wrap(Int4Array, sum(counts), b"".join([offsets[: 8 * c] for c in counts]))


def repeat_array(counts: Sequence[int]) -> _Array:
    """int4[] of i repeated count_i times, i counting from 1 (a record's write)."""
    return _wrap(
        Int4Array, sum(counts), b"".join([(_LEN4 + _I32(i)) * c for i, c in enumerate(counts, 1)])
    )


_OFFSETS = b""  # the body of int4[] 1..k for the largest k asked so far

_registered = False


def register() -> None:
    """Teach psycopg (process-wide: these classes are eventuali's own) to send the arrays as is."""
    global _registered
    if _registered:
        return
    import psycopg
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    for cls, oid in _ARRAY_OIDS.items():
        dumper = type(
            f"{cls.__name__}Dumper",
            (Dumper,),
            {"format": Format.BINARY, "oid": oid, "dump": lambda self, obj: obj},
        )
        psycopg.adapters.register_dumper(cls, dumper)
    _registered = True
