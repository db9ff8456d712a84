"""Realistic bugs, one per engine, planted in the example JSON-lines engine.

Each provider below is ``examples/jsonl_engine`` with one bug of a class that
once slipped through the conformance suite; ``test_mutants.py`` runs the suite
against each and asserts that it fails, naming the broken guarantee.  They are
registered as entry points ``jsonl-<bug>`` serving the ``jsonl`` scheme.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from eventuali_jsonl import JsonlBackend, JsonlStore, _State

from eventuali import record_validation as check


def _mutant(name: str, state: type[_State] | None = None, store: type[JsonlStore] | None = None) -> type:
    store_class = store or type(f"{name}Store", (JsonlStore,), {"state_class": state or _State})
    return type(f"{name}Backend", (JsonlBackend,), {"name": f"jsonl-{name}", "priority": -100,
                                                    "store_class": store_class})


class _ForgetsToWrite(_State):
    """Applies operations of the kinds in ``unwritten`` in memory only."""

    unwritten: frozenset[str] = frozenset()

    def commit(self, op: dict[str, Any]) -> Any:
        if op["op"] in self.unwritten:
            return self.apply(op)
        return super().commit(op)


class _DeleteNotWritten(_ForgetsToWrite):
    unwritten = frozenset({"delete"})


class _TruncateNotWritten(_ForgetsToWrite):
    unwritten = frozenset({"truncate"})


class _CheckpointNotWritten(_ForgetsToWrite):
    unwritten = frozenset({"checkpoint"})


class _MetadataNotWritten(_State):
    """Writes records without their metadata (kept in memory, lost on reopen)."""

    def commit(self, op: dict[str, Any]) -> Any:
        if op["op"] != "append":
            return super().commit(op)
        stored = copy.deepcopy(op)
        for w in stored["writes"]:
            for r in w["records"]:
                r[4] = ""
        self.file.write(json.dumps(stored, separators=(",", ":")) + "\n")
        self.file.flush()
        return self.apply(op)


class _IdsNotRebuilt(_State):
    """Builds the event-id index at run time only, not from the file on open."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.ids.clear()


class _DisorderAfterRemoval(_State):
    """Rebuilds the global log stream by stream after a delete or truncate."""

    def _forget(self, stream_id: str, count: int) -> int:
        removed = super()._forget(stream_id, count)
        self.log = [r for s in self.streams.values() for r in s["records"]]
        return removed


class _CheckThenAct(JsonlStore):
    """Drops the lock between the expected-version check and the write.

    Between the two it does what such an engine really does there (encodes the
    records, writes them out): here a 1 ms pause stands for that I/O, so the window
    is as wide as in a real engine and the suite's racers meet in it on a busy
    machine too, not only when the interpreter happens to switch threads there."""

    def append(self, writes, checkpoint=None):  # type: ignore[no-untyped-def]
        state = self._open()
        check.check_append(writes, checkpoint)
        with state.lock:
            self._check(state, writes)
        op = self._append_op(writes, checkpoint)
        time.sleep(0.001)  # the I/O a real engine does between its check and its write
        with state.lock:
            return state.commit(op)


class _WaitIgnoresTimeout(JsonlStore):
    """wait_for polls until something commits, however long that takes."""

    def wait_for(self, after_position: int, timeout: float) -> int:
        check.check_wait(after_position, timeout)
        while self.head() <= after_position:
            time.sleep(0.01)
        return self.head()


class _CachedForever(JsonlStore):
    """Keeps every store's state for the life of the process (never replays the file):
    an in-process reopen then hides what was not written - here, the metadata."""

    state_class = _MetadataNotWritten

    def close(self) -> None:
        self._state = None


DeleteNotPersisted = _mutant("delete-not-persisted", _DeleteNotWritten)
TruncateNotPersisted = _mutant("truncate-not-persisted", _TruncateNotWritten)
CheckpointNotPersisted = _mutant("checkpoint-not-persisted", _CheckpointNotWritten)
MetadataNotPersisted = _mutant("metadata-not-persisted", _MetadataNotWritten)
IdIndexNotRebuilt = _mutant("id-index-not-rebuilt", _IdsNotRebuilt)
ReadAllDisorder = _mutant("read-all-disorder", _DisorderAfterRemoval)
CheckThenAct = _mutant("check-then-act", store=_CheckThenAct)
WaitHangs = _mutant("wait-hangs", store=_WaitIgnoresTimeout)
HiddenByCache = _mutant("hidden-by-cache", store=_CachedForever)

MUTANTS = {cls.name: cls for cls in (DeleteNotPersisted, TruncateNotPersisted, CheckpointNotPersisted,
                                     MetadataNotPersisted, IdIndexNotRebuilt, ReadAllDisorder,
                                     CheckThenAct, WaitHangs, HiddenByCache)}
