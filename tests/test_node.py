"""The node end to end: DCMTK sends, queries and retrieves; the peer fetches and reveals."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelGet

from images import dcmtk, image_path
from nodes import (
    DCMTK_ENV,
    PATIENT,
    NodeProcess,
    free_port,
    scu,
    storescu,
    study_keys,
    wait_listening,
    write_series,
)

SERIES = 100
IDENTIFYING_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                          "InstitutionName", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@dataclass
class Series:
    """The 100-slice CT series as sent: files, and the originals by SOP Instance UID."""

    paths: list[Path]
    originals: dict[str, pydicom.Dataset]


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Series:
    paths = write_series(tmp_path_factory.mktemp("series"), SERIES)
    return Series(paths, {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, paths)})


@pytest.fixture(scope="module")
def storescp(tmp_path_factory, new_database):
    """A DCMTK storescp as C-MOVE destination: one per index backend, so each node's series
    arrives in a folder of its own."""
    folder = tmp_path_factory.mktemp("storescp")
    port = free_port()
    process = subprocess.Popen(
        [dcmtk("storescp"), "-aet", "STORESCP", "-od", str(folder), str(port)], env=DCMTK_ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_listening(port)  # a fixed pause was too short on a loaded machine (moves then failed)
    yield folder, port
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def node(tmp_path_factory, series, storescp, new_database):
    """A node that has received and processed the series from DCMTK's storescu."""
    move_port = free_port()
    node = NodeProcess(
        tmp_path_factory.mktemp("node"), database=new_database(),
        peers=[
            {"ae_title": "STORESCP", "host": "127.0.0.1", "port": storescp[1]},
            {"ae_title": "STEGOPEER", "host": "127.0.0.1", "port": move_port},
        ],
    ).start()
    node.move_port = move_port
    sent = storescu(node.port, series.paths)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    node.wait_idle(SERIES)
    yield node
    node.stop()


def _study_uid(node: NodeProcess) -> str:
    (uid,) = {row[0] for row in node.query('SELECT "StudyInstanceUID" FROM instances')}
    return uid


def _findscu(node: NodeProcess, tmp_path: Path, *keys: str) -> list[pydicom.Dataset]:
    out = tmp_path / "find"
    out.mkdir()
    result = scu("findscu", node.port, "-S", "-X", "-od", str(out),
                 *[arg for key in keys for arg in ("-k", key)])
    assert result.returncode == 0, result.stdout + result.stderr
    return [pydicom.dcmread(path) for path in sorted(out.iterdir())]


def _assert_no_original_identity(path: Path, series: Series) -> None:
    data = path.read_bytes()
    original = next(iter(series.originals.values()))
    for keyword in IDENTIFYING_ATTRIBUTES[:-1]:
        value = str(original.data_element(keyword).value).encode()
        assert value not in data, f"{keyword} of the original found in {path.name}"
    assert not any(uid.encode() in data for uid in series.originals), path.name


def test_echoscu(node):
    result = scu("echoscu", node.port)
    assert result.returncode == 0, result.stderr


def test_series_is_received_and_processed(node):
    counts = node.status()
    assert counts["received"] == counts["processed"] == SERIES
    assert counts["failed"] == counts["quarantined"] == 0
    assert len(list((node.data / "stored").glob("*.dcm"))) == SERIES
    assert not list((node.data / "inbox").iterdir())
    log = (node.directory / "node.log").read_text()
    assert log.count("stored with carriers pixels+header in") == SERIES and "association STORESCU@127.0.0.1 released" in log
    for value in PATIENT.values():
        assert value not in log


def test_fetch_recovers_every_patient_exactly(node, series, tmp_path):
    out = tmp_path / "fetched"
    result = node.fetch_all(out)
    assert result.returncode == 0, result.stdout + result.stderr
    study = _study_uid(node)
    assert result.stdout.strip().startswith(f"study {study}")
    assert f"{SERIES}/{SERIES} instances revealed" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["studies"][0]["instances_revealed"] == SERIES
    files = sorted((out / study).glob("*.dcm"))
    assert len(files) == SERIES
    recovered = set()
    for path in files:
        ds = pydicom.dcmread(path)
        original = series.originals[ds.SOPInstanceUID]
        for keyword in IDENTIFYING_ATTRIBUTES:
            assert ds.data_element(keyword).value == original.data_element(keyword).value, keyword
        recovered.add(ds.SOPInstanceUID)
    assert len(recovered) == SERIES


def test_fetch_by_move_for_one_patient(node, series, tmp_path):
    (patient,) = {row[0] for row in node.query('SELECT "PatientID" FROM instances')}
    out = tmp_path / "moved"
    result = node.run("fetch", "--node", f"STEGONODE@127.0.0.1:{node.port}", "--patient", patient,
                      "--keys", str(node.peer_keys), "--out", str(out),
                      "--move-to", "STEGOPEER", "--port", str(node.move_port))
    assert result.returncode == 0, result.stdout + result.stderr
    files = list((out / _study_uid(node)).glob("*.dcm"))
    assert len(files) == SERIES
    ds = pydicom.dcmread(files[0])
    assert ds.PatientName == PATIENT["PatientName"] and ds.SOPInstanceUID in series.originals


def test_findscu_answers_with_the_deidentified_study(node, tmp_path):
    (study,) = _findscu(node, tmp_path, "QueryRetrieveLevel=STUDY", "StudyInstanceUID",
                        "PatientID", "PatientName", "NumberOfStudyRelatedInstances",
                        "ModalitiesInStudy", "AccessionNumber")
    assert study.StudyInstanceUID == _study_uid(node)
    assert study.PatientID.startswith("SN") and study.PatientID != PATIENT["PatientID"]
    assert str(study.PatientName) != PATIENT["PatientName"]
    assert study.AccessionNumber != PATIENT["AccessionNumber"]
    assert int(study.NumberOfStudyRelatedInstances) == SERIES
    assert study.ModalitiesInStudy == "CT"


def test_findscu_series_level_and_matching(node, tmp_path):
    study = _study_uid(node)
    (series_,) = _findscu(node, tmp_path, "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study}",
                          "SeriesInstanceUID", "Modality", "NumberOfSeriesRelatedInstances")
    assert series_.Modality == "CT" and int(series_.NumberOfSeriesRelatedInstances) == SERIES
    (tmp_path / "find").rename(tmp_path / "find1")
    assert _findscu(node, tmp_path, "QueryRetrieveLevel=STUDY", "PatientID=SN*", "StudyInstanceUID")
    (tmp_path / "find").rename(tmp_path / "find2")
    assert not _findscu(node, tmp_path, "QueryRetrieveLevel=STUDY", f"PatientID={PATIENT['PatientID']}")
    (tmp_path / "find").rename(tmp_path / "find3")
    images = _findscu(node, tmp_path, "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={study}",
                      "SOPInstanceUID", "InstanceNumber")
    assert len(images) == SERIES


def _assert_received_protected_series(result, folder: Path, series: Series) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    files = list(folder.iterdir())
    assert len(files) == SERIES
    for path in files:
        _assert_no_original_identity(path, series)


def test_getscu_receives_only_protected_instances(node, series, tmp_path):
    result = scu("getscu", node.port, "-od", str(tmp_path), *study_keys(_study_uid(node)), timeout=120)
    _assert_received_protected_series(result, tmp_path, series)


def test_get_accepting_only_implicit_vr_gets_converted_objects(node):
    """Stored objects go out as their files' bytes; a peer that takes only Implicit VR still
    gets every object, decompressed and converted, with the stored pixels."""
    received: list[tuple[str, pydicom.Dataset]] = []

    def on_store(event):
        dataset = event.dataset
        dataset.file_meta = event.file_meta  # its Transfer Syntax UID: what the pixels are in
        received.append((event.context.transfer_syntax, dataset))
        return 0x0000

    ae = AE(ae_title="IMPLICIT")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, ImplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="STEGONODE",
                         ext_neg=[build_role(CTImageStorage, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    identifier = pydicom.Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = _study_uid(node)
    statuses = [status.Status for status, _ in
                assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet)]
    assoc.release()
    assert statuses[-1] == 0x0000 and len(received) == SERIES
    for transfer_syntax, dataset in received:
        assert transfer_syntax == ImplicitVRLittleEndian
        stored = pydicom.dcmread(node.data / "stored" / f"{dataset.SOPInstanceUID}.dcm")
        assert np.array_equal(dataset.pixel_array, stored.pixel_array)  # stored compressed, sent decompressed


def test_movescu_to_storescp_receives_only_protected_instances(node, series, storescp):
    folder, _ = storescp
    result = scu("movescu", node.port, "-aem", "STORESCP", *study_keys(_study_uid(node)), timeout=120)
    _assert_received_protected_series(result, folder, series)


def test_move_to_unknown_destination_is_refused_with_a801(node):
    result = scu("movescu", node.port, "-v", "-aem", "NOWHERE", *study_keys(_study_uid(node)))
    assert "Received Final Move Response (Refused: MoveDestinationUnknown)" in result.stderr


def test_repeated_instances_replace_and_stay_one_row(node, series, tmp_path):
    again = series.paths[:10]
    sent = storescu(node.port, again)
    assert sent.returncode == 0, sent.stderr
    node.wait_idle(SERIES)
    assert node.query("SELECT COUNT(*) FROM instances") == [(SERIES,)]
    assert node.query("SELECT COUNT(*) FROM jobs WHERE receptions = 2") == [(10,)]
    assert len(list((node.data / "stored").glob("*.dcm"))) == SERIES


def test_caller_not_listed_is_rejected(tmp_path):
    node = NodeProcess(tmp_path, allowed_callers="peers",
                       peers=[{"ae_title": "FRIEND", "host": "127.0.0.1", "port": 104}]).start()
    try:
        stranger = scu("echoscu", node.port, "-aet", "STRANGER")
        assert stranger.returncode != 0
        assert "Calling AE Title Not Recognized" in stranger.stdout + stranger.stderr
        assert scu("echoscu", node.port, "-aet", "FRIEND").returncode == 0
    finally:
        node.stop()
    assert "rejected association from STRANGER@127.0.0.1" in node.log.read_text()


def test_objects_without_study_or_series_uid_are_stored_and_revealed_exactly(tmp_path):
    """Study and Series Instance UIDs are Type 1, yet some senders leave them out: the node stores
    such objects under generated pseudonymous UIDs (found by C-FIND like any other), and fetch
    reveals them exactly, without the UIDs they did not have."""
    originals = {}
    for missing in (("StudyInstanceUID",), ("SeriesInstanceUID",), ("StudyInstanceUID", "SeriesInstanceUID")):
        ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        for keyword in missing:
            del ds[keyword]
        ds.save_as(tmp_path / f"{len(originals)}.dcm", enforce_file_format=True)
        originals[ds.SOPInstanceUID] = ds
    node = NodeProcess(tmp_path / "node").start()
    try:
        sent = storescu(node.port, sorted(tmp_path.glob("*.dcm")))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert node.wait_idle(len(originals))["processed"] == len(originals)
        studies = _findscu(node, tmp_path, "QueryRetrieveLevel=STUDY", "StudyInstanceUID")
        assert len(studies) == len(originals) and all(s.StudyInstanceUID.startswith("2.25.") for s in studies)
        out = tmp_path / "fetched"
        result = node.fetch_all(out)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        node.stop()
    revealed = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, out.glob("*/*.dcm"))}
    assert revealed.keys() == originals.keys()
    for uid, original in originals.items():
        for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID"):
            assert revealed[uid].get(keyword) == original.get(keyword), keyword
