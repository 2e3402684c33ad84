"""C-FIND matching (PS3.4 C.2.2.2) over a real index, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom import Dataset

from stegonode.errors import InputError
from stegonode.node import query
from stegonode.node.index import Index

STUDIES = [  # (patient, study, date, time, modality, instances)
    ("SNAAA", "2.25.1", "20240105", "081500", "CT", 3),
    ("SNAAA", "2.25.2", "20240220", "143000", "MR", 2),
    ("SNBBB", "2.25.3", "20250101", "235959.5", "CT", 1),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory, new_database) -> Iterator[Index]:
    index = Index(new_database() or f"sqlite:///{tmp_path_factory.mktemp('index')}/index.sqlite")
    number = 0
    for patient, study, date, time_, modality, count in STUDIES:
        for n in range(count):
            number += 1
            uid = f"{study}.{n}"
            index.enqueue(uid, f"token{number}", "TEST")
            (job,) = index.claim("test", 1, 60)
            attributes = {"PatientID": patient, "PatientName": f"SN^{patient}", "StudyInstanceUID": study,
                          "StudyDate": date, "StudyTime": time_, "SeriesInstanceUID": f"{study}.9",
                          "Modality": modality, "SOPInstanceUID": uid, "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
                          "InstanceNumber": str(n + 1)}
            assert index.finish(job, "test", attributes, "1.2.840.10008.1.2.1", f"stored/{uid}.dcm", "pixels+header") == "done"
    yield index
    index.close()


def _find(index: Index, model: str = "STUDY", **keys) -> list[Dataset]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = keys.pop("level", "STUDY")
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return list(query.find(index, query.parse(identifier, model)))


def _studies(found: list[Dataset]) -> list[str]:
    return [str(ds.StudyInstanceUID) for ds in found]


def test_universal_single_value_and_wildcard(index):
    assert _studies(_find(index, StudyInstanceUID="")) == ["2.25.1", "2.25.2", "2.25.3"]
    assert _studies(_find(index, StudyInstanceUID="", PatientID="SNBBB")) == ["2.25.3"]
    assert _studies(_find(index, StudyInstanceUID="", PatientName="SN^*A")) == ["2.25.1", "2.25.2"]
    assert _studies(_find(index, StudyInstanceUID="", PatientID="SN?BB")) == ["2.25.3"]
    assert _find(index, StudyInstanceUID="", PatientID="snbbb") == []
    # LIKE's and GLOB's own special characters are plain characters in a DICOM pattern
    assert _find(index, StudyInstanceUID="", PatientID="SN_A*") == []
    assert _find(index, StudyInstanceUID="", PatientID="SN%") == []
    assert _find(index, StudyInstanceUID="", PatientID="SN[AB]*") == []


def test_date_and_time_ranges(index):
    assert _studies(_find(index, StudyInstanceUID="", StudyDate="20240101-20241231")) == ["2.25.1", "2.25.2"]
    assert _studies(_find(index, StudyInstanceUID="", StudyDate="20240201-")) == ["2.25.2", "2.25.3"]
    assert _studies(_find(index, StudyInstanceUID="", StudyDate="-20240105")) == ["2.25.1"]
    assert _studies(_find(index, StudyInstanceUID="", StudyTime="235959-235959")) == ["2.25.3"]


def test_uid_list_and_computed_keys(index):
    found = _find(index, StudyInstanceUID="2.25.1\\2.25.3", NumberOfStudyRelatedInstances=None,
                  ModalitiesInStudy="")
    assert _studies(found) == ["2.25.1", "2.25.3"]
    assert [int(ds.NumberOfStudyRelatedInstances) for ds in found] == [3, 1]
    assert _studies(_find(index, StudyInstanceUID="", ModalitiesInStudy="MR")) == ["2.25.2"]


def test_levels_and_models(index):
    (patient,) = _find(index, "PATIENT", level="PATIENT", PatientID="SNAAA",
                       NumberOfPatientRelatedStudies=None)
    assert int(patient.NumberOfPatientRelatedStudies) == 2
    images = _find(index, level="IMAGE", StudyInstanceUID="2.25.1", SOPInstanceUID="")
    assert [str(ds.SOPInstanceUID) for ds in images] == ["2.25.1.0", "2.25.1.1", "2.25.1.2"]
    assert "StudyDate" not in images[0]  # only the requested keys come back
    with pytest.raises(InputError, match="PATIENT is not part of the Study Root model"):
        _find(index, level="PATIENT", PatientID="")
    with pytest.raises(InputError, match="QueryRetrieveLevel 'FRAME'"):
        _find(index, level="FRAME")


def test_retrieve_selects_every_instance_below(index):
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "PATIENT"
    identifier.PatientID = "SNAAA"
    found = query.instances(index, query.parse(identifier, "PATIENT"))
    assert len(found) == 5 and all(i.key == f"stored/{i.sop_instance_uid}.dcm" for i in found)
