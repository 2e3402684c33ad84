"""The segmenter interface, what it returns, and what every segmenter shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
from pydicom import Dataset

from stegonode.codecs.settings import Settings


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
    settings: ClassVar[type[Settings]]  # its parameters, typed: what params() gives and make_segmenter checks

    def params(self) -> dict:
        """Constructor arguments, JSON-serializable: recorded so reveal builds the same segmenter."""

    def segment(self, ds: Dataset, pixels: np.ndarray, levels: Sequence[float | None] | None = None
                ) -> Segmentation:
        """The foreground; ``levels`` (a cover's :attr:`Segmentation.levels`) replace the levels
        the classical thresholding would compute, frame by frame."""

    def foreground(self, ds: Dataset, pixels: np.ndarray) -> np.ndarray:
        """Boolean (frames, rows, columns): True on anatomy and anything that must stay intact."""

class NoParameters(Settings):
    """The parameters of a segmenter that has none."""


class SegmenterBase:
    """What every segmenter shares: its typed parameters (none unless it declares them), the mask
    as the foreground."""

    settings: ClassVar[type[Settings]] = NoParameters

    def params(self) -> dict:
        return {name: getattr(self, name) for name in self.settings.model_fields}

    def foreground(self, ds: Dataset, pixels: np.ndarray) -> np.ndarray:
        return self.segment(ds, pixels).mask

    def segment(self, ds: Dataset, pixels: np.ndarray, levels: Sequence[float | None] | None = None
                ) -> Segmentation:
        raise NotImplementedError


def recorded_levels(levels: Sequence[float | None] | None, frames: int) -> Sequence[float | None]:
    """Recorded levels, one per frame; all None if none were recorded or not for these frames."""
    return levels if levels is not None and len(levels) == frames else [None] * frames
