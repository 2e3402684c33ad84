"""Colour images and the pixel carrier: the codec writes luminance, exactly invertibly.

The DCT codec, the segmenters and the safety guard work on one plane of stored integers per frame.
For a colour image that plane is its luminance (:func:`luminance`):

* **RGB**: the luminance of JPEG 2000's reversible colour transform (RCT, ISO/IEC 15444-1 G.2),
  ``Y = floor((R + 2G + B) / 4)``, with ``Cb = B - G`` and ``Cr = R - G``; the inverse
  ``G = Y - floor((Cb + Cr) / 4)``, ``R = Cr + G``, ``B = Cb + G`` gives back every original
  sample exactly. A changed ``Y`` moves R, G and B together.
* **YBR_FULL** and native **YBR_FULL_422**: the Y samples themselves; Cb and Cr are never touched
  (in 4:2:2 each Y sample is stored on its own, only chroma is shared by two pixels).

The codec writes only in **achromatic** pixels (R = G = B, or Cb = Cr = the midpoint): there the
luminance is the whole pixel, every value of the stored range is a legal sample (R = G = B = Y),
and the pixel stays achromatic after writing, so cover and stego give the same mask
(:func:`chromatic` feeds the guard: colour is content, kept with the margin around it, like
anatomy). Everything else is bit for bit as received, chroma everywhere, so the stored pixels
are the original's outside the usable background, and reveal reads the same luminance back.

The stored object keeps the received Photometric Interpretation and Planar Configuration;
compressed colour is first decoded as a viewer shows it (YCbCr JPEG becomes RGB, as DCMTK's
dcmdjpeg does: :func:`cover_pixels`). It is encoded losslessly in the node's stored transfer
syntax when the encoder keeps both attributes (JPEG 2000 without its colour transform);
YBR_FULL_422 (no lossless encoder stores subsampled chroma as it is) and Planar Configuration 1
are stored uncompressed (see :mod:`.compression`).

Not written in (header carrier alone, :func:`colour_obstacle` says why): PALETTE COLOR (the stored
values are indices into a palette, not luminance: a changed index shows whatever colour the
palette holds there) and any other colour model.
"""

from __future__ import annotations

import numpy as np
from pydicom import Dataset
from pydicom.pixels import pixel_array

from stegonode.errors import InputError

WRITABLE = ("RGB", "YBR_FULL", "YBR_FULL_422")


def is_colour(ds: Dataset) -> bool:
    """Three samples per pixel (any colour model)."""
    return int(ds.get("SamplesPerPixel", 1) or 1) == 3


def colour_obstacle(ds: Dataset) -> str | None:
    """Why the pixel carrier cannot write into a colour image, or None when it can (the
    grayscale checks of bits and size still apply). Only for colour: palette or three samples."""
    photometric = str(ds.get("PhotometricInterpretation", "")) or "no PhotometricInterpretation"
    if photometric == "PALETTE COLOR":
        return ("colour image (PALETTE COLOR): stored values are palette indices, not luminance "
                "(a changed index shows whatever colour the palette holds there)")
    if not is_colour(ds):
        return f"colour image ({photometric}): {ds.get('SamplesPerPixel')} samples per pixel"
    compressed = ds.file_meta.get("TransferSyntaxUID") is not None and ds.file_meta.TransferSyntaxUID.is_compressed
    if compressed:
        return None  # decoded as a viewer shows it (RGB) before the codec writes
    if photometric not in WRITABLE:
        return f"colour image ({photometric}): the codec writes luminance of {', '.join(WRITABLE)} only"
    if photometric == "YBR_FULL_422" and (int(ds.BitsAllocated) != 8 or int(ds.Columns) % 2):
        return "colour image (YBR_FULL_422): only 8-bit samples and an even number of columns"
    return None


def cover_pixels(ds: Dataset) -> np.ndarray:
    """The plane the codec writes into, for protect: a received compressed colour image is
    decoded first, in place (:func:`stegonode.dicom.pixels.decompress`: YCbCr JPEG becomes
    RGB); grayscale as read_pixels reads it."""
    from stegonode.dicom.pixels import decompress, read_pixels

    if not is_colour(ds):
        return read_pixels(ds)
    decompress(ds)
    return luminance(ds)


def carrier_pixels(ds: Dataset) -> np.ndarray:
    """The plane the codec wrote into, of a stored object (never changes ``ds``)."""
    from stegonode.dicom.pixels import read_pixels

    return luminance(ds) if is_colour(ds) else read_pixels(ds)


def samples(ds: Dataset) -> np.ndarray:
    """Stored samples of a native or compressed colour image in its own colour model (no
    conversion to RGB; 4:2:2 chroma repeated per pixel): (frames, rows, columns, 3), int64."""
    try:
        array = pixel_array(ds, as_rgb=False)
    except Exception as exc:  # pydicom raises many types for undecodable pixel data
        raise InputError(f"pixel data does not decode: {type(exc).__name__}") from None
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        array = array[None]
    return array.astype(np.int64)


def luminance(ds: Dataset) -> np.ndarray:
    """The luminance plane (frames, rows, columns) in the samples' unsigned type."""
    values = samples(ds)
    if str(ds.PhotometricInterpretation) == "RGB":
        plane = (values[..., 0] + 2 * values[..., 1] + values[..., 2]) >> 2
    else:
        plane = values[..., 0]
    return plane.astype(np.dtype(f"u{int(ds.BitsAllocated) // 8}"))


def chromatic(ds: Dataset) -> np.ndarray:
    """Boolean (frames, rows, columns): pixels with colour, where the codec never writes."""
    values = samples(ds)
    if str(ds.PhotometricInterpretation) == "RGB":
        return (values[..., 0] != values[..., 1]) | (values[..., 1] != values[..., 2])
    middle = 1 << (int(ds.BitsStored) - 1)
    return (values[..., 1] != middle) | (values[..., 2] != middle)


def with_luminance(ds: Dataset, plane: np.ndarray) -> np.ndarray:
    """The samples of ``ds`` with luminance ``plane`` (the inverse transform), (frames, rows,
    columns, 3) in the stored type. Raises ValueError if a sample leaves the stored range (the
    codec wrote where it must not: never for achromatic pixels)."""
    values = samples(ds)
    plane = plane.astype(np.int64)
    if str(ds.PhotometricInterpretation) == "RGB":
        cb, cr = values[..., 2] - values[..., 1], values[..., 0] - values[..., 1]
        green = plane - ((cb + cr) >> 2)
        values = np.stack([cr + green, green, cb + green], axis=-1)
    else:
        values[..., 0] = plane
    top = (1 << int(ds.BitsStored)) - 1
    if values.min() < 0 or values.max() > top:
        raise ValueError("luminance outside the samples' range")
    return values.astype(np.dtype(f"u{int(ds.BitsAllocated) // 8}"))


def native_bytes(ds: Dataset, plane: np.ndarray) -> bytes:
    """Pixel Data of ``ds`` with luminance ``plane``, in the object's own layout: Planar
    Configuration 0 or 1, or YBR_FULL_422's Y Y Cb Cr per pair of pixels (only Y replaced)."""
    if str(ds.PhotometricInterpretation) == "YBR_FULL_422":
        frames, rows, columns = plane.shape
        raw = np.frombuffer(ds.PixelData, np.uint8)[: frames * rows * columns * 2].copy()
        pairs = raw.reshape(frames, rows, columns // 2, 4)
        pairs[..., 0], pairs[..., 1] = plane[..., 0::2], plane[..., 1::2]
        return raw.tobytes()
    values = with_luminance(ds, plane).astype(np.dtype(f"<u{int(ds.BitsAllocated) // 8}"))
    if int(ds.get("PlanarConfiguration", 0) or 0) == 1:
        values = values.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(values).tobytes()
