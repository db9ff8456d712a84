"""``ZlibCompression``: a payload transform (tag ``z``) that deflates event payloads.

Worth it for large, repetitive payloads; a 200-byte event barely shrinks and
costs a few microseconds.  Put it before encryption in a codec's transforms:
ciphertext does not compress.
"""

from __future__ import annotations

import zlib

from .errors import ConfigurationError, SerializationError


class ZlibCompression:
    """Deflate payloads with :mod:`zlib` (``EventCodec(transforms=[ZlibCompression()])``)."""

    tag = b"z"

    def __init__(self, level: int = 6) -> None:
        if not isinstance(level, int) or not -1 <= level <= 9:
            raise ConfigurationError(
                f"zlib compression level {level!r} is invalid; use -1 (default) or 0-9"
            )
        self.level = level

    def encode(self, data: bytes) -> bytes:
        return zlib.compress(data, self.level)

    def decode(self, data: bytes) -> bytes:
        try:
            return zlib.decompress(data)
        except zlib.error as exc:
            raise SerializationError(
                f"compressed payload ({len(data)} bytes) does not inflate: {exc}; it is corrupt "
                "or was not written by ZlibCompression"
            ) from None

    def __repr__(self) -> str:
        return f"ZlibCompression(level={self.level})"
