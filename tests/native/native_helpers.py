"""Small record builders shared by the native engine's tests."""

from __future__ import annotations

import uuid

from eventuali.records import NewRecord, StreamWrite


def rec(event_type: str = "Happened", payload: bytes = b'{"n": 1}') -> NewRecord:
    return NewRecord(uuid.uuid4().bytes, event_type, 1, 1_700_000_000_000_000, b"{}", payload)


def write(stream_id: str, expected: int, n: int = 1, stream_type: str = "Thing", tenant: str = "") -> StreamWrite:
    return StreamWrite(stream_id, stream_type, expected, [rec() for _ in range(n)], tenant)
