"""Stored pixel values in their displayed sense: Hounsfield units, MONOCHROME1, Pixel Padding.

The segmenters and the safety guard decide on these values, so both read them from here: CT with
rescale attributes in Hounsfield units (calibrated, so :data:`CT_THRESHOLD_HU` means the same on
every scanner), MONOCHROME1 negated (bright = dense), and the Pixel Padding of PS3.3 C.7.5.1.1.2.
"""

from __future__ import annotations

import numpy as np
from pydicom import Dataset

CT_THRESHOLD_HU = -500.0  # air is about -1000 HU, fat -100 HU: anything above is body or table


def display_values(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Frames as float32 in display sense, bright = dense or signal: Hounsfield units on CT
    (:func:`has_hounsfield_units`), stored values negated on MONOCHROME1, stored values otherwise."""
    image = pixels.astype(np.float32)
    if has_hounsfield_units(ds):
        return hounsfield_units(ds, image)
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        return -image
    return image


def display_scale(ds: Dataset) -> float:
    """Display units per stored unit (the rescale slope's magnitude on CT, else 1)."""
    return abs(float(ds.get("RescaleSlope", 1) or 1)) if has_hounsfield_units(ds) else 1.0


def padding_mask(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Pixels that are Pixel Padding (PS3.3 C.7.5.1.1.2): equal to Pixel Padding Value, or
    between it and Pixel Padding Range Limit. The value is read in the pixels' representation,
    so an unsigned 63536 in a signed image is the stored -2000 it encodes."""
    if "PixelPaddingValue" not in ds:
        return np.zeros(pixels.shape, dtype=bool)
    bits = 8 * pixels.dtype.itemsize
    ends = [int(ds.PixelPaddingValue), int(ds.get("PixelPaddingRangeLimit", ds.PixelPaddingValue))]
    if np.issubdtype(pixels.dtype, np.signedinteger):
        ends = [v - (1 << bits) if v >= 1 << (bits - 1) else v for v in ends]
    else:
        ends = [v % (1 << bits) for v in ends]
    low, high = min(ends), max(ends)
    return (pixels >= low) & (pixels <= high)


def has_hounsfield_units(ds: Dataset) -> bool:
    """CT with rescale attributes: its rescaled values are Hounsfield units."""
    return ds.get("Modality") == "CT" and "RescaleSlope" in ds


def hounsfield_units(ds: Dataset, image: np.ndarray) -> np.ndarray:
    """Stored values rescaled to Hounsfield units (for a dataset :func:`has_hounsfield_units`)."""
    return image * float(ds.RescaleSlope) + float(ds.get("RescaleIntercept", 0))
