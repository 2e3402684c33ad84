"""The classical segmenter: threshold per modality, fill holes, keep every large component.

It works on the displayed sense of the image (:mod:`stegonode.dicom.display`: MONOCHROME1 is
inverted first) and on Hounsfield units for CT. The threshold is computed from the image's
histogram, which embedding changes (the codec shifts whole background tiles off the range floor),
so a level computed afresh on the stego image can differ from the cover's:
:meth:`ClassicalSegmenter.segment` reports the level each frame was thresholded at; the protection
block records them and reveal thresholds the stego image at the cover's levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, ClassVar

import numpy as np
from pydicom import Dataset
from scipy import ndimage

from stegonode.codecs.settings import Range, Settings
from stegonode.dicom.display import CT_THRESHOLD_HU, has_hounsfield_units, hounsfield_units
from stegonode.models.morphology import bounding_box, close_cross, fill_holes

from .base import Segmentation, SegmenterBase, recorded_levels
from .registry import SEGMENTERS


class ClassicalParameters(Settings):
    """The classical segmenter's parameters (recorded in the protection block)."""

    min_component: Annotated[int, Range(1, 1 << 24)] = 64  # pixels: smaller components are not foreground


@SEGMENTERS.register
class ClassicalSegmenter(SegmenterBase):
    """Threshold + hole filling + keep every component of at least ``min_component`` pixels."""

    name = "classical"
    settings: ClassVar[type[Settings]] = ClassicalParameters
    version = "1"
    proves_background = False

    def __init__(self, min_component: int = 64) -> None:
        self.min_component = min_component

    def segment(self, ds: Dataset, pixels: np.ndarray, levels: Sequence[float | None] | None = None
                ) -> Segmentation:
        frames = [self._frame(ds, frame, level) for frame, level in zip(pixels, recorded_levels(levels, len(pixels)), strict=True)]
        return Segmentation(np.stack([mask for mask, _ in frames]), [level for _, level in frames])

    def _frame(self, ds: Dataset, frame: np.ndarray, level: float | None) -> tuple[np.ndarray, float | None]:
        image = frame.astype(np.float32)
        if has_hounsfield_units(ds):
            mask, level = hounsfield_units(ds, image) > CT_THRESHOLD_HU, None
        elif str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":  # dark is dense
            if level is None:
                top = float(image.max())
                level = top - float(_background_threshold(ndimage.uniform_filter(top - image, 5)))
            mask = image < level
        else:
            if level is None:
                level = float(_background_threshold(ndimage.uniform_filter(image, 5)))
            mask = image > level
        return self.cleaned(mask), level

    def cleaned(self, mask: np.ndarray) -> np.ndarray:
        """A frame's thresholded mask closed, its holes filled, its small components removed."""
        return large_components(fill_holes(close_cross(mask, 2) | mask), self.min_component)

def large_components(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """``mask`` without its connected components of fewer than ``min_pixels`` pixels. A 2-D mask
    is labelled within its bounding box only (every component lies inside it)."""
    box: tuple[slice, ...] = (bounding_box(mask) if mask.ndim == 2 else None) or (slice(None),) * mask.ndim
    labels, count = ndimage.label(mask[box])
    if count == 0:
        return mask
    keep = np.bincount(labels.ravel()) >= min_pixels
    keep[0] = False
    if keep[1:].all():  # every component large: outside the box the mask is empty anyway
        return mask.copy()
    out = np.zeros_like(mask)
    out[box] = keep[labels]
    return out

def _background_threshold(image: np.ndarray) -> float:
    """Halfway from the background level (median below Otsu's threshold) to Otsu's threshold.

    Conservative, so faint anatomy stays foreground; anchored on the background's median rather
    than the image minimum, which outliers and signed noise drag down.
    """
    if float(image.max()) <= float(image.min()):
        return float(image.max())
    otsu = otsu_threshold(image)
    background = float(np.median(image[image <= otsu]))
    return background + (otsu - background) / 2

def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of ``values`` (a 256-bin histogram over their range)."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return hi
    hist, edges = histogram(values, 256, lo, hi)
    centers = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * centers)
    total, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total) ** 2 / (weight * (total - weight))
    return float(centers[int(np.nanargmax(between))])


def histogram(values: np.ndarray, bins: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram(values, bins, range=(lo, hi))`` for values within the range, in a fifth of
    its time: the same edges (``np.histogram_bin_edges``), and each bin's count read off the
    sorted values where the edges fall. numpy puts a value in bin i when edges[i] <= value <
    edges[i + 1] (the last bin closed), checked against the edges themselves after its division,
    so counting by the edges gives its counts exactly."""
    edges = np.histogram_bin_edges(values, bins, range=(lo, hi))
    ordered = np.sort(values, axis=None)
    cuts = np.searchsorted(ordered, edges[1:-1], side="left")  # values below each inner edge
    return np.diff(cuts, prepend=0, append=ordered.size), edges
