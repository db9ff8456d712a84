"""One SQLite file, two engines: a file written by either is read and appended to by the other."""

from __future__ import annotations

import sqlite3

import pytest
from eventuali_python import PythonBackend
from native_helpers import write

from eventuali.records import ReadFilter, Snapshot
from eventuali.url import parse_url


@pytest.mark.parametrize("first, second", [("python", "c"), ("c", "python")])
def test_file_written_by_one_engine_is_read_and_extended_by_the_other(c_provider, tmp_path, first, second):
    engines = {"python": PythonBackend, "c": c_provider}
    url = parse_url(f"sqlite://{tmp_path / 'shared.db'}")
    a = engines[first].open(url)
    a.append([write("order-1", 0, 3, "Order", "acme"), write("user-1", 0, 1, "User")])
    a.save_snapshot(Snapshot("order-1", 3, 1, 42, b"state"))
    a.set_checkpoint("projector", 2)
    a.delete_stream("gone")
    written = a.read_all()
    a.close()

    b = engines[second].open(url)
    assert b.read_all() == written
    assert b.stream_version("order-1") == 3
    assert b.load_snapshot("order-1") == Snapshot("order-1", 3, 1, 42, b"state")
    assert b.get_checkpoint("projector") == 2
    assert b.head() == 4
    positions = b.append([write("order-1", 3, 2, "Order", "acme")], checkpoint=("projector", 4))
    assert positions == [5, 6]
    with pytest.raises(Exception) as info:
        b.append([write("gone", 0)])
    assert type(info.value).__name__ == "StreamDeletedError"
    both = b.read_all()
    b.close()

    a = engines[first].open(url)
    assert a.read_all() == both
    assert a.read_all(1, None, ReadFilter(tenant="acme")) == [r for r in both if r.tenant == "acme"]
    assert a.stream_version("order-1") == 5
    assert a.get_checkpoint("projector") == 4
    a.close()

    with sqlite3.connect(tmp_path / "shared.db") as conn:
        meta = dict(conn.execute("SELECT key, value FROM eventuali_meta"))
    assert meta["schema_version"] == "1"
    assert meta["created_by"].split()[0] == first
