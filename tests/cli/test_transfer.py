"""``eventuali export``/``import`` and ``copy``: everything arrives, nothing twice, resumable."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from eventuali.inspection.catalog import ScanCatalog, stream_snapshots
from eventuali.inspection.transfer import COPY_CHECKPOINT, copy
from eventuali.records import Snapshot
from eventuali.store import SyncEventStore

from .conftest import json_lines, run, seed
from .test_browse import raw_write


def fill(url: str, backend: str) -> None:
    """Events of several streams interleaved, binary payloads, metadata, a tenant, snapshots
    and checkpoints: every field a store keeps."""
    seed(url, backend, accounts=3, deposits=2)
    with SyncEventStore.create(url, backend=backend) as store:
        b = store.backend
        w = raw_write("bin-1", "Blob", b"\x00\x01\xfe\xff")
        w = w._replace(tenant="tenant-a", records=[w.records[0]._replace(metadata=b'{"user":"u"}')])
        b.append([w])
        b.append([raw_write("acc-0x", "Thing", b'{"v": "<script>alert(1)</script>"}')])
        b.save_snapshot(Snapshot("acc-1", 2, 1, 1_700_000_000_000_001, b"\x07snap-a"))
        b.save_snapshot(Snapshot("acc-1", 3, 1, 1_700_000_000_000_002, b"\x07snap-b"))
        b.set_checkpoint("proj-a", 4)
        b.set_checkpoint("proj-b", 11)


def dump(url: str, backend: str | None) -> tuple:
    with SyncEventStore.create(url, backend=backend) as store:
        b = store.backend
        records = b.read_all()
        snaps = {sid: stream_snapshots(b, sid) for sid in {r.stream_id for r in records}}
        return records, {k: v for k, v in snaps.items() if v}, (
            b.get_checkpoint("proj-a"), b.get_checkpoint("proj-b"))


def test_export_then_import_into_an_empty_store_gives_an_identical_store(
        target, sqlite_url, tmp_path, capsys):
    url, backend = target
    fill(url, backend)
    path = str(tmp_path / "x.jsonl")
    code, _, err = run(capsys, "export", url, "--backend", backend, "-o", path,
                       "--checkpoint", "proj-a", "--checkpoint", "proj-b")
    assert code == 0 and "exported 11 events" in err.replace("\n", " ")
    code, out, _ = run(capsys, "import", sqlite_url, path, "--json")
    assert code == 0
    assert json_lines(out)[0] | {"digest": None} == {
        "events": 11, "skipped": 0, "snapshots": 2, "checkpoints": 2, "digest": None}
    assert dump(sqlite_url, None) == dump(url, backend)


def test_import_refuses_a_non_empty_store_unless_told_to_merge(target, sqlite_url, tmp_path,
                                                                capsys):
    url, backend = target
    fill(url, backend)
    path = str(tmp_path / "x.jsonl")
    assert run(capsys, "export", url, "--backend", backend, "-o", path)[0] == 0
    lines = open(path).read().splitlines()
    assert not any('"checkpoint"' in line for line in lines) or "memory" not in url
    seed(sqlite_url, "python", accounts=1, deposits=0)  # acc-0 version 1: the same stream id
    code, _, err = run(capsys, "import", sqlite_url, path)
    assert code == 2 and "not empty" in err
    assert len(dump(sqlite_url, None)[0]) == 1  # nothing written
    # acc-0 v1 in the target is another event than the source's acc-0 v1: a conflict
    code, _, err = run(capsys, "import", sqlite_url, path, "--merge", "skip-existing")
    assert code == 2 and "cannot merge" in err and "'acc-0' version 1" in err.replace("\n", " ")

    # a store holding a prefix of the source merges: only the missing events are added
    other = sqlite_url.replace(".db", "-b.db")
    assert run(capsys, "import", other, path)[0] == 0
    with SyncEventStore.create(other) as s:
        s.backend.delete_stream("acc-0x")  # tombstoned: not the same as missing
    fresh = sqlite_url.replace(".db", "-c.db")
    assert run(capsys, "import", fresh, path)[0] == 0
    code, out, _ = run(capsys, "import", fresh, path, "--merge", "skip-existing", "--json")
    assert code == 0 and json_lines(out)[0]["skipped"] == 11 and json_lines(out)[0]["events"] == 0


def test_import_refuses_a_damaged_export_file(tmp_path, sqlite_url, capsys):
    url = f"sqlite://{tmp_path}/s.db"
    seed(url, "python", accounts=2, deposits=1)
    path = tmp_path / "x.jsonl"
    assert run(capsys, "export", url, "-o", str(path))[0] == 0
    lines = path.read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-1]) + "\n")
    code, _, err = run(capsys, "import", sqlite_url, str(cut))
    assert code == 2 and "cut short" in err
    with SyncEventStore.create(sqlite_url) as s:
        assert s.head() == 0  # a damaged file imports nothing
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join(lines).replace('"version":2', '"version":2', 1)
                      .replace('"timestamp":1', '"timestamp":2', 1) + "\n")
    code, _, err = run(capsys, "import", sqlite_url.replace(".db", "2.db"), str(edited))
    assert code == 2 and "altered" in err
    code, _, err = run(capsys, "import", sqlite_url, str(tmp_path / "nope.jsonl"))
    assert code == 2 and "no export file" in err
    (tmp_path / "junk.jsonl").write_text("hello\n")
    code, _, err = run(capsys, "import", sqlite_url, str(tmp_path / "junk.jsonl"))
    assert code == 2 and "line 1" in err and "not JSON" in err


def test_copy_moves_everything_and_verifies(target, sqlite_url, capsys):
    url, backend = target
    fill(url, backend)
    code, out, _ = run(capsys, "copy", url, sqlite_url, "--backend", backend, "--json",
                       "--batch", "3", "--checkpoint", "proj-a", "--checkpoint", "proj-b")
    (summary,) = json_lines(out)
    assert code == 0 and summary["verified"] is True
    assert summary["source_events"] == summary["target_events"] == 11
    assert dump(sqlite_url, None) == dump(url, backend)
    code, _, err = run(capsys, "copy", url, sqlite_url.replace(".db", "-x.db"), "--backend",
                       backend, "--batch", "0")
    assert code == 2 and "batch size 0 is invalid" in err


def test_copy_sqlite_to_postgresql(tmp_path, pg_target, capsys):
    url = f"sqlite://{tmp_path}/s.db"
    fill(url, "python")
    code, out, _ = run(capsys, "copy", url, pg_target, "--json")
    assert code == 0 and json_lines(out)[0]["verified"] is True
    assert dump(pg_target, None) == dump(url, "python")


def test_copy_resumes_after_an_interruption_without_doubling(tmp_path, sqlite_url, capsys):
    url = f"sqlite://{tmp_path}/s.db"
    fill(url, "python")

    class Crash(Exception):
        pass

    def crash_after_two_batches(n: int, seen=[0]) -> None:  # noqa: B006 - a counter
        seen[0] += 1
        if seen[0] == 2:
            raise Crash

    with SyncEventStore.create(url) as src, SyncEventStore.create(sqlite_url) as dst:
        with pytest.raises(Crash):
            copy(src.backend, ScanCatalog(src.backend), dst.backend, batch=3,
                 progress=crash_after_two_batches)
        assert dst.backend.get_checkpoint(COPY_CHECKPOINT) == len(dst.backend.read_all())
    code, out, _ = run(capsys, "copy", url, sqlite_url, "--json", "--batch", "3")
    summary = json_lines(out)[0]
    assert code == 0 and summary["verified"] and summary["resumed_after"] > 0
    assert dump(sqlite_url, None) == dump(url, "python")
    # a non-empty target that is no copy in progress is refused
    code, _, err = run(capsys, "copy", sqlite_url, url)
    assert code == 2 and "not empty" in err


def test_copy_killed_with_sigkill_continues_when_run_again(tmp_path):
    src, dst = f"sqlite://{tmp_path}/big.db", f"sqlite://{tmp_path}/copy.db"
    seed(src, "python", accounts=400, deposits=49)  # 20,000 events
    cmd = [sys.executable, "-m", "eventuali", "copy", src, dst, "--batch", "50"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with SyncEventStore.create(dst + "?mode=ro") as d:
                    if (d.backend.get_checkpoint(COPY_CHECKPOINT) or 0) > 0:
                        break
            except Exception:  # noqa: BLE001 - the file may not exist yet
                pass
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no cleanup runs
        proc.wait()
    with SyncEventStore.create(dst) as d:
        partial = len(d.backend.read_all())
        assert d.backend.get_checkpoint(COPY_CHECKPOINT) == partial
    out = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert '"verified":true' in out.stdout and '"target_events":20000' in out.stdout
    if partial < 20_000:
        assert f'"resumed_after":{partial}' in out.stdout
