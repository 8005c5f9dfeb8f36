"""A throwaway PostgreSQL server from the installed binaries, for tests and benchmarks.

PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres` user (created by
Debian's package) through `runuser`. The data dir lives in a temp folder; fsync is off: nothing here must survive.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from talkvid_ops.errors import TalkvidError


def find_pg_bin() -> Path:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise TalkvidError("PostgreSQL server binaries not found (install Debian's `postgresql` package)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """Start with `start()`, stop with `stop()`; `url(dbname)` gives a psycopg2 SQLAlchemy URL."""

    port: int = field(default_factory=_free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="talkvid-pg-")))
    user: str = "postgres"
    _bin: Path | None = None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def _as_server_user(self, args: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self.user, "--", *args]
        return args

    def _run(self, args: list[str]) -> None:
        proc = subprocess.run(self._as_server_user(args), capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise TalkvidError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")

    def start(self) -> PostgresServer:
        self._bin = find_pg_bin()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o1777)  # the socket lands here, and the server user must write it
        if os.geteuid() == 0:
            shutil.chown(self.root, user=self.user)
        self._run([str(self._bin / "initdb"), "--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8", "-D", str(self.datadir)])
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        self._run([str(self._bin / "pg_ctl"), "-D", str(self.datadir), "-o", options, "-l", str(self.root / "server.log"), "-w", "-t", "60", "start"])
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise TalkvidError(f"PostgreSQL did not accept connections on port {self.port}; see {self.root / 'server.log'}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg2

        name = name or f"talkvid_{uuid.uuid4().hex[:10]}"
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def stop(self) -> None:
        if self._bin and self.datadir.exists():
            subprocess.run(
                self._as_server_user([str(self._bin / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
