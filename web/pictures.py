"""PNG pictures for the pages: what protect changed, thumbnails, histograms (no patient data)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from pydicom import Dataset

from stegonode.codecs import cipher_stats
from stegonode.handlers.segment import windowed

CHANGED = (255, 40, 40)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def data_url(data: bytes, mime: str) -> str:
    """A ``data:`` URL: pictures and downloads that exist only in one response."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _gray(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """The first frame, windowed as the segmenter sees it, as 8-bit gray."""
    return (np.clip(windowed(ds, pixels[:1])[0], 0, 1) * 255).astype(np.uint8)


def change_overlay(ds: Dataset, cover: np.ndarray, stego: np.ndarray) -> bytes:
    """The cover's first frame in gray with every pixel protect changed in red."""
    rgb = np.repeat(_gray(ds, cover)[..., None], 3, axis=-1)
    rgb[cover[0] != stego[0]] = CHANGED
    return png(Image.fromarray(rgb))


def thumbnail(ds: Dataset, pixels: np.ndarray, side: int = 160) -> bytes:
    picture = Image.fromarray(_gray(ds, pixels))
    picture.thumbnail((side, side))
    return png(picture)


def histograms(panels: dict[str, np.ndarray], bits: int) -> bytes:
    """cipher_stats' histogram panels (one per image) as PNG bytes."""
    buffer = io.BytesIO()
    cipher_stats.histogram_png(buffer, panels, bits)
    return buffer.getvalue()
