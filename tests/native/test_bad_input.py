"""Bad input at the ABI: every malformed buffer or misuse is an error status, never a crash.

These call the library directly (as a third-party caller of eventuali.h
would), bypassing the shim's own checks, and map each status through the
shim to the core's exception class.
"""

from __future__ import annotations

import uuid

import pytest

from eventuali.errors import (
    DuplicateEventError,
    InvalidInputError,
    StoreClosedError,
)


@pytest.fixture
def raw(native):
    ffi, lib = native.ffi, native.lib
    out = ffi.new("eventuali_store **")
    assert lib.eventuali_open(lib.EVENTUALI_SCHEME_MEMORY, b"", 0, 0, -1, b"test", 4, out) == 0
    handle = out[0]
    yield handle
    lib.eventuali_store_free(handle)


def _error(native, status):
    from eventuali_c.store import error_from_status

    return error_from_status(status)


class Request:
    """Build an eventuali_append_request by hand, keeping its buffers alive."""

    def __init__(self, native, *, stream_ids=(b"s",), chars=(1,), ids=None, id_lens=None,
                 event_types=(b"E",), et_chars=(1,), counts=None, expected=(-1,),
                 sv=None, meta=b"", meta_lens=None, n_records=1, n_writes=1, text_len=None):
        ffi = native.ffi
        self.keep = []
        r = self.req = ffi.new("eventuali_append_request *")
        r.n_writes = n_writes
        r.n_records = n_records
        sid = b"".join(stream_ids)
        self._text(r.stream_ids, sid, chars, text_len)
        self._text(r.stream_types, b"", [0] * max(n_writes, 1), 0)
        self._text(r.tenants, b"", [0] * max(n_writes, 1), 0)
        r.expected_versions = self._arr(expected)
        r.record_counts = self._arr(counts if counts is not None else [n_records])
        ids = ids if ids is not None else uuid.uuid4().bytes * n_records
        self._bytes(r.event_ids, ids, id_lens if id_lens is not None else [16] * n_records)
        self._text(r.event_types, b"".join(event_types), et_chars, None)
        r.schema_versions = self._arr(sv if sv is not None else [1] * max(n_records, 1))
        r.timestamps = self._arr([0] * max(n_records, 1))
        self._bytes(r.metadata, meta, meta_lens if meta_lens is not None else [len(meta)] + [0] * (n_records - 1))
        self._bytes(r.payloads, b"", [0] * max(n_records, 1))
        self.ffi = ffi

    def _arr(self, values):
        a = self.ffi_new("int64_t[]", list(values) or [0])
        self.keep.append(a)
        return a

    def ffi_new(self, t, v):
        from eventuali_c._native import ffi

        return ffi.new(t, v)

    def _text(self, col, data, chars, length):
        buf = self.ffi_new("uint8_t[]", data or b"\0")
        self.keep.append(buf)
        col.data = buf
        col.data_len = len(data) if length is None else length
        col.chars = self._arr(chars)

    def _bytes(self, col, data, lens):
        buf = self.ffi_new("uint8_t[]", data or b"\0")
        self.keep.append(buf)
        col.data = buf
        col.data_len = len(data)
        col.lens = self._arr(lens)


def _append(native, handle, req):
    out = native.ffi.new("int64_t[]", 64)
    return native.lib.eventuali_append(handle, req.req, out)


def test_well_formed_request_is_accepted(native, raw):
    assert _append(native, raw, Request(native)) == 0


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"chars": [5]}, "does not fit"),  # text shorter than its declared code points
        ({"chars": [0], "text_len": 1}, "is empty"),  # empty stream id
        ({"stream_ids": [b"\xff"], "chars": [1]}, "not valid UTF-8"),
        ({"stream_ids": [b"\xed\xa0\x80"], "chars": [1]}, "not valid UTF-8"),  # surrogate
        ({"stream_ids": [b"\xc0\xaf"], "chars": [1]}, "not valid UTF-8"),  # overlong
        ({"stream_ids": [b"a\x00"], "chars": [2]}, "NUL"),
        ({"stream_ids": [b"x" * 256], "chars": [256]}, "limit is 255"),
        ({"text_len": -1}, "negative"),
        ({"id_lens": [15], "ids": b"x" * 15}, "16"),  # truncated event id
        ({"id_lens": [17], "ids": b"x" * 17}, "16"),  # oversized event id
        ({"counts": [2]}, "only 1 are left"),  # a write claiming more records than sent
        ({"counts": [0]}, "the writes own 0 records"),
        ({"expected": [-4]}, "expected version -4"),
        ({"sv": [-1]}, "schema version"),
        ({"meta": b"abc", "meta_lens": [4]}, "does not fit"),  # lengths past the buffer
        ({"meta": b"abc", "meta_lens": [2]}, "buffer holds 3"),  # bytes left over
        ({"meta": b"abc", "meta_lens": [-1]}, "length -1"),
        ({"n_records": -1, "counts": [-1]}, "invalid number of records"),
        ({"n_writes": -5}, "invalid number of writes"),
        ({"event_types": [b""], "et_chars": [0]}, "is empty"),
    ],
)
def test_malformed_append_is_invalid_input_and_writes_nothing(native, raw, kwargs, fragment):
    status = _append(native, raw, Request(native, **kwargs))
    assert status == native.lib.EVENTUALI_ERR_INVALID_INPUT
    exc = _error(native, status)
    assert isinstance(exc, InvalidInputError)
    assert fragment in str(exc)
    head = native.ffi.new("int64_t *")
    assert native.lib.eventuali_head(raw, head) == 0 and head[0] == 0


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"ab", "fewer NUL-separated strings"),  # 2 strings expected, 1 given
        (b"a\0b\0c", "buffer holds"),  # 3 given
        (b"a\0\xff", "not valid UTF-8"),
        (b"a\0", "is empty"),
    ],
)
def test_nul_separated_text_must_hold_exactly_the_strings(native, raw, data, fragment):
    req = Request(native, stream_ids=[data], chars=[0, 0], n_writes=2, counts=[1, 0], expected=[-1, -1])
    req.req.stream_ids.chars = native.ffi.NULL
    req.req.stream_ids.data_len = len(data)
    req.req.stream_types.data_len = 1  # one NUL: two empty strings
    req.req.tenants.data_len = 1
    req.keep.append(native.ffi.new("uint8_t[]", 2))
    req.req.stream_types.data = req.keep[-1]
    req.req.tenants.data = req.keep[-1]
    req.req.stream_types.chars = native.ffi.NULL
    req.req.tenants.chars = native.ffi.NULL
    status = _append(native, raw, req)
    assert status == native.lib.EVENTUALI_ERR_INVALID_INPUT
    assert fragment in str(_error(native, status))


def test_event_id_twice_in_one_request_is_duplicate(native, raw):
    eid = uuid.uuid4().bytes
    status = _append(native, raw, Request(native, ids=eid * 2, n_records=2, event_types=[b"E", b"E"],
                                           et_chars=[1, 1], meta_lens=[0, 0]))
    assert status == native.lib.EVENTUALI_ERR_DUPLICATE_EVENT
    exc = _error(native, status)
    assert isinstance(exc, DuplicateEventError) and exc.event_id == eid


def test_null_pointers_are_errors(native, raw):
    ffi, lib = native.ffi, native.lib
    out = ffi.new("int64_t *")
    assert lib.eventuali_head(ffi.NULL, out) == lib.EVENTUALI_ERR_INVALID_INPUT
    assert lib.eventuali_append(ffi.NULL, ffi.NULL, ffi.NULL) == lib.EVENTUALI_ERR_INVALID_INPUT
    assert lib.eventuali_append(raw, ffi.NULL, out) == lib.EVENTUALI_ERR_INVALID_INPUT
    assert lib.eventuali_head(raw, ffi.NULL) == lib.EVENTUALI_ERR_INVALID_INPUT
    assert lib.eventuali_read_all(raw, 1, -1, ffi.NULL, ffi.NULL) == lib.EVENTUALI_ERR_INVALID_INPUT
    assert lib.eventuali_read_stream(raw, ffi.NULL, 3, 1, -1, -1, ffi.new("eventuali_records **")) \
        == lib.EVENTUALI_ERR_INVALID_INPUT
    assert lib.eventuali_close(ffi.NULL) == lib.EVENTUALI_ERR_INVALID_INPUT
    assert isinstance(_error(native, lib.EVENTUALI_ERR_INVALID_INPUT), InvalidInputError)
    lib.eventuali_store_free(ffi.NULL)  # a no-op
    lib.eventuali_records_free(ffi.NULL)
    lib.eventuali_snapshot_free(ffi.NULL)


def test_use_after_close_and_closing_twice_are_closed_errors(native, raw):
    lib, ffi = native.lib, native.ffi
    assert lib.eventuali_close(raw) == 0
    assert lib.eventuali_close(raw) == lib.EVENTUALI_ERR_CLOSED
    assert isinstance(_error(native, lib.EVENTUALI_ERR_CLOSED), StoreClosedError)
    out = ffi.new("int64_t *")
    assert lib.eventuali_head(raw, out) == lib.EVENTUALI_ERR_CLOSED
    assert _append(native, raw, Request(native)) == lib.EVENTUALI_ERR_CLOSED
    assert lib.eventuali_wait_for(raw, 0, 1000, out) == lib.EVENTUALI_ERR_CLOSED


def test_open_rejects_bad_arguments(native):
    lib, ffi = native.lib, native.ffi
    out = ffi.new("eventuali_store **")
    assert lib.eventuali_open(99, b"", 0, 0, -1, b"", 0, out) == lib.EVENTUALI_ERR_CONFIGURATION
    assert lib.eventuali_open(lib.EVENTUALI_SCHEME_SQLITE, b"", 0, 0, -1, b"", 0, out) \
        == lib.EVENTUALI_ERR_CONFIGURATION
    assert lib.eventuali_open(lib.EVENTUALI_SCHEME_MEMORY, b"\xff", 1, 0, -1, b"", 0, out) \
        == lib.EVENTUALI_ERR_CONFIGURATION
    assert lib.eventuali_open(lib.EVENTUALI_SCHEME_MEMORY, b"", 0, 0xF0, -1, b"", 0, out) \
        == lib.EVENTUALI_ERR_CONFIGURATION
    assert lib.eventuali_open(lib.EVENTUALI_SCHEME_MEMORY, b"", -1, 0, -1, b"", 0, out) \
        == lib.EVENTUALI_ERR_INVALID_INPUT
    assert lib.eventuali_open(lib.EVENTUALI_SCHEME_MEMORY, b"", 0, 0, -1, b"", 0, ffi.NULL) \
        == lib.EVENTUALI_ERR_INVALID_INPUT


def test_backend_close_is_idempotent_and_use_after_close_raises(c_store):
    from native_helpers import write

    c_store.append([write("a", 0)])
    c_store.close()
    c_store.close()
    with pytest.raises(StoreClosedError):
        c_store.head()
    with pytest.raises(StoreClosedError):
        c_store.append([write("a", 1)])
    with pytest.raises(StoreClosedError):
        c_store.read_all()


def test_lone_surrogate_stream_id_is_invalid_input(c_store):
    from native_helpers import write

    with pytest.raises(InvalidInputError):
        c_store.append([write("bad\ud800", 0)])
    with pytest.raises(InvalidInputError):
        c_store.read_stream("bad\ud800")
    assert c_store.head() == 0


@pytest.mark.parametrize("where", [0, 10, 31, 32, 39])
def test_stored_event_id_anywhere_in_a_large_batch_is_named_and_nothing_is_written(c_store, where):
    """SQLite inserts 32 rows per statement: the duplicate is found wherever it sits."""
    from native_helpers import rec, write

    first = write("a", 0, 40)
    c_store.append([first])
    batch = [rec() for _ in range(40)]
    batch[where] = batch[where]._replace(event_id=first.records[7].event_id)
    from eventuali.records import StreamWrite

    with pytest.raises(DuplicateEventError) as info:
        c_store.append([StreamWrite("b", "Thing", 0, batch[:20]), StreamWrite("c", "Thing", 0, batch[20:])])
    assert info.value.event_id == first.records[7].event_id
    assert c_store.head() == 40 and c_store.stream_version("b") == 0 and c_store.read_stream("c") == []
    positions = c_store.append([StreamWrite("b", "Thing", 0, [rec() for _ in range(70)])])
    assert positions == list(range(41, 111))
