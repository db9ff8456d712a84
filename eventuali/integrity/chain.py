"""The hash chain of ``?integrity=chain`` stores: canonical bytes, hashing, and the reference check.

Every engine computes exactly these bytes (the C engine in ``src/chain.c``;
``eventuali/testing/vectors/chain_v1.json`` pins them).  Integers are
big-endian; ``str`` is ``u32 length || UTF-8 bytes``; ``blob`` is ``u32
length || bytes``.  SHA-256 throughout (measured faster than BLAKE2 on this
hardware, both in ``hashlib`` and in OpenSSL, because the CPU has SHA
instructions).

``digest`` of an event record (everything stored that a header does not name)::

    SHA-256( event_id[16] || i64 schema_version || i64 timestamp ||
             str stream_type || str event_type || str tenant ||
             blob metadata || blob payload )

``hash`` of chain entry ``seq`` (``prev`` is entry ``seq-1``'s hash; 32 zero
bytes before the first entry)::

    SHA-256( prev[32] || u8 kind || i64 position || i64 version ||
             str stream_id || digest[32] )

Kinds: ``1`` an appended event (position, version and stream id of the
record); ``2`` ``delete_stream`` (position = the store's head when it ran,
version 0); ``3`` ``truncate_stream`` (position = head, version = one past the
newest removed version).  Retention entries are written only when records go.  Retention entries carry 32 zero bytes as digest.  The
chain is insert-only: deleting or truncating removes records but keeps their
entries (hashes reveal nothing of the data) and adds a retention entry, so a
legitimately removed record is told apart from a dropped one.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import NamedTuple

from ..records import Record

KIND_EVENT = 1
KIND_DELETE = 2
KIND_TRUNCATE = 3
KIND_NAMES = {KIND_EVENT: "event", KIND_DELETE: "delete_stream", KIND_TRUNCATE: "truncate_stream"}
GENESIS = bytes(32)
"""The ``prev`` hash of the first entry."""
NO_DIGEST = bytes(32)
"""The digest of a retention entry."""
MODE = "chain"
"""The value of the ``integrity`` URL option and of the store's ``integrity`` meta entry."""

_sha256 = hashlib.sha256
_body_head = struct.Struct(">qqI").pack
_u32 = struct.Struct(">I").pack
_link_head = struct.Struct(">Bqq").pack


class ChainEntry(NamedTuple):
    """One stored chain entry (what ``read_chain`` returns)."""

    seq: int
    """1, 2, … in commit order, no gaps."""
    kind: int
    position: int
    stream_id: str
    version: int
    digest: bytes
    hash: bytes


class ChainProblem(NamedTuple):
    """One finding of a chain check; ``check`` names the kind, ``message`` says what and where."""

    seq: int
    """The chain entry concerned (0 when the problem is a record with no entry)."""
    position: int
    """The event position concerned (the store's head at the time, for retention entries)."""
    stream_id: str
    check: str
    """``broken_link``, ``missing_entries``, ``altered``, ``missing``, ``unchained``,
    ``out_of_order``, ``unknown_kind``, ``anchor_missing``, ``anchor_mismatch``,
    ``anchor_signature``."""
    message: str


def event_digest(
    event_id: bytes,
    stream_type: str,
    event_type: str,
    schema_version: int,
    timestamp: int,
    tenant: str,
    metadata: bytes,
    payload: bytes,
) -> bytes:
    """The ``digest`` of one event record's body (see the module docstring)."""
    st = stream_type.encode()
    et = event_type.encode()
    tn = tenant.encode()
    return _sha256(
        b"".join(
            (
                event_id,
                _body_head(schema_version, timestamp, len(st)),
                st,
                _u32(len(et)),
                et,
                _u32(len(tn)),
                tn,
                _u32(len(metadata)),
                metadata,
                _u32(len(payload)),
                payload,
            )
        )
    ).digest()


def record_digest(r: Record) -> bytes:
    """:func:`event_digest` of a stored :class:`~eventuali.records.Record`."""
    return event_digest(r[1], r[3], r[5], r[6], r[7], r[8], r[9], r[10])


def link(prev: bytes, kind: int, position: int, version: int, stream_id: str, digest: bytes) -> bytes:
    """The ``hash`` of a chain entry that follows ``prev`` (see the module docstring)."""
    sid = stream_id.encode()
    return _sha256(
        # kind & 0xFF: a stored out-of-range kind is hashed as the C engine does, and reported
        b"".join((prev, _link_head(kind & 0xFF, position, version), _u32(len(sid)), sid, digest))
    ).digest()


def event_entries(prev: bytes, seq: int, records: Iterable[Record]) -> list[ChainEntry]:
    """Chain entries for ``records`` (new, in position order), the first one numbered ``seq``."""
    out: list[ChainEntry] = []
    for r in records:
        digest = record_digest(r)
        prev = link(prev, KIND_EVENT, r[0], r[4], r[2], digest)
        out.append(ChainEntry(seq, KIND_EVENT, r[0], r[2], r[4], digest, prev))
        seq += 1
    return out


def retention_entry(
    prev: bytes, seq: int, kind: int, head: int, stream_id: str, version: int
) -> ChainEntry:
    """The chain entry recording a ``delete_stream`` or ``truncate_stream``."""
    return ChainEntry(
        seq, kind, head, stream_id, version, NO_DIGEST,
        link(prev, kind, head, version, stream_id, NO_DIGEST),
    )


CHECKS = (
    "",
    "broken_link",
    "missing_entries",
    "altered",
    "missing",
    "unchained",
    "out_of_order",
    "unknown_kind",
)
"""Problem codes as native engines return them (index = code)."""


def problem(
    check: str, seq: int, kind: int, position: int, version: int, stream_id: str, other: int = 0
) -> ChainProblem:
    """A :class:`ChainProblem` with its message; every engine builds problems with this."""
    if kind == KIND_EVENT or check == "unchained":
        where = f"position {position} (stream {stream_id!r} version {version}"
        where += f", chain entry {seq})" if seq else ")"
    else:
        what = KIND_NAMES.get(kind, f"kind {kind}")
        where = f"chain entry {seq} ({what} of stream {stream_id!r})"
    text = {
        "broken_link": f"{where} does not chain from the entry before it: this entry or an "
        "earlier one was rewritten",
        "missing_entries": f"chain entries {other}..{seq - 1} are missing before {where}",
        "altered": f"the record at {where} differs from what was appended",
        "missing": f"the record at {where} is gone, and no delete_stream or truncate_stream "
        "entry after it removed it",
        "unchained": f"the record at {where} has no chain entry: it was inserted outside the "
        "engine",
        "out_of_order": f"{where} comes after position {other} in the chain",
        "unknown_kind": f"{where} has an unknown kind",
    }[check]
    return ChainProblem(seq, position, stream_id, check, text)


_MALFORMED = (TypeError, ValueError, AttributeError, OverflowError, struct.error)


def _digest_or_none(rec: Record) -> bytes | None:
    try:
        return record_digest(rec)
    except _MALFORMED:  # e.g. a payload stored as TEXT: it cannot be what was appended
        return None


def verify_entries(entries: Iterable[ChainEntry], records: Iterable[Record]) -> list[ChainProblem]:
    """Check a chain against the stored records; every problem found, ordered by position.

    ``entries`` in ``seq`` order and ``records`` in position order (both may be
    lazy).  Every entry must follow its predecessor's stored hash; every event
    entry's record must be present and hash to the entry's digest, or have been
    removed by a *later* retention entry; every record must have an entry.
    An empty list means the chain is intact.
    """
    problems: list[ChainProblem] = []
    add = problems.append
    prev = GENESIS
    expected_seq = 1
    last_position = 0
    missing: list[ChainEntry] = []
    deleted: dict[str, int] = {}
    truncated: dict[str, list[tuple[int, int]]] = {}
    rec_iter = iter(records)
    rec = next(rec_iter, None)
    for e in entries:
        seq, kind, position, stream_id, version, digest, stored = e
        if seq != expected_seq:
            add(problem("missing_entries", seq, kind, position, version, stream_id, expected_seq))
        try:
            linked = link(prev, kind, position, version, stream_id, digest) == stored
        except _MALFORMED:  # a value of the wrong type, written behind the engine's back
            linked = False
        if not linked:
            add(problem("broken_link", seq, kind, position, version, stream_id))
        prev = stored  # go on from the stored hash, so that later damage is located too
        expected_seq = seq + 1
        if kind == KIND_EVENT:
            if position <= last_position:
                add(problem("out_of_order", seq, kind, position, version, stream_id, last_position))
            else:
                last_position = position
            while rec is not None and rec[0] < position:
                add(problem("unchained", 0, KIND_EVENT, rec[0], rec[4], rec[2]))
                rec = next(rec_iter, None)
            if rec is not None and rec[0] == position:
                if rec[2] != stream_id or rec[4] != version or _digest_or_none(rec) != digest:
                    add(problem("altered", seq, kind, position, version, stream_id))
                rec = next(rec_iter, None)
            else:
                missing.append(e)
        elif not linked and kind in (KIND_DELETE, KIND_TRUNCATE):
            pass  # a retention entry that does not chain excuses nothing
        elif kind == KIND_DELETE:
            deleted[stream_id] = seq
        elif kind == KIND_TRUNCATE:
            truncated.setdefault(stream_id, []).append((seq, version))
        else:
            add(problem("unknown_kind", seq, kind, position, version, stream_id))
    while rec is not None:
        add(problem("unchained", 0, KIND_EVENT, rec[0], rec[4], rec[2]))
        rec = next(rec_iter, None)
    for e in missing:
        if deleted.get(e.stream_id, 0) > e.seq or any(
            s > e.seq and e.version < before for s, before in truncated.get(e.stream_id, ())
        ):
            continue
        add(problem("missing", e.seq, e.kind, e.position, e.version, e.stream_id))
    problems.sort(key=lambda p: (p.position, p.seq, CHECKS.index(p.check)))
    return problems
