"""``eventuali verify``: a sound store passes on every engine; each kind of damage is found.

The damage is done with raw SQL on SQLite files, as a disk fault or a bad
manual fix would do it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from eventuali.demo import Account
from eventuali.snapshots import SnapshotConfig, SyncSnapshotService
from eventuali.store import SyncEventStore

from .conftest import json_lines, run, seed


def test_a_sound_store_passes_every_check(target, capsys):
    url, backend = target
    seed(url, backend, accounts=3, deposits=3)
    code, out, _ = run(capsys, "verify", url, "--backend", backend)
    assert code == 0 and "passed every check" in out
    code, out, _ = run(capsys, "verify", url, "--backend", backend, "--json")
    assert code == 0 and out == ""


@pytest.fixture
def store_file(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "s.db"
    seed(f"sqlite://{path}", "python", accounts=2, deposits=4)  # positions 1-5 acc-0, 6-10 acc-1
    return f"sqlite://{path}", path


def sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for s in statements:
        conn.execute(s)
    conn.commit()
    conn.close()


def problems(capsys, url: str) -> list[dict]:
    code, out, _ = run(capsys, "verify", url, "--json")
    found = json_lines(out)
    assert code == (1 if found else 0)
    return found


@pytest.mark.parametrize("offset, what", [
    (0, "does not decode"),  # the opening brace
    ("event_id", "payload says event_id"),  # a digit of the event id: still a valid UUID
    (-1, "does not decode"),  # the closing brace
    ("timestamp", "payload says timestamp"),  # a digit of the timestamp: still a valid time
])
def test_a_flipped_byte_in_a_payload_is_found(store_file, capsys, offset, what):
    """Flips in the JSON's structure or its envelope are found.  (A flip inside a data value
    that leaves valid JSON is not: only a hash over each record could show it.)"""
    url, path = store_file
    conn = sqlite3.connect(path)
    payload = bytearray(conn.execute("SELECT payload FROM eventuali_events WHERE position = 3"
                                     ).fetchone()[0])
    if offset == "timestamp":  # the last digit of the microseconds
        offset = payload.index(b'"timestamp":"') + len(b'"timestamp":"') + 25
    elif offset == "event_id":  # the first decimal digit (a flip keeps it a digit)
        start = payload.index(b'"event_id":"') + len(b'"event_id":"')
        offset = next(i for i in range(start, start + 36) if chr(payload[i]).isdigit())
    payload[offset] ^= 0x01
    conn.execute("UPDATE eventuali_events SET payload = ? WHERE position = 3", (bytes(payload),))
    conn.commit()
    conn.close()
    found = problems(capsys, url)
    assert [(p["check"], p["position"], p["stream_id"]) for p in found] == [
        ("payload", 3, "acc-0")]
    assert what in found[0]["message"]


def test_a_row_deleted_mid_stream_is_found(store_file, capsys):
    url, path = store_file
    sql(path, "DELETE FROM eventuali_events WHERE position = 8")  # acc-1 version 3
    found = problems(capsys, url)
    assert [(p["check"], p["position"]) for p in found] == [("versions", 9)]
    assert "from version 2 to 4" in found[0]["message"]


def test_a_deleted_last_row_is_found(store_file, capsys):
    url, path = store_file
    sql(path, "DELETE FROM eventuali_events WHERE position = 10")
    found = problems(capsys, url)
    assert [(p["check"], p["stream_id"]) for p in found] == [("versions", "acc-1")]
    assert "has version 5 but its last stored event has version 4" in found[0]["message"]


def test_a_duplicated_position_is_found(store_file, capsys):
    url, path = store_file
    # The table's position is its primary key: rebuild it without the key (as
    # a careless restore could), then give one row its neighbour's position.
    cols = ("position, event_id, stream_id, stream_type, version, event_type, schema_version, "
            "timestamp, tenant, metadata, payload")
    sql(path,
        "ALTER TABLE eventuali_events RENAME TO old_events",
        f"CREATE TABLE eventuali_events AS SELECT {cols} FROM old_events",
        "DROP TABLE old_events",
        "UPDATE eventuali_events SET position = 6 WHERE position = 7")
    found = problems(capsys, url)
    assert ("positions", 6, "acc-1") in [(p["check"], p["position"], p["stream_id"])
                                          for p in found]
    assert any("position 6 duplicates the previous position 6" in p["message"] for p in found)


def test_a_corrupt_snapshot_is_found(tmp_path, capsys):
    url = f"sqlite://{tmp_path}/s.db"
    with SyncEventStore.create(url) as store:
        snapshots = SyncSnapshotService(store, SnapshotConfig(snapshot_frequency=0))
        acc = Account(id="a")
        acc.open(owner="o")
        store.save(acc)
        snapshots.create_snapshot(acc)
    assert problems(capsys, url) == []
    conn = sqlite3.connect(tmp_path / "s.db")
    payload = bytearray(conn.execute("SELECT payload FROM eventuali_snapshots").fetchone()[0])
    payload[-1] ^= 0x40
    conn.execute("UPDATE eventuali_snapshots SET payload = ?", (bytes(payload),))
    conn.execute("UPDATE eventuali_snapshots SET version = 7")
    conn.commit()
    conn.close()
    found = problems(capsys, url)
    assert [(p["check"], p["stream_id"]) for p in found] == [("snapshots", "a")] * 2
    text = " ".join(p["message"] for p in found)
    assert "ahead of the stream" in text and "fails its checksum" in text


def test_encrypted_payloads_are_checked_with_the_keys(tmp_path, capsys, monkeypatch):
    from eventuali.security import KeyManager, encrypted_codec

    keys = KeyManager.generate()
    url = f"sqlite://{tmp_path}/e.db"
    with SyncEventStore.create(url, codec=encrypted_codec(keys)) as store:
        acc = Account(id="a")
        acc.open(owner="o")
        store.save(acc)
    found = problems(capsys, url)  # no keys: it cannot be read, and says so
    assert len(found) == 1 and "does not decode" in found[0]["message"]
    def env(km: KeyManager) -> str:
        return ",".join(f"{k}={v}" for k, v in km.to_dict()["keys"].items())

    monkeypatch.setenv("K", env(keys))
    code, out, _ = run(capsys, "verify", url, "--keys-env", "K")
    assert code == 0 and "passed" in out
    other = KeyManager.generate()
    monkeypatch.setenv("K", env(other))
    code, out, _ = run(capsys, "verify", url, "--keys-env", "K", "--json")
    assert code == 1 and "does not decode" in out


@pytest.mark.parametrize("backend", ["python", "c"])
def test_a_chained_store_is_checked_against_its_hash_chain_and_an_anchor(tmp_path, capsys, backend):
    """On ``?integrity=chain`` a flip inside a data value (which the other checks cannot see)
    and a removed tail (found only against an anchor kept elsewhere) are both named."""
    from eventuali import integrity

    path = tmp_path / "chained.db"
    url = f"sqlite://{path}?integrity=chain"
    seed(url, backend, accounts=2, deposits=4)
    with SyncEventStore.create(url, backend=backend) as store:
        (tmp_path / "anchor.json").write_text(integrity.anchor(store).to_json())
    anchor = str(tmp_path / "anchor.json")
    code, out, _ = run(capsys, "verify", url, "--backend", backend, "--anchor", anchor)
    assert code == 0 and "passed every check" in out

    # A digit of an amount: valid JSON, same envelope, only the chain's hash shows it.
    conn = sqlite3.connect(path)
    payload = conn.execute("SELECT payload FROM eventuali_events WHERE position = 3").fetchone()[0]
    conn.execute("UPDATE eventuali_events SET payload = ? WHERE position = 3",
                  (payload.replace(b"11.0", b"91.0", 1),))
    conn.commit()
    conn.close()
    assert payload != payload.replace(b"11.0", b"91.0", 1)
    code, out, _ = run(capsys, "verify", url, "--backend", backend, "--json")
    found = json_lines(out)
    assert code == 1 and found and all(p["check"].startswith("chain:") for p in found)
    assert found[0]["position"] == 3

    # Cut the tail (the last event row and its chain entry): the chain left is consistent
    # on its own, so the chain check needs the anchor to name it.
    fresh = tmp_path / "cut.db"
    seed(f"sqlite://{fresh}?integrity=chain", backend, accounts=2, deposits=4)
    with SyncEventStore.create(f"sqlite://{fresh}?integrity=chain", backend=backend) as store:
        (tmp_path / "cut-anchor.json").write_text(integrity.anchor(store).to_json())
    conn = sqlite3.connect(fresh)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    chain_table = next(t for t in tables if "chain" in t)
    conn.execute(f"DELETE FROM {chain_table} WHERE seq = (SELECT MAX(seq) FROM {chain_table})")
    conn.execute("DELETE FROM eventuali_events WHERE position = (SELECT MAX(position) FROM "
                 "eventuali_events)")
    conn.commit()
    conn.close()
    code, out, _ = run(capsys, "verify", f"sqlite://{fresh}?integrity=chain", "--backend", backend,
                       "--anchor", str(tmp_path / "cut-anchor.json"), "--json")
    found = json_lines(out)
    assert code == 1 and "chain:anchor_missing" in [p["check"] for p in found]
    assert not [p for p in found if p["check"].startswith("chain:") and p["check"] != "chain:anchor_missing"]


def test_an_anchor_for_an_unchained_store_is_refused(store_file, tmp_path, capsys):
    from eventuali.integrity import GENESIS, Anchor

    url, _ = store_file
    (tmp_path / "a.json").write_text(Anchor(1, 1, GENESIS).to_json())
    code, out, _ = run(capsys, "verify", url, "--anchor", str(tmp_path / "a.json"), "--json")
    assert code == 1 and [p["check"] for p in json_lines(out)] == ["chain:none"]
