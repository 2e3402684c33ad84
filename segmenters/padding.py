"""The padding segmenter: the background is only what is provably not image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom import Dataset
from scipy import ndimage

from stegonode.dicom.display import display_values, padding_mask

from .base import Segmentation, SegmenterBase
from .registry import SEGMENTERS


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
