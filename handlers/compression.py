"""The stored form of a protected object: its pixels in node.toml's ``[storage] transfer_syntax``.

Every writer of a protected object (the node's workers, ``stegonode protect``, the web console,
the Orthanc plugin) encodes through :func:`store_pixels`. The choices are lossless only:
JPEG-LS (CharLS through pyjpegls), JPEG 2000 (OpenJPEG through pylibjpeg-openjpeg), RLE and
uncompressed Explicit VR Little Endian, all through pydicom's encoding plugins. Each frame is
encoded alone and encapsulated with a Basic Offset Table, so a viewer can reach any frame.

An object that arrived in Deflated Explicit VR Little Endian is stored deflated unless the
configured syntax encodes its pixels smaller (:mod:`stegonode.dicom.deflated`): never less
compact than it came.

Never lossy: the encoded object is decoded again and compared with the pixels it was made
from; if an encoder refuses the pixels (an unusual bit depth, values beyond Bits Stored) or
its output differs, the object is stored uncompressed instead, with a log line. Encrypted
pixels (the ``encrypt`` handler) are stored uncompressed: ciphertext does not compress.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from pydicom import Dataset
from pydicom.pixels import iter_pixels, pixel_array
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from stegonode.dicom.colour import is_colour, native_bytes, with_luminance
from stegonode.dicom.deflated import deflated_size
from stegonode.dicom.pixels import decompress, drop_offset_tables, write_pixels
from stegonode.errors import ConfigError

from .encrypt import is_encrypted

log = logging.getLogger(__name__)

# node.toml's [storage] transfer_syntax choices.
STORAGE_SYNTAXES: dict[str, UID] = {
    "jpeg-ls-lossless": JPEGLSLossless,
    "jpeg2000-lossless": JPEG2000Lossless,
    "rle-lossless": RLELossless,
    "explicit-vr-little-endian": ExplicitVRLittleEndian,
}
# Chosen by benchmarks/storage.py (docs/node.md, "Stored transfer syntax"): the smallest total and the fastest encoder
# among the lossless choices on the realdata and round-trip sets.
DEFAULT_STORAGE = "jpeg-ls-lossless"
# Decoding plugins by transfer syntax where pydicom's first choice is slower: CharLS decodes
# JPEG-LS in a third of the time pylibjpeg-libjpeg takes (512 x 512 CT: 4 ms against 14 ms).
DECODERS = {JPEGLSLossless: "pyjpegls"}


def storage_syntax(name: str) -> UID:
    """The transfer syntax node.toml's ``[storage] transfer_syntax = name`` stands for."""
    try:
        return STORAGE_SYNTAXES[name]
    except KeyError:
        raise ConfigError(f"storage.transfer_syntax = {name!r}; choose one of "
                          f"{', '.join(repr(choice) for choice in STORAGE_SYNTAXES)}") from None


def store_pixels(ds: Dataset, pixels: np.ndarray, syntax: UID = ExplicitVRLittleEndian,
                 received: UID | None = None) -> UID:
    """Write ``pixels`` (frames, rows, columns) into ``ds`` in ``syntax``; return the syntax used.

    Uncompressed when ``syntax`` is, when the pixels are encrypted, or when lossless encoding
    is not possible for these pixels (logged, without values). Deflated when the object was
    ``received`` so (by default: the transfer syntax of ``ds``, as received until its pixels are
    stored) and ``syntax`` does not code the pixels smaller. Besides
    ``pixels`` and the encoded result this holds one frame at a time: the proof decodes frame
    by frame.
    """
    ds._pixel_array = None  # pydicom's cached decoding of the received pixels: not needed now
    received = received or ds.file_meta.get("TransferSyntaxUID")
    if received == DeflatedExplicitVRLittleEndian and not is_encrypted(ds):
        return _deflated_unless_smaller(ds, pixels, syntax)
    return _store(ds, pixels, syntax)


def _deflated_unless_smaller(ds: Dataset, pixels: np.ndarray, syntax: UID) -> UID:
    """An object received deflated: stored in ``syntax`` when that encodes its pixels in fewer
    bytes than deflate does, deflated with native pixels otherwise
    (:mod:`stegonode.dicom.deflated`)."""
    _store(ds, pixels, ExplicitVRLittleEndian)
    deflated = deflated_size(ds.PixelData)
    if syntax.is_compressed and _store(ds, pixels, syntax) == syntax and len(ds.PixelData) < deflated:
        return syntax
    if ds.file_meta.TransferSyntaxUID != ExplicitVRLittleEndian:
        _store(ds, pixels, ExplicitVRLittleEndian)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return DeflatedExplicitVRLittleEndian


def _store(ds: Dataset, pixels: np.ndarray, syntax: UID) -> UID:
    if is_colour(ds):
        return _store_colour(ds, pixels, syntax)
    if not syntax.is_compressed or is_encrypted(ds):
        write_pixels(ds, pixels)
        return ExplicitVRLittleEndian
    return _encode(ds, pixels, syntax, lambda: write_pixels(ds, pixels))


def _store_colour(ds: Dataset, plane: np.ndarray, syntax: UID) -> UID:
    """A colour image whose luminance is ``plane`` (:mod:`.colour`): encoded in ``syntax`` when
    the encoder keeps its Photometric Interpretation and Planar Configuration (JPEG 2000
    without its colour transform), uncompressed in its own layout otherwise (YBR_FULL_422,
    Planar Configuration 1) or when encoding is not lossless."""
    planar = int(ds.get("PlanarConfiguration", 0) or 0)
    if not syntax.is_compressed or str(ds.PhotometricInterpretation) == "YBR_FULL_422" or planar != 0:
        data = native_bytes(ds, plane)
        ds.PixelData = data
        ds["PixelData"].VR = "OB" if int(ds.BitsAllocated) == 8 else "OW"
        ds["PixelData"].is_undefined_length = False
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        drop_offset_tables(ds)
        return ExplicitVRLittleEndian
    values = with_luminance(ds, plane)
    return _encode(ds, values, syntax, lambda: write_pixels(ds, values),
                   **({"use_mct": False} if syntax == JPEG2000Lossless else {}))


def _encode(ds: Dataset, pixels: np.ndarray, syntax: UID, uncompressed: Callable[[], None], **options: Any) -> UID:
    """``pixels`` (frames first) encoded in ``syntax`` and proven lossless; else ``uncompressed()``."""
    frames = pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels[0]
    layout = ds.get("PhotometricInterpretation"), ds.get("PlanarConfiguration")
    drop_offset_tables(ds)
    try:
        ds.compress(syntax, frames, generate_instance_uid=False, **options)
        same = (ds.get("PhotometricInterpretation"), ds.get("PlanarConfiguration")) == layout \
            and _decodes_to(ds, pixels)
    except Exception as exc:  # an encoder refusing these pixels: pydicom raises many types
        log.warning("pixels cannot be encoded losslessly as %s (%s): stored uncompressed",
                    syntax.name, type(exc).__name__)
        same = None
    if same is False:
        log.warning("%s did not give the pixels back exactly: stored uncompressed", syntax.name)
    if not same:
        for keyword, value in zip(("PhotometricInterpretation", "PlanarConfiguration"), layout, strict=True):
            if value is not None:
                setattr(ds, keyword, value)
        uncompressed()
        return ExplicitVRLittleEndian
    return syntax


def release_encoded(ds: Dataset) -> None:
    """Free the received pixel bytes of ``ds`` once its pixels are decoded for protection:
    :func:`store_pixels` writes Pixel Data anew, so holding them would only add the object's
    size to what protecting it takes (the stated bound: see docs/performance.md)."""
    if "PixelData" in ds:
        ds["PixelData"].value = b""


def _decodes_to(ds: Dataset, pixels: np.ndarray) -> bool:
    """Whether the encoded pixel data of ``ds`` decodes to ``pixels``, frame by frame."""
    plugin = DECODERS.get(ds.file_meta.TransferSyntaxUID, "")
    count = 0
    for count, frame in enumerate(iter_pixels(ds, decoding_plugin=plugin, as_rgb=False), start=1):
        if count > len(pixels) or not np.array_equal(frame, pixels[count - 1]):
            return False
    return count == len(pixels)


def decoded(ds: Dataset) -> np.ndarray:
    """The pixels of ``ds`` decoded (rows, columns) or (frames, rows, columns), colour samples
    last in their own colour model, without keeping a decoded copy on the data set."""
    syntax = ds.file_meta.TransferSyntaxUID
    return pixel_array(ds, decoding_plugin=DECODERS.get(syntax, ""), as_rgb=False)


def decompressed(ds: Dataset) -> Dataset:
    """``ds`` with its pixels uncompressed (Explicit VR Little Endian), in place; what a peer that
    accepts only uncompressed transfer syntaxes gets. An object stored in a syntax of its own
    (the header carrier alone keeps the received bytes: JPEG Baseline, JPEG 2000, ...) is
    decoded as a viewer shows it (YCbCr JPEG becomes RGB, :func:`~stegonode.dicom.pixels.decompress`);
    a lossy source stays what it was, only decoded."""
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_compressed:
        return ds
    if syntax in STORAGE_SYNTAXES.values() and ds.get("PhotometricInterpretation") != "YBR_FULL_422":
        pixels = decoded(ds)  # what the node encoded: its own layout, the fastest decoder
        write_pixels(ds, pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels[None])
    else:
        decompress(ds)
        drop_offset_tables(ds)
    return ds

