"""The Mask R-CNN segmenter: the network of :mod:`stegonode.models.foreground` (exported to ONNX,
shipped in the package, run by ONNX Runtime) sees the frames windowed by :func:`network_input`;
its mask's edge snaps to the edge pixels it also gives, and it falls back to the classical
segmenter on a frame where it finds nothing. On CT it adds the classical mask, whatever is denser
than :data:`~stegonode.dicom.display.CT_THRESHOLD_HU`: Hounsfield units are calibrated, so a thin
table shell or head holder the network scores low is matter all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydicom import Dataset

from stegonode.dicom.display import CT_THRESHOLD_HU, display_values, has_hounsfield_units
from stegonode.models.morphology import fill_holes

from .base import Segmentation, SegmenterBase, recorded_levels
from .classical import ClassicalSegmenter
from .registry import SEGMENTERS

if TYPE_CHECKING:  # ONNX Runtime loads only when the Mask R-CNN segmenter is used
    from stegonode.models.foreground import Network

NETWORK_MODALITIES = ("CT", "MR", "CR", "DX")  # what the network's phantoms and labels cover

CT_WINDOW_HU = (-900.0, 1000.0)  # the network's CT window: above air noise (and embedding) to dense bone

PERCENTILES = (1.0, 99.0)  # floor and top of the network's window for every other image, per frame

CLIP_FRACTION = 0.08  # not CT: values below floor + 8 % of the range are background to the network

EMBED_GUARD = 12.0  # stored units: about what the DCT codec (step 10) changes a background pixel by
# (measured on the round-trip images: 4-9 mostly, 13-15 on two MR images); capped at half the clip
# level's height above the floor

log = logging.getLogger(__name__)


@SEGMENTERS.register
class MaskRCNNSegmenter(SegmenterBase):
    """Mask R-CNN trained here (stegonode.models); on CT, united with the classical mask; the
    classical segmenter on frames it finds empty. Which modalities it decides on is the
    :class:`SegmenterPolicy`'s business."""

    name = "maskrcnn"
    proves_background = False

    def __init__(self, weights: Path | None = None) -> None:
        self.model, self.version = _load_maskrcnn(weights)
        self.fallback = ClassicalSegmenter()

    def segment(self, ds: Dataset, pixels: np.ndarray, levels: Sequence[float | None] | None = None
                ) -> Segmentation:
        from stegonode.models.foreground import foreground_masks

        images, edges = network_input(ds, pixels)
        hounsfield = has_hounsfield_units(ds)
        masks = foreground_masks(self.model, images, edges, fill=not hounsfield)  # CT: filled once united
        used: list[float | None] = [None] * len(masks)
        empty = np.flatnonzero(~masks.any(axis=(1, 2)))
        for index in empty:
            log.warning("maskrcnn found no foreground in frame %d; using the classical segmenter", index)
        if hounsfield:  # the classical mask: its threshold is the edges' (HU > CT_THRESHOLD_HU)
            united = masks | np.stack([self.fallback.cleaned(dense) for dense in edges])
            return Segmentation(np.stack([fill_holes(frame) for frame in united]), used)
        if len(empty):
            recorded = recorded_levels(levels, len(pixels))
            fallback = self.fallback.segment(ds, pixels[empty], [recorded[int(i)] for i in empty])
            masks[empty] = fallback.mask
            for index, level in zip(empty, fallback.levels, strict=True):
                used[index] = level
        return Segmentation(masks, used)

def _load_maskrcnn(weights: Path | None) -> tuple[Network, str]:
    """The network, loaded once per process (reveal makes a segmenter per call), and its
    version: the first 16 hex digits of the torch weights file's SHA-256 (recorded in the ONNX
    export), the same whichever runs it."""
    from stegonode.models import foreground

    network = foreground.load(weights or foreground.WEIGHTS)
    return network, network.version

def network_input(ds: Dataset, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the network sees, and where its mask's edge snaps: one pass over the frames.

    Windowed frames: float32 in [0, 1], bright = dense or signal. CT with rescale attributes:
    Hounsfield units in :data:`CT_WINDOW_HU`. Otherwise each frame from its clip level (see
    :func:`_display`) to its 99th percentile; MONOCHROME1 is inverted. Every background-level
    value maps to 0, so what embedding changes in the background mostly does not reach the
    network: cover and stego give the same input.

    Edge pixels: boolean frames, the pixels bright enough to be an object's edge. CT: above
    :data:`CT_THRESHOLD_HU`. Otherwise above the clip level less :data:`EMBED_GUARD` (at most
    half the clip level's height above the floor), so a background pixel the codec may change
    stays below the clip level in the stego image as well.
    """
    image, clip, high, level = _display(ds, pixels)
    scaled = np.subtract(image, clip[:, None, None])  # in float64, as the window's levels; in place from here
    scaled /= np.maximum(high - clip, 1e-6)[:, None, None]
    return np.clip(scaled, 0, 1, out=scaled).astype(np.float32), image > level[:, None, None]

def windowed(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """The windowed frames of :func:`network_input`, for callers that need no edges."""
    return network_input(ds, pixels)[0]

def _display(ds: Dataset, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frames in display sense (HU for CT, MONOCHROME1 negated), and per frame: clip level,
    top of the window, edge level.

    Not CT: the top is the 99th percentile, an order statistic of anatomy that background
    changes do not move. The floor is 0 when the 1st percentile is within 10 % of the range of
    it (nearly every image: the 1st percentile itself moves when the background changes),
    otherwise the 1st percentile. The clip level is :data:`CLIP_FRACTION` of the way from the
    floor to the top, above background noise and the embedding's changes.
    """
    image = display_values(ds, pixels)
    frames = len(image)
    if has_hounsfield_units(ds):
        low, high = CT_WINDOW_HU
        return image, np.full(frames, low), np.full(frames, high), np.full(frames, CT_THRESHOLD_HU)
    low, high = np.percentile(image, PERCENTILES, axis=(1, 2))
    floor = np.where(np.abs(low) <= 0.1 * np.abs(high - low), 0.0, low)
    clip = floor + CLIP_FRACTION * np.maximum(high - floor, 0)
    level = clip - np.minimum(EMBED_GUARD, (clip - floor) / 2)
    return image, clip, high, level
