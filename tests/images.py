"""The real images the tests use: pydicom-data and pydicom's own test files (found by
stegonode.training.images, which the report uses too)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from stegonode.segmenters.maskrcnn import NETWORK_MODALITIES
from stegonode.training import images

# The protect/reveal issue's named round-trip set; discovery below must find all of them.
REQUIRED = (
    "693_UNCR.dcm", "693_J2KR.dcm", "explicit_VR-UN.dcm", "bad_sequence.dcm",
    "J2K_pixelrep_mismatch.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "examples_overlay.dcm",
    "MR2_UNCR.dcm", "RG1_UNCR.dcm", "RG3_UNCR.dcm", "eCT_Supplemental.dcm", "JPEG2000_UNC.dcm",
)
SMALL = ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm")
NO_BACKGROUND = images.NO_BACKGROUND


# Modalities the Mask R-CNN segmenter is validated on: these must protect and reveal. Every other
# modality gets the conservative padding segmenter: protected where a provably constant
# background carries the payload, else refused with a reason (tests/test_realdata.py).
ROUND_TRIP = [path.name for path in images.round_trip() if images.modality(path) in NETWORK_MODALITIES]
OTHER_MODALITIES = [path.name for path in images.round_trip() if path.name not in ROUND_TRIP]


# Real images from outside pydicom-data (../shared/realdata from the repository root).
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def realdata_images() -> list[Path]:
    """The realdata files, or [] when the folder is absent (callers skip with a reason)."""
    return sorted(REALDATA.glob("*.dcm")) if REALDATA.is_dir() else []


def image_path(name: str) -> Path:
    return Path(get_testdata_file(name))


def dcmtk(tool: str) -> str:
    """Absolute path of a DCMTK/dicom3tools binary (pynetdicom installs same-named scripts)."""
    path = f"/usr/bin/{tool}"
    if not os.path.exists(path):
        pytest.fail(f"{path} missing: run scripts/setup.sh (installs dcmtk and dicom3tools)")
    return path


def dciodvfy_errors(path: Path) -> set[str]:
    """dciodvfy's error lines for a file (without the attribute paths' prefixes)."""
    result = subprocess.run([dcmtk("dciodvfy"), str(path)], capture_output=True, text=True, timeout=120)
    return {line.split(" - ", 1)[-1] for line in result.stderr.splitlines() if line.startswith("Error")}
