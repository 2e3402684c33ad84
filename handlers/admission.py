"""Admission: what the node refuses before it acknowledges anything, from the header alone."""

from __future__ import annotations

from pydicom import Dataset

from stegonode.errors import RefusedError

from .pixels import check_image

ALLOW_BURNED_IN_KEY = "handlers.deidentify.allow_burned_in_annotation"


def check_admissible(ds: Dataset, allow_burned_in_annotation: bool = False) -> None:
    """Raise an InputError (RefusedError for a policy refusal) naming why ``ds`` is not protected.

    Burned In Annotation YES means identifying text may be in the pixels, which header
    de-identification cannot remove: refused unless node.toml allows it.
    """
    check_image(ds)
    burned_in = str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES"
    if burned_in and not allow_burned_in_annotation:
        raise RefusedError(f"BurnedInAnnotation YES: identity may be burned into the pixels "
                           f"(allow with {ALLOW_BURNED_IN_KEY})")
