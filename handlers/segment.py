"""Segment: the handler that finds the significant foreground; the rest, minus a margin, may carry data.

The segmenters are :mod:`stegonode.segmenters` (classical, maskrcnn, padding: a registry like the
codecs'). :class:`SegmenterPolicy` picks one per modality: node.toml's ``validated_modalities``
(by default :data:`~stegonode.segmenters.maskrcnn.NETWORK_MODALITIES`) get the image segmenter,
every other modality ``other_modalities`` (padding, or none: refused). The usable region
(:func:`stegonode.handlers.guard.usable_region`) is the background less the safety guard,
computed by one function on cover and stego alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar

import numpy as np
from pydantic import field_validator
from pydicom import Dataset

from stegonode.codecs.settings import Names, Range, Settings
from stegonode.errors import ConfigError, RefusedError
from stegonode.segmenters.base import Segmenter
from stegonode.segmenters.maskrcnn import NETWORK_MODALITIES
from stegonode.segmenters.registry import SEGMENTERS, make_segmenter

from .base import HandlerBase, Instance, choice_of
from .registry import HANDLERS

if TYPE_CHECKING:
    from .pipeline import PipelineContext

NOT_PIXEL_PROTECTED = "none"  # a policy value: the modality's images are refused, not segmented


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
