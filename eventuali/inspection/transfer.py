"""Moving a store's records: the JSON-lines export format, import, copy, and the store digest.

Export format (one JSON object a line, documented in docs/cli.md)::

    {"kind": "eventuali-export", "format_version": 1, "head": 1234}
    {"kind": "event", "position": 1, "event_id": "<32 hex>", "stream_id": "...",
     "stream_type": "...", "version": 1, "event_type": "...", "schema_version": 1,
     "timestamp": <microseconds>, "tenant": "", "metadata": "<base64>", "payload": "<base64>"}
    ...                                   (every event, in global order)
    {"kind": "snapshot", "stream_id": "...", "version": 3, "schema_version": 1,
     "timestamp": <microseconds>, "payload": "<base64>"}
    {"kind": "checkpoint", "name": "...", "position": 17}
    {"kind": "end", "events": 1234, "digest": "<sha256 hex>"}

Bytes travel as base64, so payloads (compressed, encrypted or JSON) arrive
exactly.  Positions cannot be chosen by a writer (the target store hands them
out), so they are renumbered densely where the source has gaps (deleted
streams); checkpoints are moved to the matching new position, and the digest
covers everything but positions.

Writes are batched: a batch is one ``append`` of consecutive records, cut
before a stream would appear in it twice, so each write's expected version is
exact and global order is kept.  ``copy`` stores its own checkpoint
(:data:`COPY_CHECKPOINT`) in the same ``append`` as each batch, which is what
makes it resumable after a kill: the target holds exactly the batches whose
checkpoint it holds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from ..errors import InvalidInputError, OptimisticConcurrencyError
from ..protocol import Backend
from ..records import NewRecord, Record, Snapshot, StreamWrite
from .catalog import ScanCatalog, stream_snapshots
from .records import iter_records

FORMAT_VERSION = 1
COPY_CHECKPOINT = "$copy"
"""Checkpoint a copy keeps in its target: the last source position copied."""
BATCH = 2_000
MERGE_POLICIES = ("refuse", "skip-existing")

Progress = Callable[[int], None]


class Digest:
    """SHA-256 over every record's fields but its position, in global order."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.count = 0

    def add(self, r: Record) -> None:
        parts = (r.event_id, r.stream_id.encode(), r.stream_type.encode(), r.event_type.encode(),
                 r.tenant.encode(), r.metadata, r.payload)
        self.h.update(struct.pack("<qqq7I", r.version, r.schema_version, r.timestamp,
                                  *map(len, parts)))
        self.h.update(b"".join(parts))
        self.count += 1

    def hexdigest(self) -> str:
        return self.h.hexdigest()


# --- the JSON-lines format ------------------------------------------------------------


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def event_line(r: Record) -> dict[str, Any]:
    return {"kind": "event", "position": r.position, "event_id": r.event_id.hex(),
            "stream_id": r.stream_id, "stream_type": r.stream_type, "version": r.version,
            "event_type": r.event_type, "schema_version": r.schema_version,
            "timestamp": r.timestamp, "tenant": r.tenant, "metadata": _b64(r.metadata),
            "payload": _b64(r.payload)}


def export(backend: Backend, catalog: ScanCatalog, out: IO[str], *, snapshots: bool = True,
           checkpoints: bool = True, checkpoint_names: Iterable[str] = (),
           progress: Progress | None = None) -> Digest:
    """Write the whole store to ``out`` in the export format; return the events' digest.

    Checkpoints are those the catalog finds plus ``checkpoint_names``.
    """
    def line(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")

    head = backend.head()
    line({"kind": "eventuali-export", "format_version": FORMAT_VERSION, "head": head})
    digest = Digest()
    streams: dict[str, None] = {}
    for r in iter_records(backend, to_position=head):
        line(event_line(r))
        digest.add(r)
        streams[r.stream_id] = None
        if progress is not None:
            progress(1)
    if snapshots:
        for sid in streams:
            for s in stream_snapshots(backend, sid):
                line({"kind": "snapshot", "stream_id": s.stream_id, "version": s.version,
                      "schema_version": s.schema_version, "timestamp": s.timestamp,
                      "payload": _b64(s.payload)})
    if checkpoints:
        for name in sorted(catalog.checkpoint_names(checkpoint_names)):
            pos = backend.get_checkpoint(name)
            if pos is not None and name != COPY_CHECKPOINT:
                line({"kind": "checkpoint", "name": name, "position": pos})
    line({"kind": "end", "events": digest.count, "digest": digest.hexdigest()})
    return digest


def _bad(lineno: int, why: str) -> InvalidInputError:
    return InvalidInputError(f"export file line {lineno}: {why}; is it an 'eventuali export' file?")


def read_export(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The objects of an export file with their line numbers, header checked."""
    it = iter(enumerate(lines, 1))
    for lineno, text in it:
        try:
            head = json.loads(text)
        except ValueError as exc:
            raise _bad(lineno, f"not JSON ({exc})") from None
        if not isinstance(head, dict) or head.get("kind") != "eventuali-export":
            raise _bad(lineno, "the first line is not an export header")
        if head.get("format_version") != FORMAT_VERSION:
            raise _bad(lineno, f"format_version {head.get('format_version')!r} is not "
                               f"{FORMAT_VERSION}; export it again with this eventuali")
        break
    else:
        raise _bad(0, "the file is empty")
    for lineno, text in it:
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise _bad(lineno, f"not JSON ({exc})") from None
        if not isinstance(obj, dict) or "kind" not in obj:
            raise _bad(lineno, "not an object with a 'kind'")
        yield lineno, obj


def record_from_line(lineno: int, obj: dict[str, Any]) -> Record:
    try:
        return Record(int(obj["position"]), bytes.fromhex(obj["event_id"]), obj["stream_id"],
                      obj["stream_type"], int(obj["version"]), obj["event_type"],
                      int(obj["schema_version"]), int(obj["timestamp"]), obj["tenant"],
                      base64.b64decode(obj["metadata"], validate=True),
                      base64.b64decode(obj["payload"], validate=True))
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(lineno, f"event is missing or has a malformed field ({exc!r})") from None


# --- writing records into a store -------------------------------------------------------


class Writer:
    """Appends source records to ``target`` in order, in batches (see the module docstring)."""

    def __init__(self, target: Backend, merge: str = "refuse", batch: int = BATCH,
                 progress: Progress | None = None, checkpoint: str | None = None) -> None:
        if batch < 1:
            raise InvalidInputError(f"batch size {batch} is invalid; give a whole number >= 1")
        if merge not in MERGE_POLICIES:
            raise InvalidInputError(f"merge policy {merge!r} is unknown; use one of "
                                    f"{', '.join(MERGE_POLICIES)}")
        self.target, self.merge, self.batch, self.progress = target, merge, batch, progress
        self.checkpoint = checkpoint
        self.src_positions: list[int] = []  # source -> target position pairs, for checkpoints
        self.dst_positions: list[int] = []
        self.written = self.skipped = 0
        self._versions: dict[str, int] = {}

    def write_all(self, records: Iterable[Record]) -> None:
        pending: list[Record] = []
        for r in records:
            if self.merge == "skip-existing" and self._exists(r):
                continue
            pending.append(r)
            if len(pending) >= self.batch:
                self._flush(pending)
                pending = []
        if pending:
            self._flush(pending)

    def _exists(self, r: Record) -> bool:
        current = self._versions.get(r.stream_id)
        if current is None:
            current = self._versions[r.stream_id] = self.target.stream_version(r.stream_id)
        if r.version > current:
            return False
        there = self.target.read_stream(r.stream_id, r.version, r.version)
        if not there or there[0].event_id != r.event_id:
            raise InvalidInputError(
                f"cannot merge: stream {r.stream_id!r} version {r.version} holds a different "
                f"event in the target than event {r.event_id.hex()} of the source; import into "
                "an empty store instead"
            )
        self.skipped += 1
        return True

    def _flush(self, records: list[Record]) -> None:
        start = 0
        while start < len(records):
            runs: list[list[Record]] = []
            seen: set[str] = set()
            end = start
            while end < len(records):
                r = records[end]
                if runs and runs[-1][0].stream_id == r.stream_id:
                    runs[-1].append(r)
                elif r.stream_id in seen:
                    break  # a stream appears once per append: cut the batch here
                else:
                    seen.add(r.stream_id)
                    runs.append([r])
                end += 1
            writes = [StreamWrite(run[0].stream_id, run[0].stream_type, run[0].version - 1,
                                  [_new(r) for r in run], run[0].tenant) for run in runs]
            self._append(writes, records[end - 1].position)
            for r in records[start:end]:
                self.src_positions.append(r.position)
            start = end

    def _append(self, writes: list[StreamWrite], last_source_position: int) -> None:
        cp = (self.checkpoint, last_source_position) if self.checkpoint else None
        try:
            positions = self.target.append(writes, checkpoint=cp)
        except OptimisticConcurrencyError as exc:
            raise InvalidInputError(
                f"{exc}; the target already holds events of that stream, or the source stream "
                "does not start at version 1 (it was truncated) - such a stream cannot be "
                "rebuilt with the same versions"
            ) from exc
        self.dst_positions.extend(positions)
        for w in writes:
            self._versions[w.stream_id] = w.expected_version + len(w.records)
        self.written += len(positions)
        if self.progress is not None:
            self.progress(len(positions))

    def target_position(self, source_position: int) -> int:
        """Where a checkpoint at ``source_position`` belongs in the target."""
        i = bisect_right(self.src_positions, source_position)
        return self.dst_positions[i - 1] if i else 0


def _new(r: Record) -> NewRecord:
    return NewRecord(r.event_id, r.event_type, r.schema_version, r.timestamp, r.metadata,
                     r.payload)


class _ExportContents:
    """One pass over an export file: its events (as a generator), then the rest."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = lines
        self.snapshots: list[Snapshot] = []
        self.checkpoints: list[tuple[str, int]] = []
        self.footer: dict[str, Any] | None = None
        self.digest = Digest()

    def events(self) -> Iterator[Record]:
        for lineno, obj in read_export(self.lines):
            kind = obj["kind"]
            if kind == "event":
                r = record_from_line(lineno, obj)
                self.digest.add(r)
                yield r
            elif kind == "snapshot":
                try:
                    self.snapshots.append(Snapshot(
                        obj["stream_id"], int(obj["version"]), int(obj["schema_version"]),
                        int(obj["timestamp"]), base64.b64decode(obj["payload"], validate=True)))
                except (KeyError, TypeError, ValueError) as exc:
                    raise _bad(lineno, f"malformed snapshot ({exc!r})") from None
            elif kind == "checkpoint":
                try:
                    self.checkpoints.append((str(obj["name"]), int(obj["position"])))
                except (KeyError, TypeError, ValueError) as exc:
                    raise _bad(lineno, f"malformed checkpoint ({exc!r})") from None
            elif kind == "end":
                self.footer = obj
            else:
                raise _bad(lineno, f"unknown kind {kind!r}")

    def check_complete(self) -> None:
        if self.footer is None:
            raise InvalidInputError("the export file has no 'end' line: it was cut short; "
                                    "nothing was imported - export the store again")
        if (self.footer.get("events") != self.digest.count
                or self.footer.get("digest") != self.digest.hexdigest()):
            raise InvalidInputError(
                f"the export file's events do not match its 'end' line (count "
                f"{self.digest.count} vs {self.footer.get('events')}, digest differs): the file "
                "was altered; nothing was imported"
            )


def import_export(target: Backend, open_lines: Callable[[], Iterable[str]], *,
                  merge: str = "refuse", progress: Progress | None = None,
                  batch: int = BATCH) -> dict[str, Any]:
    """Load an export into ``target``; refuse a non-empty target unless ``merge`` says how.

    ``open_lines()`` is called twice: a first pass checks the whole file (its
    'end' line and digest, and with ``merge`` every conflict with the target)
    before the second writes anything, so a damaged file imports nothing.
    """
    if merge == "refuse" and target.head() > 0:
        raise InvalidInputError(
            f"the target store is not empty (head {target.head()}); import into an empty "
            "store, or pass --merge skip-existing to add only the events it lacks"
        )
    check = Writer(target, merge, batch)
    check_pass = _ExportContents(open_lines())
    for r in check_pass.events():
        if merge == "skip-existing":
            check._exists(r)  # raises on a conflict; reads the target only
    check_pass.check_complete()

    writer = Writer(target, merge, batch, progress)
    contents = _ExportContents(open_lines())
    writer.write_all(contents.events())
    contents.check_complete()  # the file changed between the passes
    for s in contents.snapshots:
        target.save_snapshot(s)
    for name, pos in contents.checkpoints:
        target.set_checkpoint(name, writer.target_position(pos))
    return {"events": writer.written, "skipped": writer.skipped,
            "snapshots": len(contents.snapshots), "checkpoints": len(contents.checkpoints),
            "digest": contents.digest.hexdigest()}


def copy(source: Backend, source_catalog: ScanCatalog, target: Backend, *,
         batch: int = BATCH, progress: Progress | None = None) -> dict[str, Any]:
    """Copy every event (then snapshots and checkpoints) from ``source`` to ``target``.

    Resumable: run it again after an interruption and it continues after the
    last batch the target committed (see the module docstring).  A target that
    holds events but no copy checkpoint is refused.
    """
    done = target.get_checkpoint(COPY_CHECKPOINT)
    if done is None and target.head() > 0:
        raise InvalidInputError(
            f"the target store is not empty (head {target.head()}) and holds no copy in "
            "progress; copy into an empty store (or export/import with --merge skip-existing)"
        )
    writer = Writer(target, batch=batch, progress=progress, checkpoint=COPY_CHECKPOINT)
    writer.write_all(iter_records(source, (done or 0) + 1, page=batch))
    streams = source_catalog.streams()
    n_snap = 0
    for info in streams:
        for s in stream_snapshots(source, info.stream_id):
            target.save_snapshot(s)
            n_snap += 1
    return {"events": writer.written, "resumed_after": done or 0, "snapshots": n_snap}


def compare(source: Backend, target: Backend, checkpoints: Iterable[tuple[str, int]] = (),
            progress: Progress | None = None) -> dict[str, Any]:
    """Digest both stores in lockstep; place each source checkpoint at its target position.

    Returns counts, both digests and, when they differ, the first source
    position whose record differs in the target.
    """
    wanted = sorted(checkpoints, key=lambda c: c[1])
    placed: dict[str, int] = {}
    ds, dt = Digest(), Digest()
    first_diff: int | None = None
    last_target = 0
    i = 0
    src, dst = iter_records(source), iter_records(target)
    for a in src:
        while i < len(wanted) and wanted[i][1] < a.position:
            placed[wanted[i][0]] = last_target
            i += 1
        b = next(dst, None)
        ds.add(a)
        if b is None:
            first_diff = a.position if first_diff is None else first_diff
            continue
        dt.add(b)
        last_target = b.position
        if first_diff is None and a[1:] != b[1:]:
            first_diff = a.position
        if progress is not None:
            progress(1)
    for b in dst:
        dt.add(b)
    for name, _ in wanted[i:]:
        placed[name] = last_target
    return {"source_events": ds.count, "target_events": dt.count,
            "source_digest": ds.hexdigest(), "target_digest": dt.hexdigest(),
            "first_difference": first_diff, "checkpoints": placed}
