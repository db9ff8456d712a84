"""``CStore``: the ``eventuali.protocol.Backend`` contract over the native library.

Each method is one call into C.  Appends are packed as columns (one buffer per
field, built with C-speed ``join``/``array`` calls, no Python loop per record)
and reads come back as columns that are turned into ``Record`` tuples with
``map``/``zip`` - the per-record work is object creation only.  CFFI releases
the GIL around every call, so two threads on two stores run in parallel.
"""

from __future__ import annotations

import gc
import struct
from array import array
from collections.abc import Sequence
from itertools import chain, islice, repeat

from eventuali import record_validation as check
from eventuali.errors import (
    ConfigurationError,
    DuplicateEventError,
    InvalidInputError,
    NotAnEventualiStoreError,
    OptimisticConcurrencyError,
    SchemaVersionError,
    StorageError,
    StoreClosedError,
    StreamDeletedError,
    TransientStorageError,
)
from eventuali.records import ReadFilter, Record, Snapshot, StreamWrite

from . import _native
from .chain import ChainMethods

ffi, lib = _native.ffi, _native.lib

_CAPABILITY_BITS = {
    "persistent": lib.EVENTUALI_CAP_PERSISTENT,
    "multi_process": lib.EVENTUALI_CAP_MULTI_PROCESS,
    "snapshots": lib.EVENTUALI_CAP_SNAPSHOTS,
    "checkpoints": lib.EVENTUALI_CAP_CHECKPOINTS,
    "delete": lib.EVENTUALI_CAP_DELETE,
    "truncate": lib.EVENTUALI_CAP_TRUNCATE,
    "wait_for": lib.EVENTUALI_CAP_WAIT_FOR,
    "integrity": lib.EVENTUALI_CAP_INTEGRITY,
}

_SIMPLE_ERRORS = {
    lib.EVENTUALI_ERR_INVALID_INPUT: InvalidInputError,
    lib.EVENTUALI_ERR_STORAGE: StorageError,
    lib.EVENTUALI_ERR_NOT_A_STORE: NotAnEventualiStoreError,
    lib.EVENTUALI_ERR_SCHEMA_VERSION: SchemaVersionError,
    lib.EVENTUALI_ERR_TRANSIENT: TransientStorageError,
    lib.EVENTUALI_ERR_CLOSED: StoreClosedError,
    lib.EVENTUALI_ERR_CONFIGURATION: ConfigurationError,
}

_new = ffi.new
_buffer = ffi.buffer
_unpack = ffi.unpack
_from_buffer = ffi.from_buffer
_tuple_new = tuple.__new__
_NULL = ffi.NULL
_INT64_ARRAY = ffi.typeof("int64_t[]")
_UINT8_ARRAY = ffi.typeof("uint8_t[]")
_REQUEST = ffi.typeof("eventuali_append_request *")
_EMPTY = ffi.new("uint8_t[]", 1)
_SIXTEEN = array("q", [16])
_Struct = struct.Struct
_gc_isenabled, _gc_disable, _gc_enable = gc.isenabled, gc.disable, gc.enable


def error_from_status(status: int) -> Exception:
    """The eventuali exception for a failed call's status (reads the thread's last error)."""
    detail = _new("eventuali_error_detail *")
    lib.eventuali_last_error_detail(detail)
    message = ffi.string(lib.eventuali_last_error_message()).decode("utf-8", "replace")
    if status == lib.EVENTUALI_ERR_CONCURRENCY:
        sid = _buffer(detail.stream_id, detail.stream_id_len)[:].decode("utf-8", "replace")
        return OptimisticConcurrencyError(sid, detail.expected, detail.actual)
    if status == lib.EVENTUALI_ERR_DUPLICATE_EVENT:
        return DuplicateEventError(bytes(_buffer(detail.event_id, 16)))
    if status == lib.EVENTUALI_ERR_STREAM_DELETED:
        sid = _buffer(detail.stream_id, detail.stream_id_len)[:].decode("utf-8", "replace")
        return StreamDeletedError(sid)
    cls = _SIMPLE_ERRORS.get(status)
    if cls is None:
        return StorageError(f"native eventuali library returned unknown status {status}: {message}")
    return cls(message)


def _text(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a str, got {type(value).__name__} {value!r}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} {value!r} is not valid Unicode text ({exc.reason}); use a str without lone "
            "surrogates"
        ) from None


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    if not -(2**63) <= value < 2**63:
        raise InvalidInputError(f"{what} {value} does not fit in 64 bits")
    return value


class _TextColumn:
    """Strings packed for an ``eventuali_text_column``: one UTF-8 blob + code-point counts."""

    __slots__ = ("data", "chars")

    def __init__(self, values: Sequence[str], what: str):
        try:
            joined = "".join(values)
            self.data = joined.encode("utf-8")
            self.chars = array("q", map(len, values))
        except (TypeError, UnicodeEncodeError):
            for i, v in enumerate(values):
                _text(v, f"{what} #{i}")
            raise  # pragma: no cover - the loop above raised

    def fill(self, col) -> list:
        keep = [_from_buffer("uint8_t[]", self.data), _from_buffer("int64_t[]", self.chars)]
        col.data, col.chars = keep
        col.data_len = len(self.data)
        return keep


class _BytesColumn:
    """Byte strings packed for an ``eventuali_bytes_column``: one blob + lengths."""

    __slots__ = ("data", "lens")

    def __init__(self, values: Sequence[bytes], what: str):
        try:
            self.data = b"".join(values)
        except TypeError:
            for i, v in enumerate(values):
                if not isinstance(v, (bytes, bytearray, memoryview)):
                    raise InvalidInputError(
                        f"{what} of record #{i} must be bytes, got {type(v).__name__} {v!r}"
                    ) from None
            raise
        self.lens = array("q", map(len, values))

    def fill(self, col) -> list:
        keep = [_from_buffer("uint8_t[]", self.data), _from_buffer("int64_t[]", self.lens)]
        col.data, col.lens = keep
        col.data_len = len(self.data)
        return keep


def _nul_joined(strings) -> bytes:
    return "\0".join(strings).encode("utf-8")


def _int_column(values: Sequence[int], what: str) -> array:
    try:
        return array("q", values)
    except (TypeError, OverflowError):
        for i, v in enumerate(values):
            _int(v, f"{what} of record #{i}")
        raise


def decode_records(r) -> list[Record]:
    """Turn an ``eventuali_records *`` into ``Record`` tuples (caller frees ``r``).

    Every step is one C-level call over a whole group of columns: one
    ``tolist`` for the four int64 columns and one for the four int32 index
    columns (the library lays each group out back to back), one ``struct.unpack`` (with the format the library
    wrote) for event ids, metadata and payloads, ``map`` over the table of
    distinct strings, and ``tuple.__new__`` for the records.
    """
    n = r.count
    if n == 0:
        return []
    ints = memoryview(_buffer(r.positions, 32 * n)).cast("q").tolist()
    idx = memoryview(_buffer(r.stream_ids, 16 * n)).cast("i").tolist()
    soff = memoryview(_buffer(r.string_offsets, 8 * (r.n_strings + 1))).cast("q").tolist()
    sblob = _buffer(r.strings, soff[-1])[:]
    get = [sblob[a:b].decode("utf-8") for a, b in zip(soff, islice(soff, 1, None), strict=False)].__getitem__
    blob_len = _unpack(r.blob_offsets + n, 1)[0]
    # Struct(...) rather than struct.unpack: the module-level cache would keep
    # up to 100 of these (possibly megabyte-long) formats alive.
    flat = _Struct(ffi.string(r.struct_format)).unpack(_buffer(r.blob, blob_len))
    # Building n tuples of ints/str/bytes cannot create reference cycles, so
    # the cyclic GC has nothing to find; without this, gen-0 collections
    # triggered by the allocations scan the young tuples over and over and
    # cost as much as the decoding itself.
    gc_was_enabled = _gc_isenabled()
    if gc_was_enabled:
        _gc_disable()
    try:
        return list(
            map(
                _tuple_new,
                repeat(Record),
                zip(
                    ints[:n],
                    flat[0::3],
                    map(get, idx[:n]),
                    map(get, idx[n : 2 * n]),
                    ints[n : 2 * n],
                    map(get, idx[2 * n : 3 * n]),
                    ints[2 * n : 3 * n],
                    ints[3 * n :],
                    map(get, idx[3 * n :]),
                    flat[1::3],
                    flat[2::3],
                    strict=False,  # all are count long; strict would only add a check per record
                ),
            )
        )
    finally:
        if gc_was_enabled:
            _gc_enable()


class CStore(ChainMethods):
    """One open store served by the native library (see ``eventuali.protocol.Backend``).

    Thread-safe: the library serializes calls on one store with its own mutex
    and releases the GIL while it works.
    """

    def __init__(self, handle, description: str):
        # ffi.gc frees the handle when the last Python reference goes, so no
        # thread can still be inside a call with it; close() only closes.
        self._h = ffi.gc(handle, lib.eventuali_store_free)
        self._closed = False
        self._description = description
        caps = _new("uint32_t *")
        self._check(lib.eventuali_capabilities(self._h, caps))
        self.capabilities = frozenset(k for k, bit in _CAPABILITY_BITS.items() if caps[0] & bit)

    @staticmethod
    def _check(status: int) -> None:
        if status:
            raise error_from_status(status)

    def __repr__(self) -> str:
        return f"<CStore {self._description}{' closed' if self._closed else ''}>"

    # --- events ------------------------------------------------------------

    def append(
        self, writes: Sequence[StreamWrite], checkpoint: tuple[str, int] | None = None
    ) -> list[int]:
        # The shared protocol checks: the same exceptions, in the same order,
        # with the same messages as the reference engine (the library checks
        # everything again, for callers that are not this shim).
        check.check_append(writes, checkpoint)
        nw = len(writes)
        tenants = [w[4] if len(w) == 5 else "" for w in writes]
        rec_lists = [w[3] for w in writes]
        records = list(chain.from_iterable(rec_lists)) if nw != 1 else rec_lists[0]
        nr = len(records)
        sids, stypes, expected, _ = zip(*[w[:4] for w in writes], strict=True) if nw else ((), (), (), ())
        # Two buffers cross the boundary: every integer in one int64 array and
        # every byte in one blob; the request's columns point into them.  (The
        # shared checks above guarantee types, so packing cannot fail here.)
        ints = array("q", expected)
        ints.fromlist(list(map(len, rec_lists)))
        # Text goes NUL-separated (the library refuses NUL inside text), so no
        # per-string length has to be packed.
        texts = [_nul_joined(sids), _nul_joined(stypes), _nul_joined(tenants)]
        if nr:
            ids, etypes, svs, tss, metas, pays = zip(*records, strict=True)
            texts.append(_nul_joined(etypes))
            ints.fromlist(list(svs))
            ints.fromlist(list(tss))
            ints += _SIXTEEN * nr
            ints.fromlist(list(map(len, metas)))
            ints.fromlist(list(map(len, pays)))
            blobs = [b"".join(ids), b"".join(metas), b"".join(pays)]
        else:
            texts.append(b"")
            blobs = [b"", b"", b""]
        parts = texts + blobs
        data = b"".join(parts)
        ibuf = _from_buffer(_INT64_ARRAY, ints)
        dbuf = _from_buffer(_UINT8_ARRAY, data) if data else _EMPTY
        req = _new(_REQUEST)
        req.n_writes = nw
        req.n_records = nr
        req.expected_versions = ibuf
        req.record_counts = ibuf + nw
        off = 0
        for col, part in zip((req.stream_ids, req.stream_types, req.tenants, req.event_types), parts, strict=False):
            col.data, col.data_len = dbuf + off, len(part)  # chars stays NULL: NUL-separated
            off += len(part)
        i = 2 * nw
        req.schema_versions = ibuf + i
        req.timestamps = ibuf + i + nr
        i += 2 * nr
        for col, part in zip((req.event_ids, req.metadata, req.payloads), blobs, strict=True):
            col.data, col.data_len, col.lens = dbuf + off, len(part), ibuf + i
            off += len(part)
            i += nr
        name_b = None
        if checkpoint is not None:
            name, position = checkpoint
            name_b = _new(_UINT8_ARRAY, name.encode())
            req.has_checkpoint = 1
            req.checkpoint_name = name_b
            req.checkpoint_name_len = len(name_b) - 1
            req.checkpoint_position = position
        out = _new(_INT64_ARRAY, nr or 1)
        status = lib.eventuali_append(self._h, req, out)
        if status:
            raise error_from_status(status)
        return _unpack(out, nr)

    def _read(self, status: int, out) -> list[Record]:
        if status:
            raise error_from_status(status)
        r = out[0]
        try:
            return decode_records(r)
        finally:
            lib.eventuali_records_free(r)

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        check.check_read_stream(stream_id, from_version, to_version, limit)
        sid = stream_id.encode()
        to_v = -1 if to_version is None else to_version
        lim = -1 if limit is None else limit
        out = _new("eventuali_records **")
        return self._read(
            lib.eventuali_read_stream(self._h, sid, len(sid), from_version, to_v, lim, out), out
        )

    def read_all(
        self, from_position: int = 1, limit: int | None = None, filter: ReadFilter | None = None
    ) -> list[Record]:
        check.check_read_all(from_position, limit, filter)
        lim = -1 if limit is None else limit
        out = _new("eventuali_records **")
        if filter is None or filter.is_empty:
            return self._read(lib.eventuali_read_all(self._h, from_position, lim, _NULL, out), out)
        f = _new("eventuali_filter *")
        keep: list = [f]
        f.n_event_types = f.n_stream_types = -1
        if filter.event_types is not None:
            ets = sorted(filter.event_types)
            f.n_event_types = len(ets)
            keep += _TextColumn(ets, "filter event type").fill(f.event_types)
        if filter.stream_types is not None:
            sts = sorted(filter.stream_types)
            f.n_stream_types = len(sts)
            keep += _TextColumn(sts, "filter stream type").fill(f.stream_types)
        if filter.stream_id_prefix is not None:
            p = _from_buffer("uint8_t[]", _text(filter.stream_id_prefix, "stream id prefix"))
            keep.append(p)
            f.has_stream_id_prefix = 1
            f.stream_id_prefix = p
            f.stream_id_prefix_len = len(p)
        if filter.tenant is not None:
            t = _from_buffer("uint8_t[]", _text(filter.tenant, "tenant filter"))
            keep.append(t)
            f.has_tenant = 1
            f.tenant = t
            f.tenant_len = len(t)
        return self._read(lib.eventuali_read_all(self._h, from_position, lim, f, out), out)

    def stream_version(self, stream_id: str) -> int:
        check.check_stream_id(stream_id)
        sid = stream_id.encode()
        out = _new("int64_t *")
        self._check(lib.eventuali_stream_version(self._h, sid, len(sid), out))
        return out[0]

    def head(self) -> int:
        out = _new("int64_t *")
        self._check(lib.eventuali_head(self._h, out))
        return out[0]

    # --- snapshots -----------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> None:
        check.check_snapshot(snapshot)
        stream_id, version, schema_version, timestamp, payload = snapshot
        sid = stream_id.encode()
        self._check(
            lib.eventuali_save_snapshot(
                self._h,
                sid,
                len(sid),
                version,
                schema_version,
                timestamp,
                payload,
                len(payload),
            )
        )

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        check.check_stream_id(stream_id)
        check.check_optional_int(max_version, "max_version", 0)
        sid = stream_id.encode()
        mv = -1 if max_version is None else max_version
        out = _new("eventuali_snapshot **")
        self._check(lib.eventuali_load_snapshot(self._h, sid, len(sid), mv, out))
        s = out[0]
        if s == _NULL:
            return None
        try:
            payload = _buffer(s.payload, s.payload_len)[:] if s.payload_len else b""
            return Snapshot(stream_id, s.version, s.schema_version, s.timestamp, payload)
        finally:
            lib.eventuali_snapshot_free(s)

    def prune_snapshots(self, stream_id: str, keep: int) -> int:
        check.check_stream_id(stream_id)
        check.check_int(keep, "keep", 0)
        sid = stream_id.encode()
        out = _new("int64_t *")
        self._check(lib.eventuali_prune_snapshots(self._h, sid, len(sid), keep, out))
        return out[0]

    # --- checkpoints -------------------------------------------------------

    def get_checkpoint(self, name: str) -> int | None:
        check.check_name(name, "checkpoint name")
        n = name.encode()
        pos = _new("int64_t *")
        found = _new("int32_t *")
        self._check(lib.eventuali_get_checkpoint(self._h, n, len(n), pos, found))
        return pos[0] if found[0] else None

    def set_checkpoint(self, name: str, position: int) -> None:
        check.check_checkpoint(name, position)
        n = name.encode()
        self._check(lib.eventuali_set_checkpoint(self._h, n, len(n), position))

    # --- live ----------------------------------------------------------------

    def wait_for(self, after_position: int, timeout: float) -> int:
        check.check_wait(after_position, timeout)
        us = int(min(timeout, 1e9) * 1_000_000)
        out = _new("int64_t *")
        self._check(lib.eventuali_wait_for(self._h, after_position, us, out))
        return out[0]

    # --- retention -----------------------------------------------------------

    def delete_stream(self, stream_id: str) -> int:
        check.check_stream_id(stream_id)
        sid = stream_id.encode()
        out = _new("int64_t *")
        self._check(lib.eventuali_delete_stream(self._h, sid, len(sid), out))
        return out[0]

    def truncate_stream(self, stream_id: str, before_version: int) -> int:
        check.check_stream_id(stream_id)
        check.check_int(before_version, "before_version", 1)
        sid = stream_id.encode()
        out = _new("int64_t *")
        self._check(lib.eventuali_truncate_stream(self._h, sid, len(sid), before_version, out))
        return out[0]

    # --- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        """Close the store; idempotent (the library itself reports a second close)."""
        if self._closed:
            return
        self._closed = True
        status = lib.eventuali_close(self._h)
        if status and status != lib.EVENTUALI_ERR_CLOSED:
            raise error_from_status(status)

    def __enter__(self) -> CStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
