"""Fixtures for the relay tests: the NATS JetStream server, a private stream per test, stores.

The server is ``$EVENTUALI_NATS_URL`` (default ``nats://127.0.0.1:4222``).  When
it cannot be reached the tests skip with the reason - unless
``EVENTUALI_REQUIRE_NATS=1`` (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.scaling.conftest import TARGETS, shared_url, store, store_url  # noqa: F401  (fixtures)

NATS_URL = os.environ.get("EVENTUALI_NATS_URL", "nats://127.0.0.1:4222")
REQUIRED = os.environ.get("EVENTUALI_REQUIRE_NATS") == "1"


def need(problem: str | None) -> None:
    if problem:
        if REQUIRED:
            pytest.fail(f"{problem} (EVENTUALI_REQUIRE_NATS=1, so this is a failure)")
        pytest.skip(problem)


def need_nats_port() -> None:
    """Skip (or fail, in CI) unless something listens at NATS_URL's address."""
    from urllib.parse import urlsplit

    u = urlsplit(NATS_URL)
    try:
        socket.create_connection((u.hostname, u.port or 4222), 2).close()
    except OSError as exc:
        need(f"NATS at {NATS_URL} is unreachable: {exc}")


async def _connect(url: str = NATS_URL):
    try:
        import nats
    except ImportError:
        need('nats-py is not installed (pip install "eventuali[nats]")')
    try:
        return await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    except Exception as exc:  # noqa: BLE001
        need(f"NATS at {url} is unreachable: {exc!r}")


@pytest.fixture
async def js_stream():
    """(nats connection, JetStream context, stream name, subject prefix) - deleted afterwards."""
    nc = await _connect()
    js = nc.jetstream()
    tag = uuid.uuid4().hex[:10]
    name, prefix = f"T{tag}", f"t{tag}"
    await js.add_stream(name=name, subjects=[f"{prefix}.>"])
    yield nc, js, name, prefix
    try:
        await js.delete_stream(name)
    finally:
        await nc.close()


async def stream_messages(js, stream: str) -> list:
    """Every message of ``stream``, in stream order."""
    info = await js.stream_info(stream)
    return [await js.get_msg(stream, seq) for seq in range(info.state.first_seq,
                                                            info.state.last_seq + 1)
            ] if info.state.messages else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateNats:
    """A nats-server with JetStream of our own (own port and store folder): stop and start it."""

    def __init__(self, folder: Path) -> None:
        self.binary = shutil.which("nats-server")
        self.port = free_port()
        self.folder = folder
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        assert self.binary
        self.proc = subprocess.Popen([self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", str(self.folder)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "private nats-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_nats(tmp_path):
    if shutil.which("nats-server") is None:
        need("nats-server is not installed (apt-get install nats-server)")
    server = PrivateNats(tmp_path / "jetstream")
    server.start()
    yield server
    server.stop()


async def until(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)
