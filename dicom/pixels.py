"""Pixel data in and out: decode any supported transfer syntax, validate, write uncompressed."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
from pydicom import DataElement, Dataset
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MPEGTransferSyntaxes,
)

from stegonode.dicom.codestream import StreamError, Stripped, strip_segments
from stegonode.dicom.colour import colour_obstacle
from stegonode.errors import InputError, UnsupportedImageError

GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
# Rows and Columns below this hold too few 4x4 tiles for any payload, and break resampling.
MIN_SIDE = 32
# Decoded pixels beyond this are refused before decoding: a compressed header can announce any size.
# The node's own limit is node.toml's [node] max_object_mb (at most this).
MAX_DECODED_BYTES = 1 << 30


@dataclass(frozen=True)
class PixelFormat:
    """The attributes of the Image Pixel module that bound what the codecs may write."""

    bits_allocated: int
    bits_stored: int
    signed: bool

    @classmethod
    def of(cls, ds: Dataset) -> PixelFormat:
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


def check_supported(ds: Dataset, colour: bool = False) -> None:
    """Raise UnsupportedImageError naming why ``ds`` cannot carry a payload; with ``colour``,
    colour images the pixel carrier writes into (:mod:`.colour`) pass too."""
    if "PixelData" not in ds:
        raise UnsupportedImageError("no Pixel Data: nothing to hide the payload in")
    if not ds.PixelData:
        raise UnsupportedImageError("empty Pixel Data: nothing to hide the payload in")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if colour and (int(ds.get("SamplesPerPixel", 1)) != 1 or photometric not in GRAYSCALE):
        obstacle = colour_obstacle(ds)
        if obstacle:
            raise UnsupportedImageError(obstacle)
    elif int(ds.get("SamplesPerPixel", 1)) != 1 or photometric not in GRAYSCALE:
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
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if min(rows, columns) < MIN_SIDE:
        raise UnsupportedImageError(
            f"image of {rows} x {columns} pixels: too small to carry a payload "
            f"(at least {MIN_SIDE} x {MIN_SIDE})"
        )
    if int(ds.get("NumberOfFrames", 1) or 1) < 1:
        raise UnsupportedImageError("NumberOfFrames below 1: no frame to carry a payload")


def check_image(ds: Dataset, max_decoded_bytes: int = MAX_DECODED_BYTES) -> None:
    """Everything that can be checked without decoding: a supported, complete image whose
    decoded pixels take at most ``max_decoded_bytes``."""
    try:
        check_supported(ds)
        check_complete(ds, max_decoded_bytes)
    except (TypeError, ValueError, OverflowError):  # e.g. a multi-valued or non-numeric Rows
        raise InputError("Image Pixel attributes malformed (Rows, Columns, bits or frames)") from None


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


def check_complete(ds: Dataset, max_decoded_bytes: int = MAX_DECODED_BYTES) -> None:
    """Native pixel data shorter than Rows x Columns x Frames x Samples means a truncated file."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    expected = int(ds.Rows) * int(ds.Columns) * frames * samples * int(ds.BitsAllocated) // 8
    limit = min(max_decoded_bytes, MAX_DECODED_BYTES)
    if expected > limit:
        raise UnsupportedImageError(
            f"{mib(expected)} MiB of pixels decoded, over the limit of {mib(limit)} MiB "
            f"({ds.Rows} x {ds.Columns} x {frames} frame(s))"
        )
    if ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian).is_compressed:
        return
    if str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422" and samples == 3:
        expected = expected * 2 // 3  # stored: chroma shared by two pixels
    actual = len(ds.PixelData)
    if actual < expected:
        raise InputError(f"truncated file: pixel data has {actual} of {expected} bytes")


def mib(size: int) -> str:
    """``size`` bytes in MiB, for messages."""
    return f"{size / (1 << 20):.0f}" if size >= 10 << 20 else f"{size / (1 << 20):.1f}"


def write_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """Store ``pixels`` uncompressed and switch the object to Explicit VR Little Endian."""
    fmt = PixelFormat.of(ds)
    ds.PixelData = np.ascontiguousarray(pixels.astype(fmt.dtype.newbyteorder("<"))).tobytes()
    ds["PixelData"].VR = "OB" if fmt.bits_allocated == 8 else "OW"
    ds["PixelData"].is_undefined_length = False  # it may have been encapsulated
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    drop_offset_tables(ds)


def drop_offset_tables(ds: Dataset) -> None:
    """Remove the Extended Offset Table of encapsulated pixel data that is being replaced."""
    for encapsulation_only in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if encapsulation_only in ds:
            del ds[encapsulation_only]


def keep_pixels(ds: Dataset) -> None:
    """An object whose pixels carry nothing (header carrier only): its pixel data stays exactly
    as received, in its transfer syntax (compressed, lossy or lossless, Deflated, big-endian,
    video): nothing decoded, nothing re-encoded. Implicit VR Little Endian becomes Explicit
    (the same pixel bytes): the protection's private blocks need their VRs stated. (The
    pipeline then takes what a sender wrote besides the pixels out of a compressed stream:
    :meth:`ReceivedPixels.stripped`.)"""
    if ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian) == ImplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


def decompress(ds: Dataset) -> None:
    """Decode compressed pixel data in place (pydicom: YCbCr JPEG becomes RGB, Photometric
    Interpretation and Planar Configuration set to match), the values a viewer shows."""
    if ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian).is_compressed and "PixelData" in ds:
        try:
            ds.decompress(generate_instance_uid=False)  # the keyed UID stays
        except Exception as exc:  # pydicom raises many types for undecodable pixel data
            raise InputError(f"pixel data does not decode: {type(exc).__name__}") from None


# What decoding may change beside Pixel Data (pydicom's decompress; the offset tables go).
DECODING_CHANGES = ("PhotometricInterpretation", "PlanarConfiguration", "SamplesPerPixel", "BitsAllocated",
                    "BitsStored", "HighBit", "PixelRepresentation", "ExtendedOffsetTable",
                    "ExtendedOffsetTableLengths", "PixelData")


@dataclass(frozen=True)
class ReceivedPixels:
    """Compressed pixel data as received, with its transfer syntax and the attributes decoding
    changes: an object whose pixels protection leaves unchanged is stored with them, neither
    decoded nor re-encoded (:meth:`restore`), once the informative marker segments of its
    codestreams are out (:meth:`stripped`). Holds the received bytes, not a copy."""

    syntax: UID
    elements: tuple[DataElement, ...]
    absent: tuple[str, ...]
    frames: int  # Number of Frames (0: not a number)

    @classmethod
    def of(cls, ds: Dataset) -> ReceivedPixels | None:
        """What ``ds`` received compressed holds (None: native pixels, nothing to keep)."""
        syntax = ds.file_meta.get("TransferSyntaxUID")
        if syntax is None or not syntax.is_compressed or syntax in MPEGTransferSyntaxes or "PixelData" not in ds:
            return None
        try:
            frames = int(ds.get("NumberOfFrames", 1) or 1)
        except (TypeError, ValueError):
            frames = 0
        return cls(UID(syntax), tuple(copy.copy(ds[keyword]) for keyword in DECODING_CHANGES if keyword in ds),
                   tuple(keyword for keyword in DECODING_CHANGES if keyword not in ds), frames)

    def stripped(self) -> tuple[ReceivedPixels, Stripped]:
        """These pixels without the informative marker segments of their codestreams
        (:func:`~stegonode.dicom.codestream.strip_segments`: comments, application segments no
        decoder reads), and what was removed and kept. Raises
        :class:`~stegonode.dicom.codestream.StreamError` for a stream that does not walk."""
        elements = {element.keyword: element for element in self.elements}
        if self.frames < 1:
            raise StreamError("Number of Frames is not a positive number")
        extended = None
        if "ExtendedOffsetTable" in elements and "ExtendedOffsetTableLengths" in elements:
            extended = (elements["ExtendedOffsetTable"].value, elements["ExtendedOffsetTableLengths"].value)
        result = strip_segments(elements["PixelData"].value, self.syntax, self.frames, extended)
        if not result.removed:
            return self, result
        values = {"PixelData": result.pixel_data}
        if result.extended is not None:
            values |= {"ExtendedOffsetTable": result.extended[0], "ExtendedOffsetTableLengths": result.extended[1]}
        replaced = []
        for element in self.elements:
            if element.keyword in values:
                element = copy.copy(element)
                element.value = values[element.keyword]
            replaced.append(element)
        return dataclasses.replace(self, elements=tuple(replaced)), result

    def restore(self, ds: Dataset) -> None:
        for keyword in self.absent:
            if keyword in ds:
                del ds[keyword]
        for element in self.elements:
            ds[element.tag] = element
        ds.file_meta.TransferSyntaxUID = self.syntax
