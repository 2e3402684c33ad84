"""The real images the tests use: pydicom-data and pydicom's own test files."""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

# The protect/reveal issue's named round-trip set; discovery below must find all of them.
REQUIRED = (
    "693_UNCR.dcm", "693_J2KR.dcm", "explicit_VR-UN.dcm", "bad_sequence.dcm",
    "J2K_pixelrep_mismatch.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "examples_overlay.dcm",
    "MR2_UNCR.dcm", "RG1_UNCR.dcm", "RG3_UNCR.dcm", "eCT_Supplemental.dcm", "JPEG2000_UNC.dcm",
)
SMALL = ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm")
# SMPTE test patterns: pattern everywhere, no background to carry data; protect must say so.
NO_BACKGROUND = ("mlut_18.dcm", "vlut_04.dcm")


def _data_dirs() -> list[Path]:
    import data_store  # the import name of the pydicom-data package

    return [Path(pydicom.data.__file__).parent / "test_files", Path(data_store.__file__).parent]


def _grayscale_images(min_side: int) -> list[str]:
    """Names of decodable grayscale images with rows and columns >= min_side."""
    names = set()
    for folder in _data_dirs():
        for path in folder.rglob("*.dcm"):
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:
                continue
            if (
                ds.get("PhotometricInterpretation") in ("MONOCHROME1", "MONOCHROME2")
                and ds.get("SamplesPerPixel", 1) == 1
                and ds.get("BitsAllocated") in (8, 16)
                and min(ds.get("Rows", 0), ds.get("Columns", 0)) >= min_side
                and _decodes(path)
            ):
                names.add(path.name)
    return sorted(names)


def _decodes(path: Path) -> bool:
    try:
        pydicom.dcmread(path).pixel_array
        return True
    except Exception:
        return False


ROUND_TRIP = [name for name in _grayscale_images(256) if name not in NO_BACKGROUND]


def image_path(name: str) -> Path:
    return Path(get_testdata_file(name))


def dcmtk(tool: str) -> str:
    """Absolute path of a DCMTK/dicom3tools binary (pynetdicom installs same-named scripts)."""
    path = f"/usr/bin/{tool}"
    if not os.path.exists(path):
        pytest.fail(f"{path} missing: run scripts/setup.sh (installs dcmtk and dicom3tools)")
    return path
