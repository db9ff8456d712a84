"""The hash-chain golden vector (``vectors/chain_v1.json``): its operations, and a writer for it.

Every engine that declares ``integrity`` must produce exactly the vector's
entries when it runs the vector's operations on a new ``?integrity=chain``
store (``run_operations``); ``python -m eventuali.testing.chain_vector``
rewrites the file from the reference implementation - only when the byte
layout changes on purpose, which also needs a new integrity mode name.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, cast

from ..integrity.chain import ChainEntry
from ..records import ANY, NO_STREAM, NewRecord, StreamWrite

OPERATIONS: list[tuple[str, Any]] = [
    (
        "append",
        [
            StreamWrite("order-1", "Order", NO_STREAM, [
                NewRecord(bytes(range(16)), "OrderPlaced", 1, 1_700_000_000_000_000,
                          b'{"user": "u-1"}', b'{"total": 42}'),
                NewRecord(bytes(range(1, 17)), "OrderPaid", 2, 1_700_000_000_000_001, b"", b"\x00\xffbinary"),
            ], "acme"),
            StreamWrite("user-\u00e9", "User", NO_STREAM, [
                NewRecord(bytes(range(2, 18)), "Registered", 1, -5, b"{}", b""),
            ]),
        ],
    ),
    ("truncate", ("order-1", 2)),
    ("append", [StreamWrite("order-1", "Order", ANY, [
        NewRecord(bytes(range(3, 19)), "OrderShipped", 1, 1_700_000_000_000_002, b"{}", b"{}"),
    ], "acme")]),
    ("delete", "user-\u00e9"),
    ("append", [StreamWrite("gone-later", "Thing", NO_STREAM, [
        NewRecord(bytes(range(4, 20)), "Happened", 0, 0, b"", b"x" * 300),
    ])]),
]
"""What to do on a new chained store, in order."""


def run_operations(backend: Any) -> None:
    """Apply :data:`OPERATIONS` to an open ``?integrity=chain`` backend."""
    for op, arg in OPERATIONS:
        if op == "append":
            backend.append(arg)
        elif op == "truncate":
            backend.truncate_stream(*arg)
        else:
            backend.delete_stream(arg)


def expected_entries() -> list[ChainEntry]:
    """The vector's chain entries."""
    text = resources.files("eventuali").joinpath("testing/vectors/chain_v1.json").read_text("utf-8")
    return [
        ChainEntry(e["seq"], e["kind"], e["position"], e["stream_id"], e["version"],
                   bytes.fromhex(e["digest"]), bytes.fromhex(e["hash"]))
        for e in json.loads(text)["entries"]
    ]


def _write() -> None:  # pragma: no cover - run by hand
    from eventuali import registry
    from eventuali.protocol import ChainedBackend
    from eventuali.url import parse_url

    backend = cast(ChainedBackend, registry.load("python").open(parse_url("memory://?integrity=chain")))
    run_operations(backend)
    doc = {
        "description": "Chain entries of a new integrity=chain store after eventuali.testing."
        "chain_vector.OPERATIONS (SHA-256; layout in eventuali/integrity/chain.py). Every "
        "engine must produce exactly these.",
        "entries": [
            {"seq": e.seq, "kind": e.kind, "position": e.position, "stream_id": e.stream_id,
             "version": e.version, "digest": e.digest.hex(), "hash": e.hash.hex()}
            for e in backend.read_chain()
        ],
    }
    path = Path(__file__).parent / "vectors" / "chain_v1.json"
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    _write()
