"""Segment: find the significant foreground; the rest, minus a margin, may carry data.

The classical segmenter thresholds per modality, fills holes and keeps every large connected
component. It works on the displayed sense of the image (MONOCHROME1 is inverted first) and on
Hounsfield units for CT. Segmenters share one interface so Mask R-CNN can replace it; the
usable region is computed by one function, :func:`usable_region`, on cover and stego alike.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np
from pydicom import Dataset
from scipy import ndimage

from stegonode.codecs.errors import ConfigError

from .base import Instance

CT_THRESHOLD_HU = -500.0  # air is about -1000 HU, fat -100 HU: anything above is body or table


class Segmenter(Protocol):
    """Gives the significant foreground of every frame."""

    name: str

    def foreground(self, ds: Dataset, pixels: np.ndarray) -> np.ndarray:
        """Boolean (frames, rows, columns): True on anatomy and anything that must stay intact."""


class ClassicalSegmenter:
    """Threshold + hole filling + keep every component of at least ``min_component`` pixels."""

    name = "classical"

    def __init__(self, min_component: int = 64) -> None:
        self.min_component = min_component

    def foreground(self, ds: Dataset, pixels: np.ndarray) -> np.ndarray:
        return np.stack([self._frame(ds, frame) for frame in pixels])

    def _frame(self, ds: Dataset, frame: np.ndarray) -> np.ndarray:
        image = frame.astype(np.float32)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            image = image.max() - image
        if ds.get("Modality") == "CT" and "RescaleSlope" in ds:
            hu = image * float(ds.RescaleSlope) + float(ds.get("RescaleIntercept", 0))
            mask = hu > CT_THRESHOLD_HU
        else:
            mask = image > _background_threshold(ndimage.uniform_filter(image, 5))
        mask = ndimage.binary_fill_holes(ndimage.binary_closing(mask, iterations=2) | mask)
        labels, count = ndimage.label(mask)
        if count == 0:
            return mask
        sizes = np.bincount(labels.ravel())
        keep = sizes >= self.min_component
        keep[0] = False
        return keep[labels]


def _background_threshold(image: np.ndarray) -> float:
    """Halfway from the background level (median below Otsu's threshold) to Otsu's threshold.

    Conservative, so faint anatomy stays foreground; anchored on the background's median rather
    than the image minimum, which outliers and signed noise drag down.
    """
    lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return hi
    hist, edges = np.histogram(image, bins=256, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * centers)
    total, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total) ** 2 / (weight * (total - weight))
    otsu = centers[int(np.nanargmax(between))]
    background = float(np.median(image[image <= otsu]))
    return background + (otsu - background) / 2


SEGMENTERS: dict[str, type] = {"classical": ClassicalSegmenter}


def make_segmenter(name: str) -> Segmenter:
    """The segmenter registered under ``name``."""
    try:
        return SEGMENTERS[name]()
    except KeyError:
        raise ConfigError(f"handlers.segment.segmenter: unknown segmenter {name!r}; "
                          f"choose one of {sorted(SEGMENTERS)}") from None


def usable_region(foreground: np.ndarray, margin: int) -> np.ndarray:
    """Where data may go: outside the foreground dilated by ``margin`` pixels (square)."""
    if margin <= 0:
        return ~foreground
    size = (1, 2 * margin + 1, 2 * margin + 1)
    return ~ndimage.maximum_filter(foreground, size=size)


class SegmentHandler:
    """Fills ``instance.foreground``."""

    name: ClassVar[str] = "segment"
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, segmenter: Segmenter) -> None:
        self.segmenter = segmenter

    def __call__(self, instance: Instance) -> None:
        instance.foreground = self.segmenter.foreground(instance.dataset, instance.pixels)
