"""Both carriers through the node: storescu in, C-FIND de-identified, `stegonode fetch` out.

Two CT slices get both carriers; a test pattern without background (too small for any pixel
payload) is stored with the header carrier alone instead of being refused, and fetch reveals
it from the header.
"""

from __future__ import annotations

import json
import shutil

import pydicom
import pytest

from images import NO_BACKGROUND, image_path
from nodes import PATIENT, NodeProcess, scu, storescu, study_keys, write_series

IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName",
               "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    """Two CT slices and a test pattern of one patient and study, as sent."""
    folder = tmp_path_factory.mktemp("carriers-in")
    paths = write_series(folder, 2)
    pattern = pydicom.dcmread(image_path(NO_BACKGROUND[0]))
    first = pydicom.dcmread(paths[0])
    for keyword in (*PATIENT, "StudyInstanceUID"):
        setattr(pattern, keyword, first.data_element(keyword).value)
    pattern.save_as(folder / "pattern.dcm", enforce_file_format=True)
    paths.append(folder / "pattern.dcm")
    return {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, paths)}, paths


@pytest.fixture(scope="module")
def node(tmp_path_factory, sent):
    node = NodeProcess(tmp_path_factory.mktemp("carriers-node"), workers=1).start()
    result = storescu(node.port, sent[1])
    assert result.returncode == 0, result.stdout + result.stderr
    node.wait_idle(len(sent[1]))
    yield node
    node.stop()


def test_too_small_is_stored_with_the_header_carrier_not_refused(node, sent):
    status = node.status()
    assert status["processed"] == 3 and status["quarantined"] == 0
    assert status["stored_by_carriers"] == {"pixels+header": 2, "header": 1}
    text = node.run("status", "--config", str(node.config)).stdout
    assert "stored objects by carriers: 1 header, 2 pixels+header" in text, text
    log = node.log.read_text()
    assert log.count("stored with carriers pixels+header") == 2 and log.count("stored with carriers header ") == 1
    assert "no certificate" not in log


def test_fetch_reveals_every_instance_exactly_from_either_carrier(node, sent, tmp_path):
    originals, _ = sent
    out = tmp_path / "fetched"
    result = node.fetch_all(out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3/3 instances revealed (1 from the header, 2 from the pixels)" in result.stdout
    (study,) = json.loads((out / "summary.json").read_text())["studies"]
    assert study["carriers"] == {"header": 1, "pixels": 2}
    for path in (out / study["study_instance_uid"]).glob("*.dcm"):
        ds = pydicom.dcmread(path)
        original = originals[ds.SOPInstanceUID]
        for keyword in IDENTIFYING:
            assert ds.data_element(keyword).value == original.data_element(keyword).value, keyword
        assert "EncryptedAttributesSequence" not in ds
        assert study["delivered_by"][path.stem] == ("header" if original.Modality != "CT" else "pixels")


def test_nothing_identifying_in_stored_or_served_files(node, sent, tmp_path):
    originals, _ = sent
    (found,) = _find_studies(node, tmp_path)
    assert found.PatientID.startswith("SN") and found.PatientID != PATIENT["PatientID"]
    served = tmp_path / "served"
    served.mkdir()
    result = scu("getscu", node.port, "-od", str(served), *study_keys(found.StudyInstanceUID))
    assert result.returncode == 0, result.stderr
    files = [*served.iterdir(), *(node.data / "stored").glob("*.dcm")]
    assert len(files) == 6
    for path in files:
        data = path.read_bytes()
        for value in PATIENT.values():
            assert value.encode() not in data, f"{value!r} in {path.name}"
        assert not any(uid.encode() in data for uid in originals), path.name
        assert pydicom.dcmread(path).EncryptedAttributesSequence


def _find_studies(node: NodeProcess, tmp_path) -> list[pydicom.Dataset]:
    out = tmp_path / "find"
    out.mkdir()
    result = scu("findscu", node.port, "-S", "-X", "-od", str(out), "-k", "QueryRetrieveLevel=STUDY",
                 "-k", "StudyInstanceUID", "-k", "PatientID")
    assert result.returncode == 0, result.stderr
    studies = [pydicom.dcmread(path) for path in sorted(out.iterdir())]
    shutil.rmtree(out)
    return studies
