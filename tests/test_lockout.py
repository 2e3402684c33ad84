"""No caller locks the node out, and no acknowledged object is lost (issue 24).

One test per failure seen against a running node:

* slow callers: associations trickling a PDU one byte at a time, and half-sent association
  requests from hundreds of addresses, are cut off at their timeouts and free their slots;
* idle callers: one address holding idle associations cannot take every slot;
* the same SOP Instance UID received twice in quick succession: the newer acknowledged copy is
  what is stored, every time;
* malformed input (mutated JPEG 2000 objects, malformed P-DATA on an established association)
  gets statuses or aborts, never an exception or traceback in the log;
* real-world oddities (a data set without its SOP UIDs, a 70,000-character Patient Name) are
  protected, never "internal error".

Timing limits here are the node's own timeouts plus a margin, never a speed figure.
"""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import JPEG2000, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage

import hostile
from attacks import closed_by_node, connect, echo, raw_association, seconds_until_echo, trickling
from images import image_path
from nodes import STEGONODE, NodeProcess, send_raw

ACSE_TIMEOUT = 2.0
IDLE_TIMEOUT = 3.0
MARGIN = 5.0  # the bound: answered within 5 s of the limit's timeout


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    node = NodeProcess(tmp_path_factory.mktemp("lockout"), workers=0, acse_timeout=ACSE_TIMEOUT,
                       idle_timeout=IDLE_TIMEOUT, max_associations=16).start()
    yield node
    node.stop()


# -- slow and idle callers ---------------------------------------------------------------------


def test_trickling_associations_are_cut_off_and_free_their_slots(node):
    sockets = []
    for number in range(16):  # every slot, from 16 addresses: no per-address limit applies
        sock, answer = raw_association(node.port, f"127.0.1.{number + 1}", f"TRICKLE{number}")
        assert answer == 0x02, "association not accepted"
        sock.sendall(struct.pack(">BxI", 0x04, 1000) + b"\x00")  # a P-DATA-TF of 1000 bytes, begun
        sockets.append(sock)
    filled = time.monotonic()
    with trickling(sockets, every=0.5):
        assert not echo(node.port), "the trickling associations did not hold the slots: nothing tested"
        seconds_until_echo(node.port, IDLE_TIMEOUT + MARGIN + 5)
        elapsed = time.monotonic() - filled
        assert elapsed <= IDLE_TIMEOUT + MARGIN, f"answered {elapsed:.1f} s after the slots filled"
        assert all(closed_by_node(sock, 2) for sock in sockets[:3])
    log = node.log.read_text()
    assert "its PDU did not arrive in time" in log
    assert "Traceback" not in log


def test_half_sent_requests_from_300_addresses_are_closed_at_the_acse_timeout(node):
    request = hostile.associate_rq(calling="HALF")
    sockets = []
    for number in range(300):
        sock = connect(node.port, f"127.0.{2 + number // 250}.{1 + number % 250}")
        sock.sendall(request[:10])
        sockets.append(sock)
    started = time.monotonic()
    with trickling(sockets, every=1.0):
        seconds_until_echo(node.port, ACSE_TIMEOUT + MARGIN)
        assert time.monotonic() - started <= ACSE_TIMEOUT + MARGIN
        time.sleep(max(0.0, started + ACSE_TIMEOUT + 0.5 - time.monotonic()))
        assert sum(closed_by_node(sock, 3) for sock in sockets[-20:]) == 20
    log = node.log.read_text()
    assert "its association request did not arrive in time" in log
    assert "Traceback" not in log


def test_idle_associations_from_one_address_leave_room_for_others(node):
    held, answers = [], []
    for _ in range(16):
        sock, answer = raw_association(node.port, "127.0.0.5", "IDLE")
        held.append(sock)
        answers.append(answer)
    try:
        assert answers.count(0x02) == 8 and answers.count(0x03) == 8, answers  # half of 16 each
        assert echo(node.port, source="127.0.0.6", calling="OTHER"), "another address was locked out"
        assert echo(node.port, source="127.0.0.7", calling="OTHERTOO")
    finally:
        for sock in held:
            sock.close()
    assert "(max_associations_per_address)" in node.log.read_text()


def test_one_calling_ae_title_cannot_take_every_slot_from_many_addresses(node):
    held, answers = [], []
    for number in range(16):
        sock, answer = raw_association(node.port, f"127.0.4.{number + 1}", "SAMEAE")
        held.append(sock)
        answers.append(answer)
    try:
        assert answers.count(0x02) == 8 and answers.count(0x03) == 8, answers
        assert echo(node.port, source="127.0.0.8", calling="DIFFERENT")
    finally:
        for sock in held:
            sock.close()


# -- one outcome per instance, malformed input -------------------------------------------------


@pytest.fixture(scope="module")
def working_node(tmp_path_factory):
    node = NodeProcess(tmp_path_factory.mktemp("working"), tables={"handlers.segment": {"segmenter": "classical"}})
    yield node.start()
    node.stop()


def _copy_of(source: str, uid: str, series: str) -> pydicom.Dataset:
    ds = pydicom.dcmread(image_path(source))
    ds.SOPInstanceUID = uid
    ds.SeriesInstanceUID = series
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    return ds


def test_the_newest_acknowledged_copy_of_an_instance_is_what_is_stored(working_node):
    rng = random.Random(24)
    ae = AE(ae_title="RACER")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    series = generate_uid()
    rounds = 20
    for _ in range(rounds):
        uid = generate_uid()
        older = _copy_of("693_UNCR.dcm", uid, series)  # 512 x 512: the slower to protect
        newer = _copy_of("CT_small.dcm", uid, series)  # 128 x 128
        newer.SOPClassUID = older.SOPClassUID
        for ds, pause in ((older, rng.uniform(0.1, 0.5)), (newer, 0.0)):
            assoc = ae.associate("127.0.0.1", working_node.port, ae_title="STEGONODE")
            assert assoc.is_established
            assert assoc.send_c_store(ds).Status == 0x0000
            assoc.release()
            time.sleep(pause)
    working_node.wait_idle(rounds, timeout=300)
    rows = working_node.query("SELECT path FROM instances WHERE SeriesInstanceUID IS NOT NULL")
    stored = [pydicom.dcmread(working_node.data / path, stop_before_pixels=True) for (path,) in rows]
    stored = [ds for ds in stored if ds.Rows in (128, 512) and ds.Modality == "CT"]
    assert len(stored) == rounds
    assert [ds.Rows for ds in stored] == [128] * rounds, "an older copy replaced a newer acknowledged one"


def _mutated_jpeg2000(number: int) -> bytes:
    """A real JPEG 2000 CT with bytes of its code stream overwritten (seeded)."""
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("JPEG2000.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{24000 + number}"
    data = bytearray(hostile.encode(ds, transfer_syntax=JPEG2000, meta_uid=ds.SOPInstanceUID))
    rng = random.Random(number)
    start = data.index(b"\xff\x4f\xff\x51")  # the code stream's SOC and SIZ markers
    for _ in range(1 + number % 4):
        at = rng.randrange(start, len(data) - 2)
        data[at:at + 2] = rng.randbytes(2)
    return bytes(data)


def test_mutated_jpeg2000_objects_get_statuses_with_reasons(working_node, tmp_path):
    for number in range(12):
        path = tmp_path / f"j2k{number}.dcm"
        path.write_bytes(_mutated_jpeg2000(number))
        ae = AE(ae_title=f"J2KSCU{number}")
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ae.add_requested_context(ds.SOPClassUID, JPEG2000)
        assoc = ae.associate("127.0.0.1", working_node.port, ae_title="STEGONODE")
        assert assoc.is_established
        _config.STORE_SEND_CHUNKED_DATASET = True
        try:
            status = assoc.send_c_store(path)
        finally:
            _config.STORE_SEND_CHUNKED_DATASET = False
            assoc.release()
        assert "Status" in status
        assert status.Status == 0 or (status.Status >> 8 in (0xA7, 0xA9, 0xC0, 0x01) and status.ErrorComment), status
    log = working_node.log.read_text()
    assert "Traceback" not in log


def test_malformed_p_data_aborts_the_association_and_the_node_goes_on(working_node):
    from hypothesis import HealthCheck, given, settings

    outcomes = []

    @settings(max_examples=60, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(hostile.command_sets())
    def send(pdu: bytes) -> None:
        sock, answer = raw_association(working_node.port, "127.0.0.9", "PDATA")
        assert answer == 0x02
        sock.sendall(pdu)
        outcomes.append(closed_by_node(sock, 0.5))
        sock.close()

    send()
    assert echo(working_node.port)
    log = working_node.log.read_text()
    assert "its PDUs broke the protocol" in log, "no input broke pynetdicom's state machine: nothing tested"
    assert "Traceback" not in log and "ended with an unexpected error" not in log


# -- real-world oddities -----------------------------------------------------------------------


def _without_sop_uids(path: Path) -> Path:
    ds = pydicom.dcmread(image_path("CT_small.dcm"))
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    del ds.SOPClassUID, ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def _with_long_name(path: Path) -> Path:
    ds = pydicom.dcmread(image_path("CT_small.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientName = "Quixote^" + "Q" * 70_000
    with pytest.warns(UserWarning):  # pydicom writes it as UN, as a modality would have to
        ds.save_as(path, enforce_file_format=True)
    return path


def test_a_data_set_without_sop_uids_and_a_70000_character_name_are_protected(working_node, tmp_path):
    import subprocess

    files = [_without_sop_uids(tmp_path / "nouids.dcm"), _with_long_name(tmp_path / "longname.dcm")]
    for path in files:
        assert send_raw(working_node.port, path).Status == 0x0000
    working_node.wait_idle(working_node.status()["received"], timeout=120)
    out = tmp_path / "out"
    keys = working_node.data / "keys"
    result = subprocess.run([STEGONODE, "protect", "--out", str(out), "--keys", str(keys / "node.keys"), *map(str, files)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.count("OK ") == 2, result.stdout + result.stderr
    assert "internal error" not in result.stdout + working_node.log.read_text()
    revealed = tmp_path / "revealed"
    result = subprocess.run([STEGONODE, "reveal", "--keys", str(working_node.peer_keys), "--out", str(revealed),
                             str(out / "longname.dcm")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    name = pydicom.dcmread(revealed / "longname.dcm")["PatientName"]  # back as it arrived: UN
    assert (name.VR, name.value) == ("UN", b"Quixote^" + b"Q" * 70_000)
    stored = pydicom.dcmread(out / "longname.dcm")
    assert "Q" * 100 not in str(stored.PatientName)
