"""Reading a received object: the instance it is, from its data set or its file meta."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from stegonode.dicom.dicomfile import read_dicom
from stegonode.errors import InconsistentFileMetaError, InputError


def _ct(sop_instance_uid: str, media_storage_uid: str | None) -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPInstanceUID = sop_instance_uid
    if media_storage_uid is None:
        del ds.file_meta.MediaStorageSOPInstanceUID
    else:
        ds.file_meta.MediaStorageSOPInstanceUID = media_storage_uid
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)  # as a careless sender writes it
    return buffer.getvalue()


@pytest.mark.parametrize("meta_binds", [False, True])
def test_an_empty_sop_instance_uid_takes_the_file_meta_one(meta_binds):
    """An empty SOP Instance UID is no UID: the object is the instance its file meta (over the
    network, the C-STORE's Affected SOP Instance UID) names, not one every such object shares."""
    uid = generate_uid()
    ds = read_dicom(_ct("", uid), meta_binds=meta_binds)
    assert ds.SOPInstanceUID == uid == ds.file_meta.MediaStorageSOPInstanceUID


@pytest.mark.parametrize("media_storage_uid", [None, "", " "])
def test_an_object_naming_no_instance_is_refused(media_storage_uid):
    with pytest.raises(InputError, match="no SOP Instance UID in the data set or its file meta"):
        read_dicom(_ct("", media_storage_uid))


def test_meta_and_data_set_naming_different_instances():
    own, other = generate_uid(), generate_uid()
    assert read_dicom(_ct(own, other)).file_meta.MediaStorageSOPInstanceUID == own  # a file: repaired
    with pytest.raises(InconsistentFileMetaError):
        read_dicom(_ct(own, other), meta_binds=True)  # over the network: refused
