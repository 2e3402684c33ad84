"""Segment: find the significant foreground; the rest, minus a margin, may carry data.

The classical segmenter thresholds per modality, fills holes and keeps every large connected
component. It works on the displayed sense of the image (MONOCHROME1 is inverted first) and on
Hounsfield units for CT. The Mask R-CNN segmenter (stegonode.models.foreground: the network
exported to ONNX, shipped in the package, run by ONNX Runtime) sees the frames windowed by
:func:`network_input`, its mask's edge snaps to the edge
pixels it also gives, and it falls back to the classical one on a frame where it finds nothing. On
CT it adds the classical mask, whatever is denser than :data:`CT_THRESHOLD_HU`: Hounsfield units
are calibrated, so a thin table shell or head holder the network scores low is matter all the same.
The padding segmenter keeps everything but what is provably not image (constant padding and
collimator black connected to the border). :class:`SegmenterPolicy` picks one per modality:
node.toml's ``validated_modalities`` (by default :data:`NETWORK_MODALITIES`) get the image
segmenter, every other modality ``other_modalities`` (padding, or none: refused).
The usable region (:func:`stegonode.handlers.guard.usable_region`) is the background less the
safety guard, computed by one function on cover and stego alike.

The classical threshold is computed from the image's histogram, which embedding changes (the
codec shifts whole background tiles off the range floor), so a level computed afresh on the
stego image can differ from the cover's. :meth:`Segmenter.segment` therefore reports the level
each frame was thresholded at; the protection block records them and reveal thresholds the
stego image at the cover's levels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, Protocol

import numpy as np
from pydantic import field_validator
from pydicom import Dataset
from scipy import ndimage

from stegonode.codecs.settings import Names, Range, Settings
from stegonode.errors import ConfigError, RefusedError
from stegonode.models.morphology import bounding_box, close_cross, fill_holes

from .base import HandlerBase, Instance, choice_of
from .registry import HANDLERS, SEGMENTERS

if TYPE_CHECKING:  # ONNX Runtime loads only when the Mask R-CNN segmenter is used
    from stegonode.models.foreground import Network

    from .pipeline import PipelineContext

NETWORK_MODALITIES = ("CT", "MR", "CR", "DX")  # what the network's phantoms and labels cover
CT_THRESHOLD_HU = -500.0  # air is about -1000 HU, fat -100 HU: anything above is body or table
CT_WINDOW_HU = (-900.0, 1000.0)  # the network's CT window: above air noise (and embedding) to dense bone
PERCENTILES = (1.0, 99.0)  # floor and top of the network's window for every other image, per frame
CLIP_FRACTION = 0.08  # not CT: values below floor + 8 % of the range are background to the network
EMBED_GUARD = 12.0  # stored units: about what the DCT codec (step 10) changes a background pixel by
# (measured on the round-trip images: 4-9 mostly, 13-15 on two MR images); capped at half the clip
# level's height above the floor

log = logging.getLogger(__name__)


@dataclass
class Segmentation:
    """A foreground, and per frame the stored-value level the classical thresholding used (None
    where a frame was not thresholded at a computed level: the network's mask, Hounsfield units)."""

    mask: np.ndarray  # boolean (frames, rows, columns)
    levels: list[float | None]


class Segmenter(Protocol):
    """Gives the significant foreground of every frame."""

    name: str
    version: str  # changes whenever the masks may change: recorded in the protection block
    proves_background: bool  # its background is provably not image (the guard's border rule is moot)

    def params(self) -> dict:
        """Constructor arguments, JSON-serializable: recorded so reveal builds the same segmenter."""

    def segment(self, ds: Dataset, pixels: np.ndarray, levels: Sequence[float | None] | None = None
                ) -> Segmentation:
        """The foreground; ``levels`` (a cover's :attr:`Segmentation.levels`) replace the levels
        the classical thresholding would compute, frame by frame."""

    def foreground(self, ds: Dataset, pixels: np.ndarray) -> np.ndarray:
        """Boolean (frames, rows, columns): True on anatomy and anything that must stay intact."""


class SegmenterBase:
    """What every segmenter shares: no parameters to record, the mask as the foreground."""

    def params(self) -> dict:
        return {}

    def foreground(self, ds: Dataset, pixels: np.ndarray) -> np.ndarray:
        return self.segment(ds, pixels).mask

    def segment(self, ds: Dataset, pixels: np.ndarray, levels: Sequence[float | None] | None = None
                ) -> Segmentation:
        raise NotImplementedError


@SEGMENTERS.register
class ClassicalSegmenter(SegmenterBase):
    """Threshold + hole filling + keep every component of at least ``min_component`` pixels."""

    name = "classical"
    version = "1"
    proves_background = False

    def __init__(self, min_component: int = 64) -> None:
        self.min_component = min_component

    def segment(self, ds: Dataset, pixels: np.ndarray, levels: Sequence[float | None] | None = None
                ) -> Segmentation:
        frames = [self._frame(ds, frame, level) for frame, level in zip(pixels, _recorded(levels, len(pixels)), strict=True)]
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
        mask = fill_holes(close_cross(mask, 2) | mask)
        return large_components(mask, self.min_component), level


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
        masks = foreground_masks(self.model, images, edges)
        used: list[float | None] = [None] * len(masks)
        empty = np.flatnonzero(~masks.any(axis=(1, 2)))
        for index in empty:
            log.warning("maskrcnn found no foreground in frame %d; using the classical segmenter", index)
        if has_hounsfield_units(ds):
            united = masks | self.fallback.foreground(ds, pixels)
            return Segmentation(np.stack([fill_holes(frame) for frame in united]), used)
        if len(empty):
            recorded = _recorded(levels, len(pixels))
            fallback = self.fallback.segment(ds, pixels[empty], [recorded[int(i)] for i in empty])
            masks[empty] = fallback.mask
            for index, level in zip(empty, fallback.levels, strict=True):
                used[index] = level
        return Segmentation(masks, used)


@SEGMENTERS.register
class PaddingSegmenter(SegmenterBase):
    """Conservative: the background is only what is provably not image. Per frame, the pixels at
    exactly the frame's darkest display value (the collimator's or the scanner's black) or within
    Pixel Padding Value and Range Limit, in regions connected to the image border; everything
    else, anatomy or not, is foreground.

    Embedding changes exactly those pixels, so the stego image cannot show the same region: the
    protection block records it instead (:func:`stegonode.handlers.guard.encode_region`).
    """

    name = "padding"
    version = "1"
    proves_background = True

    def segment(self, ds: Dataset, pixels: np.ndarray, levels: Sequence[float | None] | None = None
                ) -> Segmentation:
        display = display_values(ds, pixels)
        candidate = (display == display.min(axis=(1, 2), keepdims=True)) | padding_mask(ds, pixels)
        return Segmentation(~np.stack([_border_connected(frame) for frame in candidate]), [None] * len(pixels))


def _border_connected(mask: np.ndarray) -> np.ndarray:
    """The components of a 2-D ``mask`` that touch the image border."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    keep = np.zeros(count + 1, dtype=bool)
    keep[edge] = True
    keep[0] = False
    return keep[labels]


def _recorded(levels: Sequence[float | None] | None, frames: int) -> Sequence[float | None]:
    """Recorded levels, one per frame; all None if none were recorded or not for these frames."""
    return levels if levels is not None and len(levels) == frames else [None] * frames


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
    scaled = (image - clip[:, None, None]) / np.maximum(high - clip, 1e-6)[:, None, None]
    return np.clip(scaled, 0, 1).astype(np.float32), image > level[:, None, None]


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


def large_components(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """``mask`` without its connected components of fewer than ``min_pixels`` pixels. A 2-D mask
    is labelled within its bounding box only (every component lies inside it)."""
    box: tuple[slice, ...] = (bounding_box(mask) if mask.ndim == 2 else None) or (slice(None),) * mask.ndim
    labels, count = ndimage.label(mask[box])
    if count == 0:
        return mask
    keep = np.bincount(labels.ravel()) >= min_pixels
    keep[0] = False
    out = np.zeros_like(mask)
    out[box] = keep[labels]
    return out


def has_hounsfield_units(ds: Dataset) -> bool:
    """CT with rescale attributes: its rescaled values are Hounsfield units."""
    return ds.get("Modality") == "CT" and "RescaleSlope" in ds


def hounsfield_units(ds: Dataset, image: np.ndarray) -> np.ndarray:
    """Stored values rescaled to Hounsfield units (for a dataset :func:`has_hounsfield_units`)."""
    return image * float(ds.RescaleSlope) + float(ds.get("RescaleIntercept", 0))


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
    hist, edges = np.histogram(values, bins=256, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * centers)
    total, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total) ** 2 / (weight * (total - weight))
    return float(centers[int(np.nanargmax(between))])


NOT_PIXEL_PROTECTED = "none"  # a policy value: the modality's images are refused, not segmented


def make_segmenter(name: str, params: dict | None = None) -> Segmenter:
    """The segmenter registered under ``name``, with ``params`` (as :meth:`params` gave them)."""
    kind = SEGMENTERS.get_or_error(name)
    try:
        return kind(**(params or {}))
    except TypeError:
        raise ConfigError(f"segmenter {name!r}: unknown parameters {sorted(params or {})}") from None


@dataclass(frozen=True)
class SegmenterPolicy:
    """Which segmenter decides, per modality: ``validated`` on the modalities it was validated on,
    ``other`` on the rest (None: not pixel-protected, refused with the key that allows it)."""

    validated: Segmenter
    modalities: frozenset[str]
    other: Segmenter | None

    def for_dataset(self, ds: Dataset) -> Segmenter:
        modality = str(ds.get("Modality", "")) or "no Modality"
        if modality in self.modalities:
            return self.validated
        if self.other is None:
            raise RefusedError(f"modality {modality} is not pixel-protected "
                               "(handlers.segment.other_modalities = \"none\")")
        return self.other


class SegmentSettings(Settings):
    """``[handlers.segment]``: the segmenter of the validated modalities, what the others get
    (a segmenter, or "none": refused), and the margin kept around the foreground."""

    segmenter: str = "maskrcnn"
    validated_modalities: Names = tuple(NETWORK_MODALITIES)
    other_modalities: str = "padding"
    margin: Annotated[int, Range(0, 256)] = 6

    @field_validator("segmenter")
    @classmethod
    def _segmenter(cls, value: str) -> str:
        return choice_of("handlers.segment.segmenter", value, list(SEGMENTERS))

    @field_validator("other_modalities")
    @classmethod
    def _other(cls, value: str) -> str:
        return choice_of("handlers.segment.other_modalities", value, [*SEGMENTERS, NOT_PIXEL_PROTECTED])

    @field_validator("validated_modalities")
    @classmethod
    def _modalities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not all(m.isalnum() and m.isupper() and len(m) <= 16 for m in value):
            raise ConfigError("handlers.segment.validated_modalities must list modality codes "
                              "such as \"CT\" (upper case, at most 16 characters)")
        return value


@HANDLERS.register
class SegmentHandler(HandlerBase):
    """Fills ``instance.foreground`` with the mask of the segmenter the policy picks."""

    name: ClassVar[str] = "segment"
    needs_pixels: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ()
    table: ClassVar[type[Settings]] = SegmentSettings

    @classmethod
    def from_config(cls, context: PipelineContext) -> SegmentHandler:
        segment = context.settings["segment"]
        other = segment["other_modalities"]
        return cls(SegmenterPolicy(
            validated=make_segmenter(segment["segmenter"]),
            modalities=frozenset(segment["validated_modalities"]),
            other=None if other == NOT_PIXEL_PROTECTED else make_segmenter(other),
        ))

    def __init__(self, policy: SegmenterPolicy) -> None:
        self.policy = policy

    def __call__(self, instance: Instance) -> None:
        assert instance.pixels is not None, "segment runs on objects with a pixel carrier"
        segmenter = self.policy.for_dataset(instance.dataset)
        # Frame by frame (every segmenter decides each frame alone): the working copies (display
        # values, network input, edges) then take one frame's memory, not the object's, and each
        # frame's mask goes straight into the object's.
        pixels = instance.pixels
        foreground = np.empty(pixels.shape, dtype=bool)
        levels: list[float | None] = []
        for index in range(len(pixels)):
            frame = segmenter.segment(instance.dataset, pixels[index:index + 1])
            foreground[index] = frame.mask[0]
            levels += frame.levels
        instance.segmenter = segmenter
        instance.foreground = foreground
        instance.foreground_levels = levels
