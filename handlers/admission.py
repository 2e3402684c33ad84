"""Admission: what the node refuses before it acknowledges anything, from the header alone; and
which carriers an admitted object can have.

Every storage SOP class is protected. Images the pixel codec handles (grayscale, and RGB and
YBR colour in their luminance: :mod:`.colour`) get the pixel carrier and the header carrier;
everything else (SR, KO, presentation states, RT objects, SEG, palette colour and small images,
raw data, waveforms) gets the header carrier alone, its pixels, if any, untouched.
Refused are only:

- policy refusals (:class:`~stegonode.errors.RefusedError`), each allowed by node.toml's
  ``[handlers.deidentify]`` with its risk stated there: Burned In Annotation YES (identifying
  text in the pixels), video (frames that may show faces or text, and a stream that cannot be
  inspected), encapsulated documents (PDF, CDA, 3D models: their content is not DICOM
  attributes, so header de-identification cannot clean it);
- objects without a usable pixel carrier when the header carrier is off (carriers = ["pixels"],
  or keys without a certificate): nothing could carry their identity
  (:class:`~stegonode.errors.UnsupportedImageError`);
- malformed objects (:class:`~stegonode.errors.InputError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset
from pydicom.uid import UID, MPEGTransferSyntaxes

from stegonode.dicom.colour import is_colour
from stegonode.dicom.pixels import MAX_DECODED_BYTES, check_complete, check_supported, mib
from stegonode.errors import InputError, RefusedError, UnsupportedImageError

ALLOW_BURNED_IN_KEY = "handlers.deidentify.allow_burned_in_annotation"
ALLOW_VIDEO_KEY = "handlers.deidentify.allow_video"
ALLOW_DOCUMENTS_KEY = "handlers.deidentify.allow_encapsulated_documents"

VIDEO_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.77.1.1.1",  # Video Endoscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.2.1",  # Video Microscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.4.1",  # Video Photographic Image Storage
})
DOCUMENT_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF Storage
    "1.2.840.10008.5.1.4.1.1.104.2",  # Encapsulated CDA Storage
    "1.2.840.10008.5.1.4.1.1.104.3",  # Encapsulated STL Storage
    "1.2.840.10008.5.1.4.1.1.104.4",  # Encapsulated OBJ Storage
    "1.2.840.10008.5.1.4.1.1.104.5",  # Encapsulated MTL Storage
})
# Objects whose pixels are data in their own right: writing a payload into them would change a
# segment mask, a dose grid or a parametric map. They get the header carrier alone.
DATA_PIXEL_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.66.8",  # Height Map Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose Storage
    "1.2.840.10008.5.1.4.1.1.30",  # Parametric Map Storage
})


@dataclass(frozen=True)
class Policy:
    """What node.toml allows, and whether the header carrier can be written (it carries the
    identity of every object the pixels cannot)."""

    allow_burned_in_annotation: bool = False
    allow_video: bool = False
    allow_encapsulated_documents: bool = False
    header_carrier: bool = True
    encrypting: bool = False  # the pipeline encrypts pixels (grayscale only: see pixel_carrier_obstacle)

    @classmethod
    def of(cls, settings: Mapping[str, Mapping[str, Any]], header_carrier: bool) -> Policy:
        """The policy of node.toml's ``[handlers.*]`` tables."""
        deidentify = settings.get("deidentify", {})
        return cls(bool(deidentify.get("allow_burned_in_annotation", False)),
                   bool(deidentify.get("allow_video", False)),
                   bool(deidentify.get("allow_encapsulated_documents", False)), header_carrier)


def check_admissible(ds: Dataset, policy: Policy = Policy(), max_object_bytes: int = MAX_DECODED_BYTES) -> None:
    """Raise an InputError (RefusedError for a policy refusal) naming why ``ds`` is not protected.

    Pixels that would take more than ``max_object_bytes`` decoded are refused before decoding."""
    _check_policy(ds, policy)
    if "PixelData" in ds:
        if not ds.PixelData:
            raise InputError("empty Pixel Data: a broken image")
        try:
            check_complete(ds, max_object_bytes)
        except (TypeError, ValueError, OverflowError, AttributeError):
            raise InputError("Image Pixel attributes malformed (Rows, Columns, bits or frames)") from None
    obstacle = pixel_carrier_obstacle(ds, policy.encrypting)
    if obstacle is not None and not policy.header_carrier:
        raise UnsupportedImageError(f"{obstacle}; header carrier off")


def _check_policy(ds: Dataset, policy: Policy) -> None:
    sop_class = str(ds.get("SOPClassUID", ""))
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    if (sop_class in VIDEO_CLASSES or syntax in MPEGTransferSyntaxes) and not policy.allow_video:
        raise RefusedError(f"video: frames may show identifying faces or text (allow with {ALLOW_VIDEO_KEY})")
    if sop_class in DOCUMENT_CLASSES and not policy.allow_encapsulated_documents:
        raise RefusedError(f"{UID(sop_class).name}: document text is not de-identified "
                           f"(allow with {ALLOW_DOCUMENTS_KEY})")
    burned_in = str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES"
    if burned_in and not policy.allow_burned_in_annotation:
        raise RefusedError(f"BurnedInAnnotation YES: identity may be burned into the pixels "
                           f"(allow with {ALLOW_BURNED_IN_KEY})")


def check_object_size(size: int, max_object_bytes: int = MAX_DECODED_BYTES) -> None:
    """Raise RefusedError when an object of ``size`` bytes (as received) is over the limit:
    checked before it is read, so a huge object costs no decoding."""
    if size > max_object_bytes:
        raise RefusedError(f"object of {mib(size)} MiB: over the node's limit of {mib(max_object_bytes)} MiB "
                           "(node.max_object_mb)")
def pixel_carrier_obstacle(ds: Dataset, encrypting: bool = False) -> str | None:
    """Why the pixels of ``ds`` cannot carry the identity (then the header carrier alone does),
    or None when the pixel codec can write into them (grayscale, and colour in its luminance:
    :mod:`.colour`). ``encrypting``: the pipeline encrypts the pixels, which the ciphers do for
    grayscale only."""
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class in DATA_PIXEL_CLASSES:
        return f"{UID(sop_class).name}: its pixels are data, never written in"
    if sop_class in DOCUMENT_CLASSES or sop_class in VIDEO_CLASSES:
        return f"{UID(sop_class).name}: no image to write in"
    if "PixelData" not in ds:
        return "no Pixel Data"
    try:
        check_supported(ds, colour=True)
    except UnsupportedImageError as exc:
        return str(exc)
    except (TypeError, ValueError, OverflowError):
        raise InputError("Image Pixel attributes malformed (Rows, Columns, bits or frames)") from None
    if encrypting and is_colour(ds):
        return "colour image: pixel encryption (handlers.encrypt) covers grayscale images only"
    return None
