"""stegonode inside Orthanc in queue mode (``[orthanc] mode = "queue"``): a real Orthanc with
the plugin, fed by DCMTK's storescu; the callback answers once the received bytes are durable,
the worker processes protect them and store the protected object into Orthanc."""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from stegonode.codecs import keys as keyfiles
from stegonode.dicom.pseudonyms import Pseudonymizer
from stegonode.handlers.protection import already_protected
from stegonode.node.orthanc_queue import quarantined

from images import image_path
from nodes import DCMTK_ENV, OrthancProcess, acknowledged, scu, write_series
from test_orthanc import identifying, leaks, pytestmark  # noqa: F401  (skipped without Orthanc)

QUEUE = {"orthanc": {"mode": "queue"}}


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("orthanc-queue-keys")
    keyfiles.generate(directory)
    return directory


def queue_orthanc(directory: Path, keys: Path) -> OrthancProcess:
    return OrthancProcess(directory, keys=str(keys / "node.keys"), tables=dict(QUEUE))


def new_uids(files: list[Path], keys: Path) -> set[str]:
    """The protected objects' SOP Instance UIDs: the keyed pseudonyms of the originals'."""
    pseudonyms = Pseudonymizer(keyfiles.load_node_keys(keys / "node.keys").pseudonym_key)
    return {pseudonyms.uid(str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID))
            for path in files}


def stored_uids(orthanc: OrthancProcess) -> set[str]:
    return {item["MainDicomTags"]["SOPInstanceUID"] for item in orthanc.json("/instances?expand")}


def wait_stored(orthanc: OrthancProcess, expected: set[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if expected <= stored_uids(orthanc):
            return
        time.sleep(0.2)
    missing = expected - stored_uids(orthanc)
    raise AssertionError(f"{len(missing)} acknowledged instance(s) not stored after {timeout} s")


def queue_files(orthanc: OrthancProcess, area: str) -> list[Path]:
    return sorted((orthanc.data / "queue" / area).glob("*.dcm"))


class Watcher:
    """Polls Orthanc's storage area, index and REST answers while a transfer runs."""

    def __init__(self, orthanc: OrthancProcess, values: set[bytes]) -> None:
        self.orthanc, self.values = orthanc, values
        self.found: list[str] = []
        self.polls = 0
        self.seen_instances = 0
        self._checked: set[tuple[Path, int]] = set()

    def poll(self) -> None:
        for folder in ("storage", "index"):
            for path in (self.orthanc.data / folder).rglob("*"):
                if not path.is_file():
                    continue
                try:
                    size = path.stat().st_size
                    if (path, size) in self._checked and folder == "storage":
                        continue  # stored files are written once
                    self._checked.add((path, size))
                    self.found += [f"{path}: {v!r}" for v in leaks(path.read_bytes(), self.values)]
                except FileNotFoundError:
                    continue  # a journal gone between listing and reading
        answers = [self.orthanc.rest(p) for p in ("/patients?expand", "/studies?expand",
                                                  "/series?expand", "/instances?expand")]
        self.seen_instances = max(self.seen_instances, len(json.loads(answers[-1])))
        for answer in answers:
            self.found += [f"REST: {v!r}" for v in leaks(answer, self.values)]
        self.polls += 1


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory, keys):
    work = tmp_path_factory.mktemp("orthanc-queue")
    server = queue_orthanc(work / "server", keys)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_queue_mode_stores_50_protected_and_no_phi_reaches_orthanc_meanwhile(orthanc, keys, tmp_path):
    files = write_series(tmp_path / "series", 50)
    values = identifying(files)
    watcher = Watcher(orthanc, values)
    result: dict[str, subprocess.CompletedProcess] = {}
    sender = threading.Thread(target=lambda: result.update(sent=scu("storescu", orthanc.port, "-v",
                                                                     files=files, timeout=600)))
    sender.start()
    expected = new_uids(files, keys)
    deadline = time.monotonic() + 600
    while (sender.is_alive() or not expected <= stored_uids(orthanc)) and time.monotonic() < deadline:
        watcher.poll()
    sender.join()
    watcher.poll()

    assert len(acknowledged(result["sent"].stderr)) == 50, result["sent"].stderr
    assert watcher.found == []
    assert watcher.polls >= 2
    assert stored_uids(orthanc) >= expected
    for instance in orthanc.json("/instances"):
        ds = pydicom.dcmread(io.BytesIO(orthanc.rest(f"/instances/{instance}/file")))
        assert already_protected(ds)
        assert not leaks(orthanc.rest(f"/instances/{instance}/file"), values)
    wait_until(lambda: queue_files(orthanc, "inbox") == [], "the queue's inbox empties")
    assert quarantined(orthanc.data / "queue") == {}
    assert not leaks(orthanc.log.read_bytes(), values)


def test_queue_mode_quarantines_what_the_pipeline_refuses_after_the_answer(orthanc, bad_inputs):
    before = stored_uids(orthanc)
    sent = scu("storescu", orthanc.port, "-v", "-xv", files=[bad_inputs["undecodable"]], timeout=300)
    # Durably received: the answer comes before the pipeline runs.
    assert "Received Store Response (Success)" in sent.stderr, sent.stderr
    wait_until(lambda: quarantined(orthanc.data / "queue"), "the object is quarantined")
    (token, reason), = quarantined(orthanc.data / "queue").items()
    assert reason.startswith("pixel data does not decode"), reason
    assert [path.stem for path in queue_files(orthanc, "quarantine")] == [token]
    # The log line and the index record follow the files.
    wait_until(lambda: f"queued object {token}" in orthanc.log.read_text(), "the quarantine is logged")
    assert reason in orthanc.log.read_text()
    assert stored_uids(orthanc) == before
    # Listed where the node's own quarantine is: its index, so `stegonode status` (and the console).
    wait_until(lambda: (Path(orthanc.node["data_dir"]) / "index.sqlite").exists() and orthanc.status()["quarantined"],
               "the quarantine is in the node's index")
    status = orthanc.status()
    listed = [entry for entry in status["quarantined_objects"] if Path(entry["file"]).stem == token]
    assert len(listed) == 1 and listed[0]["reason"] == reason, status["quarantined_objects"]
    assert Path(listed[0]["file"]) == orthanc.data / "queue" / "quarantine" / f"{token}.dcm"
    assert status["quarantined"] >= 1
    text = orthanc.run("status", "--config", str(orthanc.config)).stdout
    assert f"quarantined: {listed[0]['file']}: {reason}" in text
    # What needs no pixel decoding is still refused with its status, before the answer: here
    # a policy refusal (Burned In Annotation YES).
    burned = pydicom.dcmread(image_path("693_UNCR.dcm"))
    burned.BurnedInAnnotation = "YES"
    burned.SOPInstanceUID = burned.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    burned.save_as(bad_inputs["undecodable"].with_name("burned.dcm"))
    refused = scu("storescu", orthanc.port, "-v", files=[bad_inputs["undecodable"].with_name("burned.dcm")],
                  timeout=300)
    assert "Received Store Response" in refused.stderr and "Received Store Response (Success)" not in refused.stderr, \
        refused.stderr
    assert stored_uids(orthanc) == before


def test_queue_mode_loses_no_acknowledged_instance_when_orthanc_is_killed(tmp_path, keys):
    orthanc = queue_orthanc(tmp_path / "orthanc", keys)
    orthanc.start()
    files = write_series(tmp_path / "series", 100)
    log = tmp_path / "storescu.log"
    try:
        with open(log, "w") as out:
            sender = subprocess.Popen(
                ["/usr/bin/storescu", "-v", "-aec", "ORTHANC", "127.0.0.1", str(orthanc.port), *map(str, files)],
                stdout=out, stderr=subprocess.STDOUT, env=DCMTK_ENV, text=True)
        wait_until(lambda: len(acknowledged(log.read_text())) >= 30 or sender.poll() is not None,
                   "30 instances acknowledged")
        orthanc.kill()  # SIGKILL to Orthanc and its worker processes, mid-transfer
        sender.wait(timeout=120)
        done = [Path(path) for path in acknowledged(log.read_text())]
        assert 30 <= len(done) < 100, "the kill came after the transfer"
        # Receiving outpaces protecting: acknowledged objects wait in the queue for the restart.
        assert queue_files(orthanc, "inbox")
        orthanc.start()
        assert "left by a previous run are protected now" in orthanc.log.read_text()
        wait_stored(orthanc, new_uids(done, keys))
        wait_until(lambda: queue_files(orthanc, "inbox") == [], "the queue's inbox empties")
        assert quarantined(orthanc.data / "queue") == {}
        assert all(already_protected(pydicom.dcmread(io.BytesIO(orthanc.rest(f"/instances/{i}/file"))))
                   for i in orthanc.json("/instances"))
    finally:
        orthanc.stop()


def wait_until(condition, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached after {timeout} s: {what}")
