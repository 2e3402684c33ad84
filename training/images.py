"""The images the tests, the benchmarks and ``stegonode report`` measure on.

The round-trip set: every decodable grayscale image of pydicom-data and pydicom's own test
files with rows and columns of at least 256, less two SMPTE test patterns that have no
background to carry data. And the real images of ``../shared/realdata`` (beside the
repository), where present.
"""

from __future__ import annotations

from pathlib import Path

import pydicom

# SMPTE test patterns: pattern everywhere, no background to carry data; protect must say so.
NO_BACKGROUND = ("mlut_18.dcm", "vlut_04.dcm")
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def _data_dirs() -> list[Path]:
    import data_store  # the import name of the pydicom-data package

    return [Path(pydicom.data.__file__).parent / "test_files", Path(data_store.__file__).parent]


def grayscale_images(min_side: int) -> dict[str, Path]:
    """Decodable grayscale images with rows and columns >= ``min_side``, by file name."""
    found: dict[str, Path] = {}
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
                found.setdefault(path.name, path)
    return dict(sorted(found.items()))


def _decodes(path: Path) -> bool:
    try:
        _ = pydicom.dcmread(path).pixel_array
        return True
    except Exception:
        return False


def round_trip() -> list[Path]:
    """The round-trip set, sorted by file name."""
    return [path for name, path in grayscale_images(256).items() if name not in NO_BACKGROUND]


def modality(path: Path) -> str:
    """The Modality of the image at ``path`` (empty when it has none)."""
    return str(pydicom.dcmread(path, stop_before_pixels=True).get("Modality", ""))


def realdata() -> list[Path]:
    """The DICOM files of ``../shared/realdata``; none when the folder is absent."""
    return sorted(REALDATA.glob("*.dcm")) if REALDATA.is_dir() else []
