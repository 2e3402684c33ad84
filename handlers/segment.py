"""Segment: find the significant foreground; the rest, minus a margin, may carry data.

The classical segmenter thresholds per modality, fills holes and keeps every large connected
component. It works on the displayed sense of the image (MONOCHROME1 is inverted first) and on
Hounsfield units for CT. The Mask R-CNN segmenter (stegonode.models.maskrcnn, weights shipped in
the package) sees the frames windowed by :func:`windowed` and falls back to the classical one on
a frame where it finds nothing. The usable region is computed by one function,
:func:`usable_region`, on cover and stego alike.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
from pydicom import Dataset
from scipy import ndimage

from stegonode.codecs.errors import ConfigError

from .base import Instance

if TYPE_CHECKING:  # torch loads only when the Mask R-CNN segmenter is used
    from torchvision.models.detection import MaskRCNN

    from stegonode.models.maskrcnn import Config

CT_THRESHOLD_HU = -500.0  # air is about -1000 HU, fat -100 HU: anything above is body or table
CT_WINDOW_HU = (-1000.0, 1000.0)  # the network's CT window: air to dense bone
PERCENTILES = (1.0, 99.0)  # the network's window for every other image, per frame

log = logging.getLogger(__name__)


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


class MaskRCNNSegmenter:
    """Mask R-CNN trained here (stegonode.models); classical fallback on frames it finds empty."""

    name = "maskrcnn"

    def __init__(self, weights: Path | None = None, batch: int = 16) -> None:
        self.model, self.config = _load_maskrcnn(weights)
        self.batch = batch
        self.fallback = ClassicalSegmenter()

    def foreground(self, ds: Dataset, pixels: np.ndarray) -> np.ndarray:
        import torch

        from stegonode.models.maskrcnn import foreground_masks

        images = torch.from_numpy(windowed(ds, pixels))
        masks = foreground_masks(self.model, self.config, images, self.batch)
        for index in np.flatnonzero(~masks.any(axis=(1, 2))):
            log.warning("maskrcnn found no foreground in frame %d; using the classical segmenter", index)
            masks[index] = self.fallback.foreground(ds, pixels[index:index + 1])[0]
        return masks


@functools.lru_cache(maxsize=2)
def _load_maskrcnn(weights: Path | None) -> tuple[MaskRCNN, Config]:
    """The network, loaded once per process (reveal makes a segmenter per call)."""
    from stegonode.models import maskrcnn  # torch loads only when this segmenter is used

    return maskrcnn.load(weights or maskrcnn.WEIGHTS)


def windowed(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Frames as float32 in [0, 1], bright = dense or signal, the same for cover and stego.

    CT with rescale attributes: Hounsfield units in :data:`CT_WINDOW_HU`. Otherwise each frame
    between its :data:`PERCENTILES`; MONOCHROME1 is inverted.
    """
    image = pixels.astype(np.float32)
    if ds.get("Modality") == "CT" and "RescaleSlope" in ds:
        hu = image * float(ds.RescaleSlope) + float(ds.get("RescaleIntercept", 0))
        low, high = CT_WINDOW_HU
        return np.clip((hu - low) / (high - low), 0, 1)
    low, high = np.percentile(image, PERCENTILES, axis=(1, 2))
    scaled = (image - low[:, None, None]) / np.maximum(high - low, 1e-6)[:, None, None]
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        scaled = 1 - scaled
    return np.clip(scaled, 0, 1).astype(np.float32)


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


SEGMENTERS: dict[str, type] = {"classical": ClassicalSegmenter, "maskrcnn": MaskRCNNSegmenter}


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
