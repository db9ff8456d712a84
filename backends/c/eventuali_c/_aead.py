"""AES-256-GCM batches through the library's ``eventuali_aead_seal_many`` (OpenSSL libcrypto).

Offered to the core as the provider's ``aead_seal_many`` accelerator (see
``CBackend.accelerator``): ``eventuali.security.EventEncryption.encrypt_many``
uses it when the engine is installed, and produces the same bytes either way.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import accumulate

from ._native import ffi, lib
from .store import error_from_status

_TAG_AND_NONCE = 28


def seal_many(
    key: bytes, aad_prefix: bytes, header0: bytes, header1: bytes, nonces: bytes,
    event_ids: bytes, streams: Sequence[bytes], versions: Sequence[int], bound: bytes,
    plain: Sequence[bytes],
) -> list[bytes]:
    """Each ``plain[i]`` sealed as ``header | nonce | ciphertext | tag`` (see eventuali.h)."""
    n = len(plain)
    if not n:
        return []
    stream_ends = array("q", accumulate(map(len, streams)))
    plain_ends = array("q", accumulate(map(len, plain)))
    joined_streams = b"".join(streams)
    joined = b"".join(plain)
    hl = len(header0)
    out = bytearray(len(joined) + n * (hl + _TAG_AND_NONCE))
    status = lib.eventuali_aead_seal_many(
        key, len(key), aad_prefix, len(aad_prefix), header0, header1, hl, n, nonces, event_ids,
        joined_streams, ffi.from_buffer("int64_t[]", stream_ends), len(joined_streams),
        ffi.from_buffer("int64_t[]", array("q", versions)), bound, joined,
        ffi.from_buffer("int64_t[]", plain_ends), len(joined), ffi.from_buffer("uint8_t[]", out),
        len(out),
    )
    if status:
        raise error_from_status(status)
    data = bytes(out)
    extra = hl + _TAG_AND_NONCE
    ends = list(accumulate(len(p) + extra for p in plain))
    return [data[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
