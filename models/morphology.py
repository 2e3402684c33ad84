"""Binary morphology on 2-D masks, giving scipy.ndimage's results in a fraction of its time.

The segmenters fill holes and erode or dilate several times per slice; scipy's
``binary_fill_holes`` (an iterated dilation) and iterated ``binary_erosion``/``binary_dilation``
dominate their post-processing on two CPU cores.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_fill_holes(mask)``: background not 4-connected to the border is filled."""
    labels, count = ndimage.label(~mask)
    if count == 0:
        return mask.copy()
    outside = np.zeros(count + 1, bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        outside[edge] = True
    outside[0] = False
    return ~outside[labels]


def erode_square(mask: np.ndarray, radius: int) -> np.ndarray:
    """``ndimage.binary_erosion(mask, 3x3 square, iterations=radius)``: outside the image is background."""
    return ndimage.minimum_filter(mask, size=2 * radius + 1, mode="constant", cval=False)


def dilate_square(mask: np.ndarray, radius: int) -> np.ndarray:
    """``ndimage.binary_dilation(mask, 3x3 square, iterations=radius)``."""
    return ndimage.maximum_filter(mask, size=2 * radius + 1, mode="constant", cval=False)
