"""Nonces are never reused: across processes started at once, and across restarts.

AES-GCM nonces are 96 random bits from the OS (``os.urandom``), drawn per
payload (or once per batch, then split): nothing in them depends on a counter
that a restart or a second process could repeat.  These tests run the real
encryption paths in separate processes with the same key and compare.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent("""
    import sys
    from eventuali.security import EventEncryption, KeyManager
    from eventuali.serialization import RecordIdentity
    enc = EventEncryption(KeyManager({"k1": bytes(32)}))  # the same key in every process
    ids = [RecordIdentity(i.to_bytes(16, "big"), "s", i + 1) for i in range(2000)]
    out = [enc.encode(b"{}", ids[0]) for _ in range(1000)]
    out += enc.encrypt_many([b"{}"] * len(ids), ids)
    header = 3 + len("k1")
    sys.stdout.write("\\n".join(c[header:header + 12].hex() for c in out))
""")


def _nonces() -> list[str]:
    return subprocess.run([sys.executable, "-c", _SCRIPT], check=True, capture_output=True,
                          text=True).stdout.split()


def test_nonces_are_unique_across_processes_and_restarts():
    procs = [subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]  # three processes at once
    seen = [n for p in procs for n in p.communicate()[0].split()]
    assert all(p.returncode == 0 for p in procs)
    seen += _nonces() + _nonces()  # and two restarts, one after the other
    assert len(seen) == 5 * 3000
    assert len(set(seen)) == len(seen)
