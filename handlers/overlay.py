"""Masks as PNG pictures: the mask itself and an outline over the windowed image (``stegonode
segment``, training's overlays, the label scripts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def read_mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")) > 127


def write_mask(path: Path, mask: np.ndarray) -> None:
    """255 foreground, 0 background, 8-bit grayscale PNG."""
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(path, optimize=True)


def write_overlay(path: Path, image: np.ndarray, mask: np.ndarray, truth: np.ndarray | None = None,
                  max_side: int | None = None) -> None:
    """The windowed image in gray, the mask's outline in red (truth's outline in green)."""
    from scipy import ndimage

    gray = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    rgb = np.stack([gray] * 3, axis=-1)
    if truth is not None:
        rgb[truth ^ ndimage.binary_erosion(truth, iterations=2)] = (0, 255, 0)
    rgb[mask ^ ndimage.binary_erosion(mask, iterations=2)] = (255, 0, 0)
    picture = Image.fromarray(rgb)
    if max_side is not None:
        picture.thumbnail((max_side, max_side))
    picture.save(path, optimize=True)
