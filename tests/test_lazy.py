"""stegonode.dicom.lazy: what protect skips decoding gives the same result as decoding it.

Real objects of ../shared/studies: an RT structure set (Implicit VR, about 800,000 numbers in its
Contour Data) and an X-Ray Radiation Dose SR (a deep content tree, Explicit VR)."""

from __future__ import annotations

import copy
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement

from stegonode.dicom.lazy import copy_dataset, same_dataset, undecoded_number
from stegonode.handlers.collect import collect, serialize

STUDIES = Path("/work/shared/studies")
OBJECTS = [STUDIES / "dicompyler_breast_rt" / "RTSTRUCT.dcm", STUDIES / "pyskindose_rdsr" / "RDSR_siemens_axiom.dcm"]
pytestmark = pytest.mark.skipif(not STUDIES.is_dir(), reason="../shared/studies not present")


def _read(path: Path) -> Dataset:
    """The object with every sequence cut to its first 8 items (the numbers inside stay as read)."""
    return _cut(pydicom.dcmread(path))


def _cut(ds: Dataset) -> Dataset:
    for tag in ds.keys():
        item = ds.get_item(tag)
        vr = item.VR or (None if tag.is_private else dictionary_VR(tag))
        if vr == "SQ":
            ds[tag].value = ds[tag].value[:8]
            for nested in ds[tag].value:
                _cut(nested)
    return ds


def _decoded(ds: Dataset) -> Dataset:
    """``ds`` with every element decoded, at every depth."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                _decoded(item)
    return ds


def _undecoded_numbers(ds: Dataset) -> int:
    count = 0
    for tag in ds.keys():
        item = ds.get_item(tag)
        if isinstance(item, RawDataElement):
            count += undecoded_number(ds, tag)
        elif item.VR == "SQ":
            count += sum(_undecoded_numbers(nested) for nested in item.value)
    return count


@pytest.mark.parametrize("path", OBJECTS, ids=lambda p: p.name)
def test_copy_is_equal_and_independent(path):
    original = _read(path)
    copied = copy_dataset(original)
    assert same_dataset(copied, original) and copied == original
    sequence = next(e for e in copied if e.VR == "SQ")
    sequence.value[0].add_new(0x00081030, "LO", "changed in the copy only")
    assert "StudyDescription" not in original[sequence.tag].value[0]
    assert not same_dataset(copied, original) and copied != original


@pytest.mark.parametrize("path", OBJECTS, ids=lambda p: p.name)
def test_collect_and_deidentify_give_what_decoding_everything_gives(path, pipeline):
    """The carried attributes serialize to the same bytes, and the de-identified object is the
    same, whether protect decodes every element or leaves the numbers as read."""
    deidentifier = next(h for h in pipeline.handlers if h.name == "deidentify").deidentifier
    lazy, eager = _read(path), _decoded(_read(path))
    assert serialize(collect(lazy, deidentifier)) == serialize(collect(eager, deidentifier))
    numbers = _undecoded_numbers(lazy)
    assert numbers > 0 or path.name != "RTSTRUCT.dcm"
    deidentifier(lazy)
    deidentifier(eager)
    assert _undecoded_numbers(lazy) == numbers  # numbers were never decoded
    assert lazy == eager
    assert copy.deepcopy(lazy) == eager
