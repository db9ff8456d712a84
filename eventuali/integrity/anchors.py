"""Anchors: a chain entry's number, position and hash, kept outside the store.

An anchor taken now and kept elsewhere (printed, mailed to an auditor, stored
in another system) lets a later check prove that the store still holds that
exact history: a store whose chain is shorter than the anchor lost its tail;
one whose entry at the anchor's number has another hash was rewritten.
Optionally signed with an Ed25519 key (``pip install "eventuali[crypto]"``), so
that whoever holds the anchor file cannot forge one either.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigurationError, EventualiError

FORMAT = "eventuali-anchor-v1"
_SIGNED = struct.Struct(">qq")


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise ConfigurationError(
            "signing anchors needs the 'cryptography' package; install it with "
            "pip install \"eventuali[crypto]\""
        ) from None
    return ed25519


class AnchorSignatureError(EventualiError):
    """An anchor's signature does not verify with the given public key (or it has none)."""


@dataclass(frozen=True)
class Anchor:
    """The chain's state at one entry: ``seq``, ``position`` (the store's head then) and ``hash``."""

    seq: int
    position: int
    hash: bytes
    signature: bytes | None = None

    def signed_bytes(self) -> bytes:
        """What a signature covers: ``b"eventuali-anchor-v1\\0" || i64 seq || i64 position || hash``."""
        return FORMAT.encode() + b"\0" + _SIGNED.pack(self.seq, self.position) + self.hash

    def sign(self, private_key: Any) -> Anchor:
        """A copy signed with an ``Ed25519PrivateKey`` (from ``cryptography``)."""
        ed25519 = _ed25519()
        if not isinstance(private_key, ed25519.Ed25519PrivateKey):
            raise ConfigurationError(
                f"anchors are signed with an Ed25519 private key, got {type(private_key).__name__}; "
                "create one with cryptography's Ed25519PrivateKey.generate()"
            )
        return replace(self, signature=private_key.sign(self.signed_bytes()))

    def check_signature(self, public_key: Any) -> None:
        """Raise :class:`AnchorSignatureError` unless ``public_key`` signed this anchor."""
        ed25519 = _ed25519()
        if not isinstance(public_key, ed25519.Ed25519PublicKey):
            raise ConfigurationError(
                f"anchor signatures are checked with an Ed25519 public key, got "
                f"{type(public_key).__name__}"
            )
        if self.signature is None:
            raise AnchorSignatureError(
                f"the anchor at chain entry {self.seq} is not signed; sign anchors with "
                "Anchor.sign(private_key) when taking them"
            )
        from cryptography.exceptions import InvalidSignature

        try:
            public_key.verify(self.signature, self.signed_bytes())
        except InvalidSignature:
            raise AnchorSignatureError(
                f"the signature of the anchor at chain entry {self.seq} (position "
                f"{self.position}) does not verify with the given public key: the anchor "
                "was altered or signed by another key"
            ) from None

    def to_json(self) -> str:
        """The anchor as a small JSON document (hex hash and signature)."""
        doc: dict[str, Any] = {
            "format": FORMAT,
            "seq": self.seq,
            "position": self.position,
            "hash": self.hash.hex(),
        }
        if self.signature is not None:
            doc["signature"] = self.signature.hex()
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Anchor:
        """Parse :meth:`to_json`'s output; ``ConfigurationError`` names what is wrong."""
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise ValueError(f"format is {doc.get('format')!r}, expected {FORMAT!r}")
            seq, position = doc["seq"], doc["position"]
            if not (isinstance(seq, int) and isinstance(position, int) and seq >= 0 and position >= 0):
                raise ValueError("seq and position must be non-negative integers")
            digest = bytes.fromhex(doc["hash"])
            if len(digest) != 32:
                raise ValueError("hash must be 32 bytes (64 hex digits)")
            sig = doc.get("signature")
            signature = bytes.fromhex(sig) if sig is not None else None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError(
                f"not an eventuali anchor ({exc}); anchors are written by Anchor.to_json()"
            ) from None
        return cls(seq, position, digest, signature)
