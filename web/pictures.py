"""PNG pictures for the pages: what protect changed, thumbnails, histograms (no patient data)."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
from PIL import Image
from pydicom import Dataset

from stegonode.codecs import cipher_stats
from stegonode.segmenters.maskrcnn import windowed

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


def histograms(panels: dict[str, np.ndarray], bits: int) -> bytes:
    """cipher_stats' histogram panels (one per image) as PNG bytes."""
    buffer = io.BytesIO()
    cipher_stats.histogram_png(buffer, panels, bits)
    return buffer.getvalue()


def frame_count(ds: Dataset) -> int:
    return max(1, int(ds.get("NumberOfFrames", 1) or 1))


def frame_png(ds: Dataset, index: int, side: int = 0) -> bytes:
    """Frame ``index`` of a stored object as PNG: colour as colour (YBR and palettes converted
    to RGB), grey through the Modality LUT and the object's first VOI window (or its range when
    it has none), MONOCHROME1 inverted; ``side``: at most that many pixels wide and high."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

    frame = pixel_array(ds, index=index) if frame_count(ds) > 1 else ds.pixel_array
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        frame = apply_color_lut(frame, ds)
        rgb = (frame >> 8).astype(np.uint8) if frame.dtype.itemsize > 1 else frame.astype(np.uint8)
        picture = Image.fromarray(rgb)
    elif frame.ndim == 3:  # RGB (pydicom converts YBR to RGB when it decodes)
        picture = Image.fromarray(_to_8bit(frame.astype(np.float64), 0, 255 if frame.max() <= 255 else frame.max()))
    else:
        values = apply_modality_lut(frame, ds)
        if "WindowCenter" in ds and "WindowWidth" in ds:
            with warnings.catch_warnings():  # windowing of rescaled (float) values is what is meant
                warnings.simplefilter("ignore", UserWarning)
                values = apply_voi_lut(values.astype(np.float64), ds, index=0)
        values = values.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        gray = _to_8bit(values, low, high)
        if photometric == "MONOCHROME1":
            gray = 255 - gray
        picture = Image.fromarray(gray)
    if side:
        picture.thumbnail((side, side))
    return png(picture)


def _to_8bit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    span = max(high - low, 1e-9)
    return (np.clip((values - low) / span, 0, 1) * 255).round().astype(np.uint8)
