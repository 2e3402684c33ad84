"""Real node processes and real DCMTK peers for the network tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage
from sqlalchemy import text

from stegonode.node.index import Index

from images import dcmtk, image_path

STEGONODE = str(Path(sys.executable).with_name("stegonode"))
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
# The identity every instance of the test series carries; none of it may leave the node.
PATIENT = {
    "PatientName": "Quixote^Alonso^Q",
    "PatientID": "PID-77031",
    "PatientBirthDate": "19470312",
    "AccessionNumber": "ACC99182",
    "InstitutionName": "Hospital de la Mancha",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 60) -> None:
    """Return once something accepts connections on loopback ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def write_series(folder: Path, count: int, sources=("693_UNCR.dcm", "693_UNCI.dcm")) -> list[Path]:
    """``count`` real CT slices of one patient, one study and series, each with its own UIDs."""
    folder.mkdir(parents=True, exist_ok=True)
    templates = [pydicom.dcmread(image_path(name)) for name in sources]
    study, series = generate_uid(), generate_uid()
    paths = []
    for number in range(count):
        ds = templates[number % len(templates)]
        for keyword, value in PATIENT.items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number + 1
        path = folder / f"ct{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def scu(tool: str, port: int, *options: str, files=(), timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a DCMTK SCU (echoscu, findscu, getscu, movescu, storescu) against the node."""
    return subprocess.run(
        [dcmtk(tool), *options, "-aec", "STEGONODE", "127.0.0.1", str(port), *map(str, files)],
        capture_output=True, text=True, env=DCMTK_ENV, timeout=timeout,
    )


def study_keys(study: str) -> tuple[str, ...]:
    """findscu/getscu/movescu options that select one study (Study Root)."""
    return ("-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}")


def storescu(port: int, files: list[Path] | list[str], *options: str, aet: str = "STORESCU",
             timeout: float = 300) -> subprocess.CompletedProcess:
    return scu("storescu", port, "-v", "-aet", aet, *options, files=files, timeout=timeout)


def acknowledged(storescu_log: str) -> list[str]:
    """Files whose C-STORE storescu logged as successful, in sending order."""
    done, current = [], None
    for line in storescu_log.splitlines():
        if "Sending file:" in line:
            current = line.split("Sending file:", 1)[1].strip()
        elif "Received Store Response (Success)" in line and current:
            done.append(current)
            current = None
    return done


def send_raw(port: int, path: Path, ae_title: str = "STEGONODE") -> pydicom.Dataset:
    """C-STORE the file's bytes as they are (pynetdicom, no re-encoding): for broken files.

    The request's SOP Class and Instance UIDs come from the file meta, the transfer syntax
    from its Transfer Syntax UID (Explicit VR Little Endian or Deflated are proposed).
    """
    ae = AE(ae_title="RAWSCU")
    for syntax in (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):  # one context each
        ae.add_requested_context(CTImageStorage, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title=ae_title)
    assert assoc.is_established
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        return assoc.send_c_store(path)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = False
        assoc.release()


class NodeProcess:
    """``stegonode serve`` in its own process group, on a free port, with a temporary data dir."""

    def __init__(self, directory: Path, command: str = "serve", **node: object) -> None:
        self.directory = directory
        self.command = command  # serve, or worker (a worker host: no port)
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.peers: list[dict] = node.pop("peers", [])  # type: ignore[assignment]
        # Other tables of node.toml, e.g. {"pipeline": {"handlers": [...]}}.
        self.tables: dict[str, dict] = node.pop("tables", {})  # type: ignore[assignment]
        self.tables.setdefault("web", {"enabled": False})  # the console's tests switch it on
        self.node = {"port": self.port, "data_dir": str(directory / "data"), "workers": 2, **node}
        self.config = directory / "node.toml"
        self.log = directory / "node.log"
        self.process: subprocess.Popen | None = None

    def write_config(self) -> None:
        lines = ["[node]"]
        tables = {key: value for key, value in self.node.items() if isinstance(value, dict)}
        lines += [f"{key} = {_toml(value)}" for key, value in self.node.items() if key not in tables]
        for name, table in tables.items():
            lines += ["", f"[node.{name}]"] + [f"{key} = {_toml(value)}" for key, value in table.items()]
        for name, table in self.tables.items():
            lines += ["", f"[{name}]"] + [f"{key} = {_toml(value)}" for key, value in table.items()]
        for peer in self.peers:
            lines += ["", "[[peers]]"] + [f"{key} = {_toml(value)}" for key, value in peer.items()]
        self.config.write_text("\n".join(lines) + "\n")
        tomllib.loads(self.config.read_text())

    def start(self, retry_busy_port: bool = True) -> NodeProcess:
        """Start and wait until it listens. The port free_port() found may be taken before the
        node binds it (any client connection of the suite can get it as its ephemeral port):
        then the node is started again on another free port, unless ``retry_busy_port`` is off
        (a test of that very refusal)."""
        for _ in range(3):
            try:
                return self._start_once()
            except RuntimeError as exc:
                if not (retry_busy_port and self.command == "serve" and "(Address already in use)" in str(exc)):
                    raise
                self.port = self.node["port"] = free_port()
        return self._start_once()

    def _start_once(self) -> NodeProcess:
        self.write_config()
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [STEGONODE, self.command, "--config", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.directory,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited at start:\n{self.log.read_text()}")
            if ("listening on" if self.command == "serve" else "worker pool") in self.log.read_text():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"node did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the node and its workers at once, like a power cut of the process tree."""
        if self.process:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def data(self) -> Path:
        return Path(self.node["data_dir"])  # type: ignore[arg-type]

    @property
    def database(self) -> str:
        """node.database as configured, or the default SQLite file in the data directory."""
        return str(self.node.get("database") or f"sqlite:///{self.data / 'index.sqlite'}")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([STEGONODE, *args], capture_output=True, text=True, timeout=600,
                              cwd=self.directory)

    def status(self) -> dict:
        result = self.run("status", "--config", str(self.config), "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def wait_idle(self, expected: int, timeout: float = 300) -> dict:
        """Wait until ``expected`` instances are received and none is queued or failed."""
        index = Index(self.database)  # in-process: polling the CLI costs a core
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                counts = index.counts()
                if counts["received"] >= expected and counts["queued"] == 0 and counts["failed"] == 0:
                    return counts
                time.sleep(0.1)
            raise AssertionError(f"node not idle after {timeout} s: {index.counts()}")
        finally:
            index.close()

    def query(self, sql: str, *parameters: object) -> list[tuple]:
        """Read the node's index directly (what an admin would do with sqlite3 or psql);
        parameters in the driver's style (SQLite ?, PostgreSQL %s)."""
        index = Index(self.database)
        try:
            with index.engine.connect() as db:
                rows = db.exec_driver_sql(sql, parameters) if parameters else db.execute(text(sql))
                return [tuple(row) for row in rows]
        finally:
            index.close()

    @property
    def peer_keys(self) -> Path:
        return self.data / "keys" / "peer.keys"

    def fetch_all(self, out: Path) -> subprocess.CompletedProcess:
        """``stegonode fetch --all`` from this node by C-GET, revealed with its peer keys into ``out``."""
        return self.run("fetch", "--node", f"STEGONODE@127.0.0.1:{self.port}", "--all",
                        "--keys", str(self.peer_keys), "--out", str(out))


class OrthancProcess(NodeProcess):
    """Orthanc with the stegonode plugin, set up by ``stegonode orthanc-config`` from a node.toml
    (AE title, DICOM port, keys, [[peers]]) on free loopback ports; the same start and stop."""

    def __init__(self, directory: Path, **node: object) -> None:
        node.setdefault("ae_title", "ORTHANC")
        super().__init__(directory, **node)
        self.http_port = free_port()
        self.command: list[str] = []
        self.options: list[str] = []  # more orthanc-config options, e.g. --dicomweb

    def configure(self) -> None:
        """node.toml, then ``stegonode orthanc-config``; keeps the start command it prints."""
        self.write_config()
        result = self.run("orthanc-config", "--out", str(self.data), "--config", str(self.config),
                          "--http-port", str(self.http_port), *self.options)
        assert result.returncode == 0, result.stderr
        self.command = result.stdout.strip().splitlines()[-1].split()

    def start(self) -> OrthancProcess:
        if not self.command:
            self.configure()
        offset = self.log.stat().st_size if self.log.exists() else 0  # a restart appends
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=self.directory)
        deadline = time.monotonic() + 180  # the plugin loads torch and Mask R-CNN first
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start:\n{self.log.read_text()}")
            if "DICOM server listening" in self.log.read_text()[offset:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not start:\n{self.log.read_text()}")

    @property
    def data(self) -> Path:
        return self.directory / "orthanc"

    def rest(self, path: str, body: object = None, method: str | None = None) -> bytes:
        """Orthanc's REST API (GET, or POST of ``body`` as JSON, or ``method``); the raw answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data, method=method)
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.read()

    def json(self, path: str, body: object = None):
        return json.loads(self.rest(path, body))


ORTHANC = "/usr/sbin/Orthanc"
ORTHANC_DICOMWEB = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def plain_orthanc(directory: Path, servers: dict | None = None) -> tuple[subprocess.Popen, int]:
    """A plain Orthanc (no stegonode) with Debian's DICOMweb plugin on loopback, ``servers`` its
    DICOMweb peers (DicomWeb.Servers); (process, HTTP port)."""
    if not (Path(ORTHANC).exists() and ORTHANC_DICOMWEB.exists()):
        raise RuntimeError("Orthanc or orthanc-dicomweb missing: scripts/setup.sh --test installs them")
    port = free_port()
    config = {
        "Name": "PLAIN", "HttpPort": port, "DicomPort": free_port(), "RemoteAccessAllowed": False,
        "StorageDirectory": str(directory / "storage"), "IndexDirectory": str(directory / "index"),
        "Plugins": [str(ORTHANC_DICOMWEB)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": servers or {}},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "orthanc.json").write_text(json.dumps(config))
    log = open(directory / "orthanc.log", "w")
    process = subprocess.Popen([ORTHANC, str(directory / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while "HTTP server listening" not in (directory / "orthanc.log").read_text():
        assert process.poll() is None and time.monotonic() < deadline, (directory / "orthanc.log").read_text()
        time.sleep(0.1)
    return process, port


def orthanc_rest(port: int, path: str, body: object = None) -> Any:
    """Orthanc's REST API on loopback: GET, or POST of ``body`` as JSON; the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", data), timeout=120) as answer:
        return json.loads(answer.read())


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\") + '"'
