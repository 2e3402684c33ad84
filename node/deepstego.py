"""Deep image-in-image steganography from the command line: hide and reveal (deep-hide,
deep-reveal), PNG and DICOM images in and out.

The networks run from their ONNX export through ONNX Runtime (``stegonode.models.deepstego``);
what they are trained on, the training and the model card are in :mod:`stegonode.training.deepstego`
(torch: the ``train`` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.misc import is_dicom
from pydicom.uid import generate_uid

from stegonode.codecs.metrics import distortion
from stegonode.dicom.dicomfile import read_dicom
from stegonode.dicom.pixels import PixelFormat, read_pixels, write_pixels
from stegonode.errors import InputError
from stegonode.models import deepstego as deepstego_model
from stegonode.models.geometry import BLANK_LIMIT

# -- images in and out ----------------------------------------------------------------------------


def read_png(path: Path) -> np.ndarray:
    """An 8-bit image file as (rows, columns) uint8, or (rows, columns, 3) if it has colour."""
    try:
        image = Image.open(path)
        image.load()
    except (OSError, ValueError) as exc:
        raise InputError(f"{path.name}: not a readable image ({type(exc).__name__})") from None
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise InputError(f"{path.name}: {image.mode} images are not supported: use 8-bit grayscale or RGB")
    return np.asarray(image.convert("L" if image.mode in ("1", "L", "LA") else "RGB"))


def write_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(np.clip(array, 0, 255)).astype(np.uint8)).save(path)


def _dicom_frame(ds: pydicom.Dataset) -> np.ndarray:
    """The single frame of a DICOM image, stored values as int64."""
    pixels = read_pixels(ds)
    if len(pixels) != 1:
        raise InputError(f"{len(pixels)}-frame image: deep-hide and deep-reveal take single-frame DICOM images")
    return pixels[0].astype(np.int64)


def _dicom_window(stored: np.ndarray) -> tuple[int, float]:
    """Stored -> 8-bit mapping of a DICOM image: (its smallest value, stored units per level).

    Computed from the image alone, so reveal finds it again in the stego image: hide keeps the
    smallest and (when scaled) the largest value in place.
    """
    lo, hi = int(stored.min()), int(stored.max())
    return lo, max(1.0, (hi - lo) / 255)


def hide_in_dicom(ds: pydicom.Dataset, secret: np.ndarray) -> dict:
    """Hide ``secret`` (8-bit, same size) in the DICOM cover ``ds``, in place; return figures.

    The stego keeps BitsAllocated, BitsStored and PixelRepresentation; it gets a new SOP
    Instance UID, since it is a new (derived) image.
    """
    fmt = PixelFormat.of(ds)
    cover = _dicom_frame(ds)
    lo, scale = _dicom_window(cover)
    stego8 = np.rint(deepstego_model.hide((cover - lo) / scale, secret))  # the levels reveal reads back
    stego = np.clip(np.rint(lo + stego8 * scale), *fmt.value_range).astype(np.int64)
    stego.flat[np.argmin(cover)] = lo
    if scale > 1:
        stego.flat[np.argmax(cover)] = int(cover.max())
    write_pixels(ds, stego[None])
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.DerivationDescription = "stegonode deep-hide: a secret image hidden in the pixels (seed 000 networks)"
    return distortion(cover, stego, fmt.peak)


def reveal_from_dicom(ds: pydicom.Dataset) -> np.ndarray:
    """The secret hidden by :func:`hide_in_dicom` (float, 8-bit units)."""
    stego = _dicom_frame(ds)
    lo, scale = _dicom_window(stego)
    return deepstego_model.reveal(np.rint((stego - lo) / scale))


def hide_files(cover_path: Path, secret_path: Path, out: Path) -> str:
    """deep-hide: PNG cover -> PNG stego, DICOM cover -> DICOM stego. Returns the report line."""
    secret = read_png(secret_path)
    try:
        if is_dicom(cover_path):
            ds = read_dicom(cover_path)
            figures = hide_in_dicom(ds, secret)
            out.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(out, enforce_file_format=True)
            return (f"wrote {out}: DICOM stego, BitsStored {ds.BitsStored} kept, PSNR {figures['psnr_db']:.1f} dB "
                    f"(peak 2^BitsStored-1), {figures['changed_pixels']} pixels changed")
        cover = read_png(cover_path)
        stego = np.rint(deepstego_model.hide(cover, secret))
    except ValueError as exc:  # cover and secret of different sizes
        raise InputError(str(exc)) from None
    write_png(stego, out)
    error = deepstego_model.mse(stego, cover)
    return f"wrote {out}: PNG stego, PSNR {deepstego_model.psnr(error):.1f} dB (peak 255), MSE {error:.2f}"


def reveal_file(stego_path: Path, out: Path) -> tuple[str, bool]:
    """deep-reveal: the recovered secret as PNG. Returns the report line and whether it is blank."""
    if is_dicom(stego_path):
        recovered = reveal_from_dicom(read_dicom(stego_path))
    else:
        recovered = deepstego_model.reveal(read_png(stego_path))
    write_png(recovered, out)
    distance = deepstego_model.blankness(recovered)
    if distance < BLANK_LIMIT:
        return (f"wrote {out}, but it is blank: no hidden image found (RMS distance from mid-grey "
                f"{distance:.1f} < {BLANK_LIMIT:.0f})", True)
    return f"wrote {out}: recovered secret (RMS distance from mid-grey {distance:.1f})", False
