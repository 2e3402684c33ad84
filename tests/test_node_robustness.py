"""The node under stress: a SIGKILL mid-transfer, garbage from peers, simultaneous senders; start-up
that cannot complete (a port in use, workers that cannot load the pipeline)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pydicom
import pytest

from stegonode.codecs.keys import load_node_keys
from stegonode.dicom.pseudonyms import Pseudonymizer
from stegonode.errors import WorkerStartError
from stegonode.node import config as node_config
from stegonode.node.index import Index
from stegonode.node.storage import Storage
from stegonode.node.workers import Workers

from images import dcmtk
from nodes import DCMTK_ENV, NodeProcess, acknowledged, send_raw, storescu, write_series


def test_sigkill_mid_transfer_loses_no_acknowledged_instance(tmp_path, new_database):
    paths = write_series(tmp_path / "series", 200)
    node = NodeProcess(tmp_path / "node", database=new_database()).start()
    sender = subprocess.Popen(
        [dcmtk("storescu"), "-v", "-aec", "STEGONODE", "127.0.0.1", str(node.port), *map(str, paths)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=DCMTK_ENV,
    )
    deadline = time.monotonic() + 120
    while node.query("SELECT COUNT(*) FROM jobs")[0][0] < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    node.kill()
    acked = acknowledged(sender.communicate(timeout=120)[0])
    assert 50 <= len(acked) < 200, "the kill must land mid-transfer"

    node.start()
    node.wait_idle(len(acked))
    pseudonyms = Pseudonymizer(load_node_keys(node.data / "keys" / "node.keys").pseudonym_key)
    expected = {pseudonyms.uid(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
                for path in acked}
    done = {uid for (uid,) in node.query("SELECT sop_instance_uid FROM jobs WHERE state = 'done'")}
    assert expected <= done
    stored = {uid for (uid,) in node.query('SELECT "SOPInstanceUID" FROM instances')}
    assert stored == done and node.query("SELECT COUNT(*) FROM instances") == [(len(stored),)]
    files = list((node.data / "stored").iterdir())
    assert {path.stem for path in files} == stored
    for path in files:  # complete objects, no partial file: every pixel decodes
        ds = pydicom.dcmread(path)
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
    assert not list((node.data / "tmp").iterdir()) and not list((node.data / "inbox").iterdir())
    node.stop()


def _error_comment(storescu_debug: str) -> str:
    for line in storescu_debug.splitlines():
        if "ErrorComment" in line:
            return line.split("[", 1)[1].rsplit("]", 1)[0]
    return ""


def test_bad_input_gets_a_reason_while_a_clean_transfer_completes(tmp_path, bad_inputs, new_database):
    node = NodeProcess(tmp_path / "node", database=new_database()).start()
    clean = write_series(tmp_path / "clean", 50)
    sender = subprocess.Popen(
        [dcmtk("storescu"), "-aec", "STEGONODE", "127.0.0.1", str(node.port), *map(str, clean)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=DCMTK_ENV,
    )
    try:
        # no pixels to write in: protected with the header carrier alone
        accepted = storescu(node.port, [bad_inputs["no_pixels"], bad_inputs["rtplan"]], "-R")
        assert accepted.stderr.count("Received Store Response (Success)") == 2, accepted.stderr

        status = send_raw(node.port, bad_inputs["truncated"])
        assert status.Status == 0xC000
        assert status.ErrorComment.startswith("truncated file: pixel data has")

        accepted = storescu(node.port, [bad_inputs["undecodable"]], "-xv")  # JPEG 2000 as is
        assert "Received Store Response (Success)" in accepted.stderr  # fails later, in a worker

        output, _ = sender.communicate(timeout=300)
        assert sender.returncode == 0, output
        counts = node.wait_idle(53)
        assert counts["processed"] == 52 and counts["quarantined"] == 1
        ((reason,),) = node.query("SELECT reason FROM jobs WHERE state = 'quarantined'")
        assert reason.startswith("pixel data does not decode")
        (quarantined,) = (node.data / "quarantine").iterdir()
        status = node.run("status", "--config", str(node.config)).stdout
        assert f"quarantined: {quarantined}: pixel data does not decode" in status
        assert len(list((node.data / "stored").iterdir())) == 52
    finally:
        node.stop()
    log = node.log.read_text()
    assert "quarantined after 1 attempt(s): pixel data does not decode" in log
    assert "Traceback" not in log


def test_four_simultaneous_associations(tmp_path, new_database):
    node = NodeProcess(tmp_path / "node", database=new_database()).start()
    batches = [write_series(tmp_path / f"batch{n}", 50) for n in range(4)]
    senders = [
        subprocess.Popen(
            [dcmtk("storescu"), "-v", "-aet", f"MODALITY{n}", "-aec", "STEGONODE", "127.0.0.1",
             str(node.port), *map(str, batch)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=DCMTK_ENV,
        )
        for n, batch in enumerate(batches)
    ]
    try:
        for sender in senders:
            output, _ = sender.communicate(timeout=300)
            assert sender.returncode == 0 and len(acknowledged(output)) == 50, output[-2000:]
        counts = node.wait_idle(200)
        assert counts["processed"] == 200
    finally:
        node.stop()
    log = node.log.read_text()
    for n in range(4):
        assert f"association MODALITY{n}@127.0.0.1 released" in log


def test_port_in_use_stops_start_up_with_the_key_and_leaves_no_worker(tmp_path):
    """The workers start first (the node listens once it can protect); a port another program
    holds then stops start-up with the key to change, and the worker processes end with it."""
    node = NodeProcess(tmp_path / "node")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", node.port))
        holder.listen()
        with pytest.raises(RuntimeError, match="node exited at start"):
            node.start(retry_busy_port=False)
        assert node.process.wait(timeout=60) == 2
    log = node.log.read_text()
    assert f":{node.port}: cannot listen (Address already in use)" in log, log
    assert "worker pool" in log  # the workers had started, and were stopped
    # The node ran in a session of its own: nothing of it still runs (workers, resource tracker;
    # an exited child not yet reaped by init is no process that runs).
    deadline = time.monotonic() + 30  # processes end in their own time on a loaded machine
    while True:
        listed = subprocess.run(["ps", "-o", "stat=,args=", "-s", str(node.process.pid)],
                                capture_output=True, text=True).stdout.splitlines()
        running = [line for line in listed if not line.strip().startswith("Z")]
        if not running or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert running == [], listed


def test_workers_that_cannot_load_the_pipeline_stop_start_up_with_a_reason(tmp_path):
    """A worker process whose pipeline does not load (here: its keys are unreadable) is found at
    start, not by failing every job later."""
    config = node_config.load(None)
    index = Index(f"sqlite:///{tmp_path / 'index.sqlite'}")
    try:
        workers = Workers(index, Storage.create(tmp_path / "data"), config, tmp_path / "missing.keys",
                          tmp_path / "data")
        with pytest.raises(WorkerStartError, match="could not load the protect pipeline"):
            workers.start()
    finally:
        index.close()


def test_a_killed_writer_not_yet_reaped_leaves_its_tmp_file_to_the_sweep(tmp_path):
    """A worker killed while its staged output was in tmp/ may stay a zombie (its parent was
    killed too, and nothing has reaped it yet): the next start sweeps its file all the same."""
    from stegonode.node.storage import HOST, Storage, process_alive

    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    try:
        assert not process_alive(child.pid)
        storage = Storage.create(tmp_path / "data")
        leftover = storage.root / "tmp" / f"{HOST}.{child.pid}.0123456789abcdef.part"
        leftover.write_bytes(b"staged")
        Storage.create(tmp_path / "data")
        assert not leftover.exists()
    finally:
        child.wait()
