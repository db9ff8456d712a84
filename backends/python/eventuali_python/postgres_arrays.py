"""PostgreSQL binary array parameters, built with a few C-level passes per column.

An append sends its records as arrays (one per column) to ``eventuali_append``.
psycopg's generic list dumper runs Python code for every element (about 1 µs
each, more than the rest of the append's client side together); these
builders produce the binary wire format directly - header, then length and
bytes per element - with ``map``/``zip``/``b"".join``, so the per-element work
stays in C.  Each result is a ``bytes`` subclass whose dumper hands it to
libpq unchanged, with the array's type OID.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import chain, repeat

_HEADER = struct.Struct(">iiiii")  # ndim, flags (no NULLs), element OID, length, lower bound
_EMPTY = struct.Struct(">iii")  # ndim 0, flags, element OID
_I32 = struct.Struct(">i").pack
_I64 = struct.Struct(">q").pack
_LEN4 = _I32(4)
_LEN8 = _I32(8)


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


def _var(items: Sequence[bytes]) -> bytes:
    return b"".join(chain.from_iterable(zip(map(_I32, map(len, items)), items, strict=True)))


def bytea_array(items: Sequence[bytes]) -> _Array:
    return _wrap(ByteaArray, len(items), _var(items))


def text_array(items: Sequence[str]) -> _Array:
    return _wrap(TextArray, len(items), _var(list(map(str.encode, items))))


def int4_array(items: Sequence[int]) -> _Array:
    return _wrap(Int4Array, len(items), b"".join(chain.from_iterable(zip(repeat(_LEN4), map(_I32, items)))))


def int8_array(items: Sequence[int]) -> _Array:
    return _wrap(Int8Array, len(items), b"".join(chain.from_iterable(zip(repeat(_LEN8), map(_I64, items)))))


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
