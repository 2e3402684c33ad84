"""Research-grade de-identification through the node: two studies of one patient, each sent to
another receiver of a cluster sharing PostgreSQL, are stored with dates moved by the same keyed
offset; C-FIND by a StudyDate range around the moved date finds the study; the residual check's
count is in the job log and `status`; `stegonode fetch` restores the exact originals.

The classical segmenter keeps this about de-identification (test_node.py runs Mask R-CNN).
"""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from nodes import PATIENT, STEGONODE, NodeProcess, scu, storescu, write_series
from postgres import PostgresCluster

CLASSICAL = {"handlers.segment": {"segmenter": "classical"}}
DATES = ("20200110", "20210301")  # study 1 (receiver A), study 2 (receiver B)
PLANTED = {"SeriesDescription": "Quixote follow-up", "ImageComments": "born 12/03/1947, PID-77031"}


def _day(value: str) -> datetime.date:
    return datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    """Study 1 (two slices) and study 2 (one slice, identity typed into its descriptions)."""
    root = tmp_path_factory.mktemp("research-in")
    first = write_series(root / "one", 2)
    second = write_series(root / "two", 1)
    for path in first:
        ds = pydicom.dcmread(path)
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = DATES[0]
        ds.save_as(path, enforce_file_format=True)
    for path in second:
        ds = pydicom.dcmread(path)
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = DATES[1]
        ds.StudyInstanceUID = generate_uid()
        for keyword, value in PLANTED.items():
            setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
    originals = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, [*first, *second])}
    return originals, first, second


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres: PostgresCluster, sent):
    root = tmp_path_factory.mktemp("research")
    keys = root / "keys"
    result = subprocess.run([STEGONODE, "keygen", str(keys)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    shared = {"database": postgres.database(), "data_dir": str(root / "storage"),
              "keys": str(keys / "node.keys"), "workers": 1, "tables": CLASSICAL}
    receivers = (NodeProcess(root / "a", **shared), NodeProcess(root / "b", **shared))
    started = []
    try:
        for receiver in receivers:
            started.append(receiver.start())
        _, first, second = sent
        for receiver, files in zip(receivers, (first, second), strict=True):
            result = storescu(receiver.port, files)
            assert result.returncode == 0, result.stdout + result.stderr
        receivers[0].wait_idle(len(first) + len(second))
        yield receivers, keys
    finally:
        for receiver in started:
            receiver.stop()


def _stored(receiver: NodeProcess) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(path) for path in sorted((receiver.data / "stored").glob("*.dcm"))]


def test_both_studies_move_by_one_offset_and_keep_their_interval(cluster, sent):
    (a, _), _ = cluster
    stored = _stored(a)
    assert len(stored) == 3 and len({ds.PatientID for ds in stored}) == 1
    by_study: dict[str, set[str]] = {}
    for ds in stored:
        by_study.setdefault(ds.StudyInstanceUID, set()).add(ds.StudyDate)
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert ds.StudyDate == ds.SeriesDate == ds.ContentDate
    dates = sorted(date for (date,) in by_study.values())
    assert len(dates) == 2 and not set(dates) & set(DATES)
    assert _day(dates[1]) - _day(dates[0]) == _day(DATES[1]) - _day(DATES[0])


def test_cfind_with_a_range_around_the_shifted_date_finds_the_study(cluster, tmp_path):
    (a, b), _ = cluster
    later = max(_stored(a), key=lambda ds: ds.StudyDate)
    day = _day(later.StudyDate)
    window = f"{day - datetime.timedelta(days=3):%Y%m%d}-{day + datetime.timedelta(days=3):%Y%m%d}"
    out = tmp_path / "find"
    out.mkdir()
    result = scu("findscu", b.port, "-S", "-X", "-od", str(out), "-k", "QueryRetrieveLevel=STUDY",
                 "-k", "StudyInstanceUID", "-k", f"StudyDate={window}")
    assert result.returncode == 0, result.stdout + result.stderr
    found = [pydicom.dcmread(path) for path in out.iterdir()]
    assert [ds.StudyInstanceUID for ds in found] == [later.StudyInstanceUID]
    assert found[0].StudyDate == later.StudyDate


def test_residues_are_counted_in_log_and_status_never_shown(cluster):
    (a, b), _ = cluster
    logs = a.log.read_text() + b.log.read_text()
    assert logs.count("identity residues removed: 3") == 1, logs[-3000:]
    assert logs.count("identity residues removed: 0") == 2
    # the whole birth date: a year alone turns up in random 2.25 UIDs
    assert "Quixote" not in logs and PATIENT["PatientBirthDate"] not in logs
    assert a.status()["identity_residues_removed"] == {"removed": 3, "objects": 1}
    text = a.run("status", "--config", str(a.config)).stdout
    assert "identity residues removed: 3 in 1 object(s)" in text, text
    (planted,) = [ds for ds in _stored(a) if ds.get("ImageComments") is not None]
    assert planted.SeriesDescription == "follow-up" and planted.ImageComments == "born"


def test_fetch_restores_the_exact_originals_dates_included(cluster, sent, tmp_path):
    (a, _), keys = cluster
    originals = sent[0]
    out = tmp_path / "fetched"
    result = a.run("fetch", "--node", f"STEGONODE@127.0.0.1:{a.port}", "--all",
                   "--keys", str(keys / "peer.keys"), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    revealed = list(Path(out).rglob("*.dcm"))
    assert len(revealed) == 3
    for path in revealed:
        ds = pydicom.dcmread(path)
        original = originals[ds.SOPInstanceUID]
        for element in original:
            if element.tag.is_private or element.keyword in ("PixelData", "DataSetTrailingPadding"):
                continue
            assert element.tag in ds and ds[element.tag] == element, element.keyword
    assert json.loads((out / "summary.json").read_text())["studies"]
    assert {str(pydicom.dcmread(p).PatientName) for p in revealed} == {PATIENT["PatientName"]}
