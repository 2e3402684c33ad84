"""Draft the real-image labels in models/labels; each was then reviewed by eye on its overlay.

Draft = the classical segmenter's mask, with the corrections a reviewer asked for per image
(CORRECTIONS: each gets the draft and the windowed frame). Run:
.venv/bin/python scripts/make_labels.py [--overlays DIR]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from scipy import ndimage

from stegonode.dicom.pixels import read_pixels
from stegonode.segmenters.classical import ClassicalSegmenter, large_components
from stegonode.segmenters.maskrcnn import windowed
from stegonode.training.segdata import LABELS, write_mask, write_overlay
from stegonode.training.segmenter import REAL_EVAL

TRAINING = ("CT_small",)  # real frames used for training: not the same scans as REAL_EVAL
SKIN_LEVEL = 0.05  # windowed: just above the clip level, clear of direct exposure's noise


def _to_skin(image: np.ndarray) -> np.ndarray:
    """Everything brighter than direct exposure: components above :data:`SKIN_LEVEL`.

    In a radiograph soft tissue thins to nothing at the skin, so its edge fades into the
    background; the classical threshold (halfway to Otsu's) cuts 50-60 pixels inside it.
    """
    return large_components(image > SKIN_LEVEL, ClassicalSegmenter().min_component)


def _under_skin(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Below the first foreground row of each column and right of the first of each row.

    For a body seen from its upper-left (a coronal shoulder): what lies under the skin line is
    body even where it is as dark as air (muscle, lung).
    """
    rows = np.arange(mask.shape[0])[:, None]
    cols = np.arange(mask.shape[1])[None, :]
    top = np.where(mask.any(axis=0), mask.argmax(axis=0), mask.shape[0])[None, :]
    left = np.where(mask.any(axis=1), mask.argmax(axis=1), mask.shape[1])[:, None]
    return (rows >= top) & (cols >= left)


def _chest_to_skin(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Chest CR filling the field: shoulder soft tissue out to the air above it is body (not
    filled: bright strips along the top and right enclose air)."""
    return mask | _to_skin(image)


def _leg_to_skin(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Leg CR between collimator shutters: the leg to its skin line, and the draft's marker,
    without the shutters."""
    return ndimage.binary_fill_holes(_without_border_bands(mask) | _without_border_bands(_to_skin(image)))


def _without_border_bands(mask: np.ndarray) -> np.ndarray:
    """Drop components that span a whole side of the image (collimator shutters)."""
    labels, count = ndimage.label(mask)
    keep = mask.copy()
    for index in range(1, count + 1):
        rows, cols = np.nonzero(labels == index)
        if rows.min() == 0 and rows.max() == mask.shape[0] - 1 and (cols.min() == 0 or cols.max() == mask.shape[1] - 1):
            keep[labels == index] = False
    return keep


def _closed_filled(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Close sulci open to the outside of a skull-stripped brain, then fill."""
    return ndimage.binary_fill_holes(ndimage.binary_closing(mask, structure=np.ones((15, 15))))


CORRECTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    # shoulder MR: muscle and thorax under the skin line are body; only the air above is not
    "MR2_UNCR": _under_skin,
    # chest CR: the classical draft cut the shoulders' soft tissue
    "RG1_UNCR": _chest_to_skin,
    # leg CR: soft tissue to the skin; the bright collimator shutters on both sides carry no anatomy
    "RG3_UNCR": _leg_to_skin,
    "eCT_Supplemental": _closed_filled,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--overlays", type=Path, help="also write overlays for review")
    args = parser.parse_args()
    for stem in REAL_EVAL + TRAINING:
        ds = pydicom.dcmread(get_testdata_file(f"{stem}.dcm"))
        pixels = read_pixels(ds)
        masks = ClassicalSegmenter().foreground(ds, pixels)
        images = windowed(ds, pixels)
        for frame, mask in enumerate(masks):
            name = stem if len(masks) == 1 else f"{stem}_f{frame}"
            if stem in CORRECTIONS:
                mask = CORRECTIONS[stem](mask, images[frame])
            write_mask(LABELS / f"{name}.png", mask)
            if args.overlays:
                args.overlays.mkdir(parents=True, exist_ok=True)
                write_overlay(args.overlays / f"{name}.png", images[frame], mask)


if __name__ == "__main__":
    main()
