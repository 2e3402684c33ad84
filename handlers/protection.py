"""The protection block: what protect recorded for reveal, in a private block of the stego object.

One JSON document (:mod:`stegonode.dicom.private`) under private creator :data:`PRIVATE_CREATOR`
in group :data:`PRIVATE_GROUP`: the codec and its parameters, the segmenter and its levels, the
guard, the region written where the segmenter proves its background, the carriers, the recipients
and the steps that ran. Written by the ``embed`` handler (or by the pipeline for objects without
a pixel carrier), read by reveal, the node (the already-protected rule) and the peer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pydicom import Dataset

from stegonode.dicom.private import read_document, remove_block, write_document
from stegonode.errors import NotProtectedError

from .guard import Guard

PRIVATE_CREATOR = "STEGONODE 1"

PRIVATE_GROUP = 0x0011

MESSAGE_LAYOUT = 2  # what embed writes (Protection.message_layout)
# A background that offers less than this many times the minimum for a message is tight: the
# protection block records the region written, so that reveal reads exactly there.

PROTECTION_VERSION = 4

READABLE_VERSIONS = (1, 2, 3, 4)  # 1: pixel carrier only, all attributes; 3: the steps that ran; 4: recipients


@dataclass(frozen=True)
class Protection:
    """Contents of the protection block."""

    codec: str
    params: dict
    segmenter: str
    margin: int
    embedding_key_id: str
    recipient_key_id: str
    segmenter_version: str = ""  # Segmenter.version at protection; empty in blocks written before
    segmenter_levels: list[float | None] | None = None  # Segmentation.levels of the cover
    segmenter_params: dict | None = None  # Segmenter.params(); None in blocks written before
    guard: dict | None = None  # Guard.to_dict(); None in blocks written before the guard
    region: dict | None = None  # guard.encode_region(usable) where the segmenter proves its background
    carriers: list[str] = field(default_factory=lambda: ["pixels"])  # what the object has
    pixel_attributes: str = "all"  # "all", or "core": the pixels carry the core attributes only
    header_certificate_id: str = ""  # the header carrier's recipient certificate
    header_mac: str = ""  # MAC of the header carrier's envelope, bound to the study and series
    payload_dictionary: int = 1  # deflate dictionary of the pixel payload (handlers.seal)
    message_layout: int = 1  # 1: every QR module; 2: those the version does not fix (payload.pack)
    steps: list[str] | None = None  # the handlers that ran, in order; None in blocks before version 3
    # Several recipients (version 4): every recipient's key id, in the pixel payload's slot
    # order, and every header carrier certificate id; None in blocks written before (one each)
    recipient_key_ids: list[str] | None = None
    header_certificate_ids: list[str] | None = None

    @property
    def recipients(self) -> list[str]:
        """The pixel carrier's recipient key ids."""
        return list(self.recipient_key_ids or [self.recipient_key_id])

    @property
    def certificates(self) -> list[str]:
        """The header carrier's recipient certificate ids."""
        if self.header_certificate_ids:
            return list(self.header_certificate_ids)
        return [self.header_certificate_id] if self.header_certificate_id else []

    def guard_record(self) -> Guard | None:
        return None if self.guard is None else Guard.from_dict(self.guard)

    @property
    def has_pixels(self) -> bool:
        return "pixels" in self.carriers and bool(self.codec)

def write_protection(ds: Dataset, protection: Protection) -> None:
    write_document(ds, PRIVATE_GROUP, PRIVATE_CREATOR, {"version": PROTECTION_VERSION, **protection.__dict__})

def read_protection(ds: Dataset) -> Protection:
    """The protection block of a stego instance; NotProtectedError if there is none."""
    try:
        document = read_document(ds, PRIVATE_GROUP, PRIVATE_CREATOR)
    except ValueError:
        document = None
    if document is None:
        raise NotProtectedError("not a stegonode-protected object (no protection block)")
    if not isinstance(document, dict) or document.pop("version", None) not in READABLE_VERSIONS:
        raise NotProtectedError("unknown stegonode protection block version")
    if document.get("codec") == "dct" and isinstance(document.get("params"), dict):
        document["params"].setdefault("layout", 1)  # written before the DCT codec had layouts
    levels = document.get("segmenter_levels")
    if levels is not None and not (isinstance(levels, list) and all(
            level is None or (isinstance(level, (int, float)) and math.isfinite(level)) for level in levels)):
        raise NotProtectedError("malformed stegonode protection block (segmenter_levels)")
    try:
        protection = Protection(**document)
    except TypeError:
        raise NotProtectedError("malformed stegonode protection block") from None
    protection.guard_record()  # malformed guard: NotProtectedError now, not in reveal
    return protection

def already_protected(ds: Dataset) -> bool:
    """A stegonode stego object: a protection block and Patient Identity Removed YES.

    Protecting it again would seal its pseudonyms over the identity it carries (the new
    payload overwrites the old one in the same background), so the node and the Orthanc
    plugin store such an object as it is.
    """
    try:
        read_protection(ds)
    except NotProtectedError:
        return False
    return str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"

def remove_protection(ds: Dataset) -> None:
    """Delete the protection block (creator and elements), if present."""
    remove_block(ds, PRIVATE_GROUP, PRIVATE_CREATOR)
