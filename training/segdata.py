"""Segmenter data through the real DICOM path: phantoms written and read as DICOM, real labels.

Every example is (windowed frame, foreground mask): the frame as the Mask R-CNN segmenter sees
it (:func:`stegonode.segmenters.maskrcnn.windowed` after :func:`read_pixels` of a DICOM file), and
the exact or reviewed mask. Real labels are PNG files shipped in stegonode/models/labels, one per
labelled frame, named after the pydicom-data file (``<stem>.png``, ``<stem>_f<N>.png``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from stegonode import models
from stegonode.dicom.dicomfile import read_dicom
from stegonode.dicom.pixels import read_pixels
from stegonode.handlers.overlay import read_mask, write_mask, write_overlay  # noqa: F401 (the scripts read them here)
from stegonode.segmenters.maskrcnn import network_input
from stegonode.training.phantoms import Phantom, make_phantom

LABELS = Path(models.__file__).parent / "labels"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


@dataclass(frozen=True)
class Example:
    """One frame as the network sees it, with its ground-truth foreground."""

    name: str
    image: np.ndarray  # float32 (rows, columns) in [0, 1]
    mask: np.ndarray  # bool (rows, columns)
    dataset: Dataset  # where the frame came from, as read
    frame: int = 0
    edges: np.ndarray | None = None  # bool (rows, columns): segment.network_input's edge pixels


def phantom_dataset(phantom: Phantom) -> Dataset:
    """A minimal valid DICOM image holding the phantom's stored values."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(SECONDARY_CAPTURE)
    meta.MediaStorageSOPInstanceUID = UID(generate_uid())
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SECONDARY_CAPTURE, meta.MediaStorageSOPInstanceUID
    ds.Modality = phantom.modality
    ds.Rows, ds.Columns = phantom.stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if phantom.monochrome1 else "MONOCHROME2"
    ds.BitsAllocated = phantom.stored.dtype.itemsize * 8
    ds.BitsStored = phantom.bits_stored
    ds.HighBit = phantom.bits_stored - 1
    ds.PixelRepresentation = int(phantom.signed)
    if phantom.modality == "CT":
        ds.RescaleSlope, ds.RescaleIntercept = phantom.slope, phantom.intercept
    ds.PixelData = np.ascontiguousarray(phantom.stored.astype(phantom.stored.dtype.newbyteorder("<"))).tobytes()
    ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
    return ds


def phantom_example(seed: int) -> Example:
    """Phantom ``seed`` written as a DICOM file, read back and windowed."""
    phantom = make_phantom(seed)
    buffer = io.BytesIO()
    phantom_dataset(phantom).save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    ds = read_dicom(buffer)
    images, edges = network_input(ds, read_pixels(ds))
    return Example(f"phantom-{seed:05d}-{phantom.modality}", images[0], phantom.mask, ds, edges=edges[0])


def label_files() -> list[Path]:
    """The shipped label PNGs, sorted."""
    return sorted(LABELS.glob("*.png"))


def label_name(path: Path) -> tuple[str, int]:
    """``<stem>.png`` -> (``<stem>.dcm``, 0); ``<stem>_f<N>.png`` -> (``<stem>.dcm``, N)."""
    stem, _, frame = path.stem.rpartition("_f")
    if stem and frame.isdigit():
        return f"{stem}.dcm", int(frame)
    return f"{path.stem}.dcm", 0


def real_example(label: Path, dicom: Path) -> Example:
    """The labelled frame of a real image and its reviewed mask."""
    ds = pydicom.dcmread(dicom)
    _, frame = label_name(label)
    images, edges = network_input(ds, read_pixels(ds)[frame:frame + 1])
    return Example(label.stem, images[0], read_mask(label), ds, frame, edges[0])


