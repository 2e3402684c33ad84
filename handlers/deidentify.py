"""De-identification per PS3.15 Annex E, Basic Application Level Confidentiality Profile.

Action codes are resolved to one action (PS3.15 E.1.1): any code with U -> keyed UID (and, for
sequences, the profile applied inside); else with D or C -> a dummy value of the VR; else with
Z -> zero length; else X -> removed. D is preferred over Z and X because it keeps Type 1
attributes present whatever the IOD. Beyond the table: every private attribute is removed,
overlay and curve groups are removed whole (their
data is in the table; the rest of the group would be left dangling), and any UID that is not a
well-known DICOM UID is replaced, wherever it is, so no instance UID of the original survives.
Empty attributes are left as they are: they hide nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydicom import DataElement, Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID_dictionary

from .base import HandlerBase, Instance, Revealing
from .profile import BASIC_PROFILE, REPEATING_GROUPS
from .pseudonyms import BOUND_UIDS, Pseudonymizer
from .registry import HANDLERS

if TYPE_CHECKING:
    from .pipeline import PipelineContext

METHOD = "stegonode: PS3.15 Basic Profile, identity sealed in pixels"
DERIVATION = "stegonode: patient identity sealed into background pixels (DCT stego)"
# Attributes this module sets; restore removes them before putting the originals back.
ADDED = tuple(
    Tag(keyword)
    for keyword in (
        "PatientIdentityRemoved",
        "DeidentificationMethod",
        "DeidentificationMethodCodeSequence",
        "DerivationDescription",
        "LongitudinalTemporalInformationModified",
    )
)
# Stricter than the table: coded procedure descriptions repeat the removed free-text ones
# (removed: Type 3 wherever it appears, and an empty one is invalid); an SR TEXT content item's
# value is free text (its Content Sequence is de-identified item by item).
STRICTER = {0x00081032: "X", 0x0040A160: "D"}  # Procedure Code Sequence, Text Value
# Sequences the table replaces (D) whose items are de-identified one by one instead: an SR's
# content tree (replaced, the document and every reference in it would be gone). See
# stegonode.handlers.references.
RECURSED = frozenset({Tag("ContentSequence")})
BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
DUMMY = {
    "AE": "ANONYMIZED", "AS": "000Y", "CS": "ANONYMIZED", "DA": "19000101", "DS": "0",
    "DT": "19000101000000", "IS": "0", "LO": "ANONYMIZED", "LT": "ANONYMIZED", "PN": "ANONYMIZED",
    "SH": "ANONYMIZED", "ST": "ANONYMIZED", "TM": "000000", "UC": "ANONYMIZED", "UR": "",
    "UT": "ANONYMIZED", "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "UL": 0, "US": 0,
    "SV": 0, "UV": 0,
}
_PATIENT_ID, _PATIENT_NAME = Tag("PatientID"), Tag("PatientName")


def _is_overlay_or_curve(tag: BaseTag) -> bool:
    return tag.group & 0xFF00 in (0x5000, 0x6000) and tag.group <= 0x60FF


def action(tag: BaseTag, extra: frozenset[BaseTag] = frozenset()) -> str:
    """The resolved action for one tag: 'U', 'D', 'Z', 'X' or 'K' (keep).

    ``extra`` are configured additional identifying attributes: removed (X) like the table's.
    """
    if tag in extra or tag.is_private or _is_overlay_or_curve(tag):
        return "X"
    code = (
        BASIC_PROFILE.get(int(tag))
        or STRICTER.get(int(tag))
        or REPEATING_GROUPS.get(int(tag) & 0xFF00FFFF, "K")
    )
    for letter, resolved in (("U", "U"), ("D", "D"), ("C", "D"), ("Z", "Z"), ("X", "X")):
        if letter in code:
            return resolved
    return "K"


def _is_instance_uid(value: object) -> bool:
    return bool(value) and str(value) not in UID_dictionary


def _values(element: DataElement) -> list:
    value = element.value
    if value is None or value == "":
        return []
    return list(value) if element.VM > 1 else [value]


def is_bulk(element: DataElement) -> bool:
    """Binary bulk data (pixels of icons, overlays, curves, private blobs): never carried."""
    if element.VR in BULK_VRS or element.tag.is_private or _is_overlay_or_curve(element.tag):
        return True
    if element.VR == "SQ":
        return any(is_bulk(e) for item in element.value for e in item)
    return False


@HANDLERS.register
class DeidentifyHandler(HandlerBase):
    """Strips the header of identity per the Basic Profile and marks the object derived; its
    inverse step restores the carried attributes."""

    name: ClassVar[str] = "deidentify"
    requires: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[Mapping[str, Any]] = {"allow_burned_in_annotation": False, "allow_video": False,
                                             "allow_encapsulated_documents": False}

    @classmethod
    def from_config(cls, context: PipelineContext) -> DeidentifyHandler:
        return cls(context.deidentifier)

    @classmethod
    def unprotect(cls, state: Revealing) -> None:
        _remove_protection(state.output)  # first: a restored private block may take its slot
        restore(state.output, state.identity.attributes, state.identity.complete)

    def __init__(self, deidentifier: Callable[[Dataset], None]) -> None:
        self.deidentifier = deidentifier

    def __call__(self, instance: Instance) -> None:
        self.deidentifier(instance.dataset)


def deidentify(ds: Dataset, pseudonyms: Pseudonymizer, extra: frozenset[BaseTag] = frozenset()) -> None:
    """Apply the profile to ``ds`` in place, then set the de-identification attributes."""
    original_patient_id = str(ds.get("PatientID", ""))
    new_uids = pseudonyms.new_uids(ds)
    _apply(ds, pseudonyms, extra)
    for keyword, new_uid in zip(BOUND_UIDS, new_uids):
        if str(ds.get(keyword, "")):
            setattr(ds, keyword, new_uid)  # as _apply wrote them: the one derivation, stated
    if _PATIENT_ID in ds:
        ds.PatientID = pseudonyms.patient_id(original_patient_id)
    if _PATIENT_NAME in ds:
        ds.PatientName = pseudonyms.patient_name(original_patient_id)
    if "ImageType" in ds and ds.ImageType:
        image_type = list(ds.ImageType) if ds["ImageType"].VM > 1 else [ds.ImageType]
        ds.ImageType = ["DERIVED", *image_type[1:]]
    ds.DerivationDescription = DERIVATION
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    ds.LongitudinalTemporalInformationModified = "REMOVED"


def _apply(ds: Dataset, pseudonyms: Pseudonymizer, extra: frozenset[BaseTag]) -> None:
    for element in list(ds):
        resolved = action(element.tag, extra)
        if element.is_empty and not element.tag.is_private:
            continue  # nothing to hide; left as it is, so nothing needs carrying either
        if resolved == "X":
            del ds[element.tag]
        elif element.VR == "SQ" and element.tag in RECURSED:
            for item in element.value:
                _apply(item, pseudonyms, extra)
        elif resolved == "Z":
            element.value = Sequence() if element.VR == "SQ" else None
        elif resolved == "D" and element.VR == "SQ":
            element.value = Sequence()
        elif resolved == "D":
            element.value = DUMMY.get(element.VR)
        elif element.VR == "UI":  # U, or a kept attribute holding an instance UID
            replaced = [pseudonyms.uid(str(v)) if _is_instance_uid(v) else v for v in _values(element)]
            element.value = replaced if len(replaced) > 1 else (replaced[0] if replaced else element.value)
        elif element.VR == "SQ":
            for item in element.value:
                _apply(item, pseudonyms, extra)


def _remove_protection(ds: Dataset) -> None:
    from .embed import remove_protection  # embed imports this module (through seal and collect)

    remove_protection(ds)


def restore(ds: Dataset, attributes: Dataset, complete: bool = True) -> None:
    """Undo :func:`deidentify` on ``ds`` with the carried original ``attributes``; when they are
    not all of them (``complete`` False), the object stays marked as de-identified."""
    for tag in ADDED if complete else ():
        if tag in ds:
            del ds[tag]
    for element in attributes:
        if element.tag != Tag("SpecificCharacterSet"):
            ds[element.tag] = element
