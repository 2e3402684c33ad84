"""A throwaway PostgreSQL cluster (Debian's server package) on a loopback port, for tests and
benchmarks: initdb in a temporary directory, pg_ctl start, one fresh database per caller, and
stop with the directory removed."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from nodes import free_port


def server_binaries() -> Path | None:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class PostgresCluster:
    """``start()`` it, ``database()`` as often as needed, ``stop()`` it."""

    def __init__(self, binaries: Path, durable: bool = False) -> None:
        self.binaries = binaries
        self.durable = durable  # fsync on (benchmarks); tests run without it, like a tmpfs
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="stegonode-pg-"))
        self._numbers = itertools.count(1)

    def _run(self, tool: str, *args: str) -> None:
        # initdb and the server refuse to run as root: run them as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run([*prefix, str(self.binaries / tool), *args],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}{result.stderr}")

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        data = self.directory / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--locale=C", *(() if self.durable else ("--no-sync",)))
        options = f"-h 127.0.0.1 -p {self.port} -k {self.directory} -c max_connections=300"
        if not self.durable:
            options += " -F"
        self._run("pg_ctl", "-D", str(data), "-l", str(self.directory / "server.log"), "-w",
                  "-o", options, "start")
        return self

    def database(self) -> str:
        """A new, empty database; its URL."""
        name = f"stegonode_{next(self._numbers)}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def server_pid(self) -> int:
        """The postmaster's process id (every server process is its child)."""
        return int((self.directory / "data" / "postmaster.pid").read_text().split()[0])

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-w", "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
