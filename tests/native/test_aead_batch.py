"""The c engine's AES-256-GCM batch (OpenSSL) writes exactly what the Python path writes.

Golden vector: ``eventuali/testing/vectors/aead_v1.json`` (made with the
``cryptography`` path).  Runs under ASan/UBSan with the rest of tests/native
(``nox -s c_asan``).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from unittest import mock

import pytest

from eventuali.errors import DecryptionError, InvalidInputError
from eventuali.security import EventEncryption, KeyManager
from eventuali.serialization import RecordIdentity


def _vector() -> dict:
    return json.loads(resources.files("eventuali.testing").joinpath("vectors/aead_v1.json").read_text())


def _identities(vec: dict) -> list[RecordIdentity]:
    return [RecordIdentity(bytes.fromhex(i["event_id"]), i["stream_id"], i["version"])
            for i in vec["items"]]


def test_native_and_python_batches_give_the_golden_bytes(c_provider):
    vec = _vector()
    keys = KeyManager({vec["key_id"]: bytes.fromhex(vec["key"])})
    native, python = EventEncryption(keys, native=True), EventEncryption(keys, native=False)
    payloads = [bytes.fromhex(i["payload"]) for i in vec["items"]]
    ids = _identities(vec)
    for enc in (native, python):
        with mock.patch("eventuali.security.encryption.os.urandom",
                        return_value=bytes.fromhex(vec["nonces"])):
            assert [b.hex() for b in enc.encrypt_many(payloads, ids)] == [
                i["sealed"] for i in vec["items"]]
    # Each path reads what the other wrote (real random nonces this time).
    assert python.decrypt_many(native.encrypt_many(payloads, ids), ids) == payloads
    sealed = native.encrypt_many(payloads, ids)
    moved = [sealed[1], sealed[0], *sealed[2:]]
    with pytest.raises(DecryptionError):
        python.decrypt_many(moved, ids)  # bound to its event: cannot be swapped


def test_native_batch_draws_fresh_nonces(c_provider):
    enc = EventEncryption(KeyManager.generate(), native=True)
    ids = [RecordIdentity(os.urandom(16), "s", n) for n in range(1, 1001)]
    out = enc.encrypt_many([b"{}"] * 1000, ids) + enc.encrypt_many([b"{}"] * 1000, ids)
    header = 3 + len(enc.keys.current_key_id)
    nonces = {c[header:header + 12] for c in out}
    assert len(nonces) == 2000


def test_the_library_refuses_bad_batches(native):
    ffi, lib = native.ffi, native.lib
    from eventuali_c._aead import seal_many

    ok = dict(key=bytes(32), aad_prefix=b"p", header0=b"\x01\x00\x00", header1=b"\x01\x01\x00",
              nonces=bytes(24), event_ids=bytes(32), streams=[b"a", b"b"], versions=[1, 2],
              bound=b"\x01\x00", plain=[b"xy", b""])
    assert [len(x) for x in seal_many(**ok)] == [3 + 12 + 2 + 16, 3 + 12 + 16]
    with pytest.raises(InvalidInputError, match="32-byte key"):
        seal_many(**{**ok, "key": bytes(16)})
    out = ffi.new("uint8_t[]", 100)
    ends = ffi.new("int64_t[]", [5, 1])  # not ascending
    status = lib.eventuali_aead_seal_many(bytes(32), 32, b"p", 1, b"h", b"h", 1, 2, bytes(24),
                                          bytes(32), b"abcde", ends, 5, ffi.new("int64_t[]", 2),
                                          b"\x00\x00", b"", ffi.new("int64_t[]", 2), 0, out, 58)
    assert status == lib.EVENTUALI_ERR_INVALID_INPUT
    assert b"ascending" in ffi.string(lib.eventuali_last_error_message())
    status = lib.eventuali_aead_seal_many(bytes(32), 32, b"p", 1, b"h", b"h", 1, 1, bytes(12),
                                          bytes(16), b"a", ffi.new("int64_t[]", [1]), 1,
                                          ffi.new("int64_t[]", 1), b"\x00", b"ab",
                                          ffi.new("int64_t[]", [2]), 2, out, 99)
    assert status == lib.EVENTUALI_ERR_INVALID_INPUT  # output buffer of the wrong size
