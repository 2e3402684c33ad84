"""Admission: what the node refuses before it acknowledges anything, from the header alone."""

from __future__ import annotations

from pydicom import Dataset

from stegonode.errors import RefusedError

from .pixels import MAX_DECODED_BYTES, check_image, mib

ALLOW_BURNED_IN_KEY = "handlers.deidentify.allow_burned_in_annotation"


def check_admissible(ds: Dataset, allow_burned_in_annotation: bool = False,
                     max_object_bytes: int = MAX_DECODED_BYTES) -> None:
    """Raise an InputError (RefusedError for a policy refusal) naming why ``ds`` is not protected.

    Pixels that would take more than ``max_object_bytes`` decoded are refused before decoding.

    Burned In Annotation YES means identifying text may be in the pixels, which header
    de-identification cannot remove: refused unless node.toml allows it.
    """
    check_image(ds, max_object_bytes)
    burned_in = str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES"
    if burned_in and not allow_burned_in_annotation:
        raise RefusedError(f"BurnedInAnnotation YES: identity may be burned into the pixels "
                           f"(allow with {ALLOW_BURNED_IN_KEY})")


def check_object_size(size: int, max_object_bytes: int = MAX_DECODED_BYTES) -> None:
    """Raise RefusedError when an object of ``size`` bytes (as received) is over the limit:
    checked before it is read, so a huge object costs no decoding."""
    if size > max_object_bytes:
        raise RefusedError(f"object of {mib(size)} MiB: over the node's limit of {mib(max_object_bytes)} MiB "
                           "(node.max_object_mb)")
