"""Every Python example in the security, tenancy, caching, observability, integrity and limits docs runs as written."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks():
    for name in ("security.md", "tenancy.md", "caching.md", "observability.md", "integrity.md", "limits.md"):
        text = (DOCS / name).read_text()
        for i, code in enumerate(_BLOCK.findall(text)):
            yield pytest.param(name, code, id=f"{name}-{i}")


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("name,code", list(_blocks()))
def test_doc_example_runs(name, code, tmp_path):
    if "redis" in code and not _redis_up():
        if os.environ.get("EVENTUALI_REQUIRE_REDIS") == "1":
            pytest.fail("Redis at 127.0.0.1:6379 is required (EVENTUALI_REQUIRE_REDIS=1)")
        pytest.skip("Redis at 127.0.0.1:6379 is not reachable")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTUALI_URL")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{name} example failed:\n{proc.stderr[-3000:]}"
