"""Pixel data in and out: decode any supported transfer syntax, validate, write uncompressed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian

from stegonode.codecs.errors import InputError, UnsupportedImageError

GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class PixelFormat:
    """The attributes of the Image Pixel module that bound what the codecs may write."""

    bits_allocated: int
    bits_stored: int
    signed: bool

    @classmethod
    def of(cls, ds: Dataset) -> "PixelFormat":
        return cls(int(ds.BitsAllocated), int(ds.BitsStored), int(ds.PixelRepresentation) == 1)

    @property
    def value_range(self) -> tuple[int, int]:
        """Inclusive range of stored values that BitsStored and PixelRepresentation allow."""
        if self.signed:
            return -(1 << (self.bits_stored - 1)), (1 << (self.bits_stored - 1)) - 1
        return 0, (1 << self.bits_stored) - 1

    @property
    def peak(self) -> int:
        """PSNR peak: 2**BitsStored - 1."""
        return (1 << self.bits_stored) - 1

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(f"{'i' if self.signed else 'u'}{self.bits_allocated // 8}")


def check_supported(ds: Dataset) -> None:
    """Raise UnsupportedImageError naming why ``ds`` cannot carry a payload."""
    if "PixelData" not in ds:
        raise UnsupportedImageError("no Pixel Data: nothing to hide the payload in")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if int(ds.get("SamplesPerPixel", 1)) != 1 or photometric not in GRAYSCALE:
        raise UnsupportedImageError(
            f"colour image ({photometric or 'no PhotometricInterpretation'}): only "
            "MONOCHROME1/MONOCHROME2 grayscale is supported"
        )
    bits = int(ds.get("BitsAllocated", 0))
    if bits not in (8, 16):
        raise UnsupportedImageError(f"BitsAllocated {bits}: only 8- and 16-bit pixels are supported")
    stored = int(ds.get("BitsStored", 0))
    if not 8 <= stored <= bits:
        raise UnsupportedImageError(f"BitsStored {stored}: must be 8..{bits}")


def check_image(ds: Dataset) -> None:
    """Everything that can be checked without decoding: a supported, complete image."""
    check_supported(ds)
    _check_complete(ds)


def read_dicom(source: str | os.PathLike | BinaryIO) -> Dataset:
    """Read a whole DICOM file; truncated or malformed files raise InputError."""
    try:
        return pydicom.dcmread(source)
    except InvalidDicomError:
        raise InputError("not a DICOM file (no DICM preamble or unreadable header)") from None
    except (EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"truncated or malformed DICOM file ({type(exc).__name__})") from None


def read_pixels(ds: Dataset) -> np.ndarray:
    """Stored values as an array shaped (frames, rows, columns) in the stored integer type."""
    check_image(ds)
    try:
        array = ds.pixel_array
    except Exception as exc:  # pydicom raises many types for undecodable pixel data
        raise InputError(f"pixel data does not decode: {type(exc).__name__}") from None
    fmt = PixelFormat.of(ds)
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        array = array[None]
    return array.astype(fmt.dtype, copy=False)


def _check_complete(ds: Dataset) -> None:
    """Native pixel data shorter than Rows x Columns x Frames means a truncated file."""
    if ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian).is_compressed:
        return
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    expected = int(ds.Rows) * int(ds.Columns) * frames * int(ds.BitsAllocated) // 8
    actual = len(ds.PixelData)
    if actual < expected:
        raise InputError(f"truncated file: pixel data has {actual} of {expected} bytes")


def write_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """Store ``pixels`` uncompressed and switch the object to Explicit VR Little Endian."""
    fmt = PixelFormat.of(ds)
    ds.PixelData = np.ascontiguousarray(pixels.astype(fmt.dtype.newbyteorder("<"))).tobytes()
    ds["PixelData"].VR = "OB" if fmt.bits_allocated == 8 else "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for encapsulation_only in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if encapsulation_only in ds:
            del ds[encapsulation_only]
