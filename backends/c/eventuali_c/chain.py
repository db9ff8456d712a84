"""The hash-chain methods of :class:`~eventuali_c.store.CStore` (capability ``integrity``).

Entries and problems come back from the library as columns; problems are
turned into :class:`~eventuali.integrity.chain.ChainProblem` with the same
builder as the reference engine, so both engines report identical problems.
"""

from __future__ import annotations

from typing import Any

from eventuali.integrity.chain import CHECKS, ChainEntry, ChainProblem, problem

from . import _native

ffi, lib = _native.ffi, _native.lib


def _strings(blob: Any, offsets: Any, count: int) -> list[str]:
    if count == 0:
        return []
    offs = ffi.unpack(offsets, count + 1)
    data = ffi.unpack(ffi.cast("char *", blob), offs[-1]) if offs[-1] else b""
    return [data[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(count)]


def _ints(ptr: Any, count: int) -> list[int]:
    return ffi.unpack(ptr, count) if count else []


class ChainMethods:
    """Mixed into CStore: ``_h`` is the store handle, ``_check`` raises on a status."""

    _h: Any

    @staticmethod
    def _check(status: int) -> None:  # overridden by CStore
        raise NotImplementedError

    def _entries(self, status: int, out: Any) -> list[ChainEntry]:
        self._check(status)
        c = out[0]
        try:
            n = c.count
            ids = _strings(c.strings, c.string_offsets, n)
            digests = ffi.unpack(ffi.cast("char *", c.digests), 32 * n) if n else b""
            hashes = ffi.unpack(ffi.cast("char *", c.hashes), 32 * n) if n else b""
            return [
                ChainEntry(seq, kind, pos, sid, ver, digests[32 * i : 32 * i + 32], hashes[32 * i : 32 * i + 32])
                for i, (seq, kind, pos, sid, ver) in enumerate(
                    zip(
                        _ints(c.seqs, n), _ints(c.kinds, n), _ints(c.positions, n), ids,
                        _ints(c.versions, n), strict=True,
                    )
                )
            ]
        finally:
            lib.eventuali_chain_free(c)

    def chain_head(self) -> ChainEntry | None:
        out = ffi.new("eventuali_chain **")
        entries = self._entries(lib.eventuali_chain_head(self._h, out), out)
        return entries[0] if entries else None

    def read_chain(self, from_seq: int = 1, limit: int | None = None) -> list[ChainEntry]:
        from eventuali import record_validation as check

        check.check_int(from_seq, "from_seq", 1)
        check.check_optional_int(limit, "limit", 1)
        out = ffi.new("eventuali_chain **")
        status = lib.eventuali_read_chain(self._h, from_seq, -1 if limit is None else limit, out)
        return self._entries(status, out)

    def verify_chain(self) -> list[ChainProblem]:
        out = ffi.new("eventuali_chain_problems **")
        self._check(lib.eventuali_verify_chain(self._h, out))
        p = out[0]
        try:
            n = p.count
            ids = _strings(p.strings, p.string_offsets, n)
            return [
                problem(CHECKS[code], seq, kind, pos, ver, sid, other)
                for code, seq, kind, pos, ver, sid, other in zip(
                    _ints(p.checks, n), _ints(p.seqs, n), _ints(p.kinds, n), _ints(p.positions, n),
                    _ints(p.versions, n), ids, _ints(p.others, n), strict=True,
                )
            ]
        finally:
            lib.eventuali_chain_problems_free(p)
