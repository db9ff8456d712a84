"""``verify``: integrity checks over every record of a store, each a small function.

A check is a function ``check(ctx) -> generator`` that receives records with
``yield`` and yields back the :class:`Problem` s it sees; it gets ``None``
after the last record, to report what only the end shows (another check, e.g.
a hash chain, is one more function in :data:`CHECKS`).  One pass over the
global feed drives every check at once.

What a check can find is bounded by what is stored: without a hash over each
record, a flipped byte that leaves a payload valid JSON with the same envelope
(a digit of an amount, say) is indistinguishable from the value written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ..errors import EventualiError
from ..protocol import Backend
from ..records import Record
from ..serialization import EventCodec, RecordIdentity, to_micros
from ..snapshots import integrity_problem, unprotect
from .catalog import stream_snapshots
from .records import PAGE, decode_metadata, event_uuid, iso


@dataclass(frozen=True)
class Problem:
    check: str
    position: int | None
    """Global position of the record concerned (None for a stream-level problem)."""
    stream_id: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    backend: Backend
    codec: EventCodec
    anchor: Any = None
    """An ``eventuali.integrity.Anchor`` the chain must still hold (``hash_chain``)."""


CheckGen = Generator["list[Problem]", "Record | None", None]
Check = Callable[[Context], CheckGen]


def positions_increasing(ctx: Context) -> CheckGen:
    """Global positions strictly increase (a duplicated or reordered position is found)."""
    found: list[Problem] = []
    last = 0
    while (r := (yield found)) is not None:
        found = []
        if r.position <= last:
            what = "duplicates" if r.position == last else "is below"
            found.append(Problem("positions", r.position, r.stream_id,
                                 f"position {r.position} {what} the previous position {last}"))
        last = max(last, r.position)
    yield []


def versions_contiguous(ctx: Context) -> CheckGen:
    """Each stream's versions go up by one, and its last one is the stream's version."""
    found: list[Problem] = []
    last: dict[str, int] = {}
    while (r := (yield found)) is not None:
        found = []
        prev = last.get(r.stream_id)
        if prev is not None and r.version != prev + 1:
            found.append(Problem(
                "versions", r.position, r.stream_id,
                f"stream {r.stream_id!r} goes from version {prev} to {r.version}"
                + (f" (versions {prev + 1}..{r.version - 1} are missing)" if r.version > prev + 1
                   else "")))
        last[r.stream_id] = r.version if prev is None else max(prev, r.version)
    found = []
    for sid, v in last.items():
        current = ctx.backend.stream_version(sid)
        if current != v:
            found.append(Problem("versions", None, sid,
                                 f"stream {sid!r} has version {current} but its last stored "
                                 f"event has version {v}"))
    yield found


def payloads_decode(ctx: Context) -> CheckGen:
    """Metadata is JSON; each event payload unwraps (decrypts), parses, and matches its columns.

    The payload is the event's full JSON, envelope included: its event id,
    aggregate id, type and version, event type and version and timestamp must
    be the record's.  With the event
    class importable, the payload must also validate as that class.
    """
    found: list[Problem] = []
    while (r := (yield found)) is not None:
        found = []
        if r.stream_type == "$eventuali":
            continue  # the library's bookkeeping: not events
        try:
            decode_metadata(r.metadata)
        except ValueError as exc:
            found.append(Problem("payload", r.position, r.stream_id, f"metadata is not JSON: {exc}"))
        try:
            data = json.loads(ctx.codec.unwrap(
                r.payload, RecordIdentity(r.event_id, r.stream_id, r.version)))
            if ctx.codec.events.resolve(r.event_type) is not None:
                ctx.codec.decode(r)
        except (EventualiError, ValueError) as exc:
            found.append(Problem("payload", r.position, r.stream_id,
                                 f"payload does not decode: {exc}"))
            continue
        if not isinstance(data, dict):
            found.append(Problem("payload", r.position, r.stream_id,
                                 f"payload is JSON but not an object: {type(data).__name__}"))
            continue
        for field, got, want in _envelope_mismatches(r, data):
            found.append(Problem("payload", r.position, r.stream_id,
                                 f"payload says {field} {got!r}, the record {want!r}"))
    yield []


def _envelope_mismatches(r: Record, data: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Envelope fields of the payload JSON that disagree with the record's columns."""
    out = []
    for field, want in (("event_id", event_uuid(r.event_id)), ("aggregate_id", r.stream_id),
                        ("aggregate_type", r.stream_type), ("event_type", r.event_type),
                        ("event_version", r.schema_version), ("aggregate_version", r.version)):
        got = data.get(field)
        if got != want and not (field == "aggregate_version" and got is None):
            out.append((field, got, want))
    stamp = data.get("timestamp")
    try:
        ok = to_micros(datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))) == r.timestamp
    except ValueError:
        ok = False
    if not ok:
        out.append(("timestamp", stamp, iso(r.timestamp)))
    return out


def snapshots_consistent(ctx: Context) -> CheckGen:
    """Every snapshot is at or below its stream's version, decrypts, and passes its checksum."""
    streams: set[str] = set()
    while (r := (yield [])) is not None:
        streams.add(r.stream_id)
    found: list[Problem] = []
    for sid in sorted(streams):
        version = ctx.backend.stream_version(sid)
        for s in stream_snapshots(ctx.backend, sid):
            if s.version > version:
                found.append(Problem("snapshots", None, sid,
                                     f"snapshot at version {s.version} is ahead of the stream "
                                     f"(version {version})"))
            try:
                problem = integrity_problem(unprotect(s.payload, ctx.codec, sid, s.version))
            except EventualiError as exc:
                problem = f"does not decrypt: {exc}"
            if problem is not None:
                found.append(Problem("snapshots", None, sid,
                                     f"snapshot at version {s.version} {problem}"))
    yield found


def hash_chain(ctx: Context) -> CheckGen:
    """On a store kept with ``?integrity=chain``: the engine's own check of the hash chain
    (and of ``ctx.anchor``), each problem named ``chain:<kind>`` at its position."""
    while (yield []) is not None:
        pass
    if "integrity" not in ctx.backend.capabilities:
        if ctx.anchor is not None:
            yield [Problem("chain:none", None, None,
                           "an anchor was given but the store keeps no hash chain (it was not "
                           "created with ?integrity=chain): nothing can be checked against it")]
        else:
            yield []
        return
    from .. import integrity  # only for chained stores: the check runs in the engine

    yield [Problem(f"chain:{p.check}", p.position, p.stream_id or None, p.message)
           for p in integrity.verify(ctx.backend, anchor=ctx.anchor)]


CHECKS: list[Check] = [positions_increasing, versions_contiguous, payloads_decode,
                       snapshots_consistent, hash_chain]
"""The checks ``verify`` runs, in this order.  Append to add one."""


def verify(backend: Backend, codec: EventCodec, checks: Iterable[Check] = CHECKS,
           progress: Callable[[int], None] | None = None, anchor: Any = None) -> list[Problem]:
    """Run every check over every record; return the problems, in the order found."""
    ctx = Context(backend, codec, anchor)
    gens = [c(ctx) for c in checks]
    for g in gens:
        next(g)
    problems: list[Problem] = []
    pos = 1
    while True:
        batch = backend.read_all(pos, PAGE)
        for r in batch:
            for g in gens:
                problems += g.send(r)
        if progress is not None:
            progress(len(batch))
        if len(batch) < PAGE:
            break
        pos = batch[-1].position + 1
    for g in gens:
        problems += g.send(None)
    return problems
