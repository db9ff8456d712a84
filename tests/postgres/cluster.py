"""Throwaway PostgreSQL 15 clusters for tests that restart, pause or kill a server.

The shared server on 127.0.0.1:5432 is used by everyone on the machine, so the
tests that restart a server, or need a primary with a hot standby, run their
own: ``initdb`` into a temporary folder, ``pg_ctl`` on a free port, as the
``postgres`` user when the tests run as root (PostgreSQL refuses to run as
root).  Every cluster is stopped and its folder removed when the test ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

BIN = Path(os.environ.get("EVENTUALI_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> str | None:
    """None when throwaway clusters can be made here, else the reason."""
    if not (BIN / "initdb").exists():
        return f"PostgreSQL server binaries not found in {BIN} (set EVENTUALI_PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser, cannot start postgres as user postgres"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    argv = [str(c) for c in cmd]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


class Cluster:
    """One throwaway server: a data folder, a port, start/stop/kill."""

    def __init__(self, root: Path, data: Path, port: int):
        self.root = root
        self.data = data
        self.port = port
        self.log = root / f"{data.name}.log"

    # --- making ---------------------------------------------------------------

    @classmethod
    def create(cls, **settings: str) -> Cluster:
        root = Path(tempfile.mkdtemp(prefix="eventuali-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        data = root / "primary"
        _run(BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        cluster = cls(root, data, free_port())
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{root}'",
            "max_connections": "40",
            "shared_buffers": "32MB",
            "fsync": "off",  # a throwaway server: process crashes are what we test, not power loss
            "wal_level": "replica",
            "max_wal_senders": "5",
            "hot_standby": "on",
            "wal_receiver_status_interval": "1s",
            **settings,
        }
        cluster.write_conf(conf)
        return cluster

    def write_conf(self, conf: dict[str, str]) -> None:
        text = "".join(f"{k} = {v}\n" for k, v in conf.items())
        path = self.data / "postgresql.auto.conf"
        existing = path.read_text() if path.exists() else ""
        with open(path, "w") as f:
            f.write(existing + text + f"port = {self.port}\n")

    def standby(self) -> Cluster:
        """A hot standby of this (running) server, streaming from it, not started yet."""
        data = self.root / f"standby{len(list(self.root.glob('standby*')))}"
        _run(
            BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres",
            "-D", data, "-R", "-c", "fast", "-X", "stream",
        )  # fmt: skip
        standby = Cluster(self.root, data, free_port())
        standby.write_conf({"hot_standby": "on"})
        return standby

    # --- running --------------------------------------------------------------

    def start(self) -> Cluster:
        _run(BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        _run(BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self) -> None:
        _run(BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-m", "fast", "-w", "-t", "60", "restart")

    def kill(self) -> None:
        """SIGKILL the postmaster (a server that dies, not one that shuts down)."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        time.sleep(0.2)

    def url(self, database: str = "postgres", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def destroy(self) -> None:
        """Stop every server under this cluster's folder and remove the folder."""
        for data in [p for p in self.root.iterdir() if (p / "PG_VERSION").exists()]:
            if (data / "postmaster.pid").exists():
                _run(BIN / "pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", "30", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
