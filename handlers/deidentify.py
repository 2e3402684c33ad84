"""De-identification per PS3.15 Annex E, Basic Application Level Confidentiality Profile and the
options node.toml applies (:mod:`stegonode.handlers.options`).

Action codes are resolved to one action (PS3.15 E.1.1): an applied option's K or C first (C:
kept, then cleaned: dates shifted per patient, :mod:`stegonode.dicom.dates`; identity taken
out of text by the residual check, :mod:`stegonode.handlers.residual`; sequences cleaned item by
item); else any code with U -> keyed UID (and, for sequences, the profile applied inside); else
with D or C -> a dummy value of the VR; else with Z -> zero length; else X -> removed. D is
preferred over Z and X because it keeps Type 1 attributes present whatever the IOD; a sequence
to be emptied or dummied that holds only references keeps its items with new UIDs instead (an
empty one breaks IODs that require an item). Beyond the table: private attributes are removed (with Retain Safe Private, those of Table E.3.10-1 are
kept), overlay and curve groups are removed whole unless Clean Graphics keeps them (their data
is in the table; the rest of the group would be left dangling), and any UID that is not a
well-known DICOM UID is replaced, wherever it is, so no instance UID of the original survives
(unless Retain UIDs). Empty attributes are left as they are: they hide nothing (but a Study or
Series Instance UID, Type 1, missing or empty gets a generated one: :data:`GENERATED`). Last, the
residual-identity check searches what is left for the object's identity values.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from pydicom import DataElement, Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID_dictionary

from stegonode.codecs.settings import Settings
from stegonode.dicom.dates import legal_age, shift_values
from stegonode.dicom.lazy import dictionary_vr, undecoded_number
from stegonode.dicom.profile import BASIC_PROFILE, REPEATING_GROUPS, SAFE_PRIVATE
from stegonode.dicom.pseudonyms import BOUND_UIDS, Pseudonymizer, patient_identity

from .base import HandlerBase, Instance, Revealing, keyword_tags
from .options import OPTIONS, DeidentifySettings, Policy
from .registry import HANDLERS
from .residual import Identity

if TYPE_CHECKING:
    from .pipeline import PipelineContext

# De-identification Method (LO: at most 64 characters) and Derivation Description as
# de-identification writes them; once the pipeline has recorded its carriers (the protection
# block), :meth:`DeidentifyHandler.finish` says where the identity is: :func:`method`, :func:`derivation`.
METHOD = "stegonode: PS3.15 Basic Profile"
BASIC_CODE = ("113100", "Basic Application Confidentiality Profile")
DERIVATION = "stegonode: de-identified (PS3.15 Basic Profile)"
CARRIED_IN = {
    "pixels": "background pixels (DCT stego)",
    "pixels(core)": "background pixels (DCT stego, the core attributes)",
    "header": "the header (Encrypted Attributes Sequence, PS3.15 E.1.1)",
}
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
# Type 1 UIDs de-identification writes even where the original lacks them (or has them empty):
# the seal is bound to them (Pseudonymizer.new_uids generates them), the index and C-FIND group by
# them. Reveal removes those the original did not have: see :func:`restore`.
GENERATED_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID")
GENERATED = tuple(Tag(keyword) for keyword in GENERATED_KEYWORDS)
# Stricter than the table: coded procedure descriptions repeat the removed free-text ones
# (removed: Type 3 wherever it appears, and an empty one is invalid); an SR TEXT content item's
# value is free text (its Content Sequence is de-identified item by item).
STRICTER = {0x00081032: "X", 0x0040A160: "D"}  # Procedure Code Sequence, Text Value
# Free text of SR content items: replaced (STRICTER) unless Clean Structured Content keeps it.
STRUCTURED_TEXT = frozenset({0x0040A160})
# Sequences the table replaces (D) whose items are de-identified one by one instead: an SR's
# content tree (replaced, the document and every reference in it would be gone). See
# stegonode.dicom.references.
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


def action(tag: BaseTag, extra: frozenset[BaseTag] = frozenset(), policy: Policy = Policy()) -> str:
    """The resolved action for one public tag: 'U', 'D', 'Z', 'X', 'C' (keep, cleaned) or 'K' (keep).

    ``extra`` are configured additional identifying attributes: removed (X) like the table's,
    whatever the options say.
    """
    if tag in extra or tag.is_private:
        return "X"
    option = policy.action(tag)
    if option is not None:
        return option
    if int(tag) in STRUCTURED_TEXT and policy.has("clean_structured_content"):
        return "C"  # SR free text kept: the residual-identity check takes the identity out
    if _is_overlay_or_curve(tag) and not policy.has("clean_graphics"):
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
    if element.tag.is_private or _is_overlay_or_curve(element.tag):
        return True
    if element.VR == "UN":  # bulk unless the attribute is text or numbers that arrived as UN
        return dictionary_vr(element.tag) in (None, *BULK_VRS, "SQ")
    if element.VR in BULK_VRS:
        return True
    if element.VR == "SQ":
        return any(is_bulk(e) for item in element.value for e in item)
    return False


@HANDLERS.register
class DeidentifyHandler(HandlerBase):
    """Strips the header of identity per the Basic Profile and the configured options, runs the
    residual-identity check (its count goes into the report) and marks the object derived; its
    inverse step restores the carried attributes."""

    name: ClassVar[str] = "deidentify"
    requires: ClassVar[tuple[str, ...]] = ()
    table: ClassVar[type[Settings]] = DeidentifySettings

    @classmethod
    def from_config(cls, context: PipelineContext) -> DeidentifyHandler:
        return cls(context.shared(deidentifier))

    @classmethod
    def unprotect(cls, state: Revealing) -> None:
        _remove_protection(state.output)  # first: a restored private block may take its slot
        restore(state.output, state.identity.attributes, state.identity.complete)

    def __init__(self, deidentifier: Callable[[Dataset], int]) -> None:
        self.deidentifier = deidentifier

    def __call__(self, instance: Instance) -> None:
        instance.report["identity_residues_removed"] = self.deidentifier(instance.dataset)

    def finish(self, instance: Instance) -> None:
        """Say where the identity is, from the carriers the pipeline recorded (none: nowhere)."""
        from .pipeline import describe_carriers  # the pipeline module imports the handlers' registry

        carriers = describe_carriers(instance.protection).split("+") if instance.protection else []
        instance.dataset.DeidentificationMethod = method(carriers)
        instance.dataset.DerivationDescription = derivation(carriers)


def method(carriers: list[str]) -> str:
    """De-identification Method for an object whose identity is sealed in ``carriers``
    ("pixels", "pixels(core)", "header"; none: the identity is not kept)."""
    return f"{METHOD}; identity in {'+'.join(carriers)}" if carriers else f"{METHOD}; identity not kept"


def derivation(carriers: list[str]) -> str:
    """Derivation Description for an object whose identity is sealed in ``carriers``."""
    if not carriers:
        return f"{DERIVATION}; patient identity not kept"
    text = "stegonode: patient identity sealed into " + " and ".join(CARRIED_IN[c] for c in carriers)
    return text if any(c.startswith("pixels") for c in carriers) else text + "; pixels unchanged"


def deidentifier(context: PipelineContext) -> Callable[[Dataset], int]:
    """De-identification as ``[handlers.collect]`` and ``[handlers.deidentify]`` configure it,
    shared by collect (which gathers what it will remove) and deidentify (:meth:`PipelineContext.shared`)."""
    extra = keyword_tags(context.settings.collect.extra_attributes, "handlers.collect.extra_attributes")
    return functools.partial(deidentify, pseudonyms=context.pseudonyms, extra=extra,
                             policy=Policy.from_settings(context.settings.deidentify))


def deidentify(ds: Dataset, pseudonyms: Pseudonymizer, extra: frozenset[BaseTag] = frozenset(),
               policy: Policy = Policy()) -> int:
    """Apply the profile and ``policy``'s options to ``ds`` in place, then the residual-identity
    check, then set the de-identification attributes; the number of identity occurrences the
    residual check removed."""
    identity = Identity.of(ds)
    patient = patient_identity(ds)
    days = pseudonyms.date_offset(patient, *policy.date_shift_days) if policy.modified_dates else None
    new_uids = pseudonyms.new_uids(ds)
    _Pass(pseudonyms, extra, policy, days).apply(ds)
    removed = identity.scrub(ds, skip=(_PATIENT_ID, _PATIENT_NAME))
    for keyword, new_uid in zip(BOUND_UIDS, new_uids, strict=True):
        if str(ds.get(keyword, "") or "") or keyword in GENERATED_KEYWORDS:
            setattr(ds, keyword, new_uid)  # as the pass wrote them: the one derivation, stated
    if _PATIENT_ID in ds:
        ds.PatientID = pseudonyms.patient_id(patient)
    if _PATIENT_NAME in ds:
        ds.PatientName = pseudonyms.patient_name(patient)
    if "ImageType" in ds and ds.ImageType:
        image_type = list(ds.ImageType) if ds["ImageType"].VM > 1 else [ds.ImageType]
        ds.ImageType = ["DERIVED", *image_type[1:]]
    ds.DerivationDescription = DERIVATION
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    ds.DeidentificationMethodCodeSequence = Sequence(
        _code(value, meaning) for value, meaning in
        sorted([BASIC_CODE, *((option.code, option.meaning) for option in policy.options)])
    )
    ds.LongitudinalTemporalInformationModified = policy.temporal_information
    return removed


def _code(value: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue = value
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = meaning
    return code


# The resolved actions of :func:`action` by configuration (extra attributes, policy), kept across
# objects: resolving a tag walks the options' columns and the profile's tables for each element.
_ACTIONS: dict[tuple[frozenset[BaseTag], Policy], dict[BaseTag, str]] = {}
_MAX_CACHED_ACTIONS = 1 << 16


class _Pass:
    """One de-identification pass over a data set and, recursively, its sequence items."""

    def __init__(self, pseudonyms: Pseudonymizer, extra: frozenset[BaseTag], policy: Policy,
                 days: int | None) -> None:
        self.pseudonyms, self.extra, self.policy, self.days = pseudonyms, extra, policy, days
        self.safe_private = policy.has("retain_safe_private")
        # public tag -> action: the same for every item and every object under this configuration
        self.actions: dict[BaseTag, str] = _ACTIONS.setdefault((extra, policy), {})

    def apply(self, ds: Dataset) -> None:
        for tag in sorted(ds.keys()):
            resolved = self._private(ds, tag) if tag.is_private else self._action(tag)
            if resolved in ("K", "U", "C") and undecoded_number(ds, tag):
                continue  # numbers are kept as they are: not decoded (Contour Data holds ~10^6)
            element = ds[tag]
            if element.is_empty and not element.tag.is_private:
                continue  # nothing to hide; left as it is, so nothing needs carrying either
            if resolved not in ("K", "X"):
                element = _with_dictionary_vr(ds, element)
            if resolved == "X":
                del ds[element.tag]
            elif element.VR == "SQ" and element.tag in RECURSED:  # SR content: each item as the top level
                for item in element.value:
                    self.apply(item)
            elif resolved in ("Z", "D") and element.VR == "SQ":
                element.value = self._references(element.value)
            elif resolved == "Z":
                element.value = Sequence() if element.VR == "SQ" else None
            elif resolved == "D" and element.VR == "SQ":
                element.value = Sequence()
            elif resolved == "D":
                element.value = DUMMY.get(element.VR)
            else:  # U, K or C
                self._keep(ds, element)
        if self.safe_private:
            _drop_unused_creators(ds)

    def _action(self, tag: BaseTag) -> str:
        resolved = self.actions.get(tag)
        if resolved is None:
            resolved = action(tag, self.extra, self.policy)
            if len(self.actions) < _MAX_CACHED_ACTIONS:  # unknown tags in hostile objects: bounded
                self.actions[tag] = resolved
        return resolved

    def _keep(self, ds: Dataset, element: DataElement) -> None:
        if element.VR in ("DA", "DT") and self.days is not None and not element.is_empty:
            shifted = shift_values(element.VR, [str(v) for v in _values(element)], self.days)
            if shifted is None:
                del ds[element.tag]  # not a date this can move: it cannot be kept
            else:
                element.value = shifted if len(shifted) > 1 else shifted[0]
        elif element.VR == "AS" and not element.is_empty:  # kept ages stay legal AS values
            ages = [legal_age(str(v)) for v in _values(element)]
            if None in ages:
                del ds[element.tag]
            else:
                element.value = ages if len(ages) > 1 else ages[0]
        elif element.VR == "UI":  # U, or a kept attribute holding an instance UID
            replaced = [self.pseudonyms.uid(str(v)) if _is_instance_uid(v) else v for v in _values(element)]
            element.value = replaced if len(replaced) > 1 else (replaced[0] if replaced else element.value)
        elif element.VR == "SQ":
            for item in element.value:
                self.apply(item)

    def _references(self, items: Sequence) -> Sequence:
        """The items with the profile applied, if that leaves nothing but references (new UIDs,
        numbers, codes, dates as the profile writes them): a dummy the IOD accepts, where an
        empty sequence breaks IODs that require an item (Referenced Performed Procedure Step
        Sequence, Referenced Study Sequence). Otherwise no items."""
        cleaned = Sequence(copy.deepcopy(item) for item in items)
        for item in cleaned:
            self.apply(item)
        return cleaned if _references_only(cleaned) else Sequence()

    def _private(self, ds: Dataset, tag: BaseTag) -> str:
        """X, or K for an element of Table E.3.10-1 (and its creator) under Retain Safe Private."""
        if not self.safe_private or tag.element < 0x0010:
            return "X"
        if tag.element < 0x0100:  # a private creator: kept while its block keeps elements
            return "K" if str(ds[tag].value).strip() in _SAFE_CREATORS else "X"
        creator = ds.get((tag.group << 16) | (tag.element >> 8))
        if creator is None or (str(creator.value).strip(), tag.group, tag.element & 0xFF) not in SAFE_PRIVATE:
            return "X"
        return "K"


_REFERENCE_VRS = frozenset({"UI", "IS", "US", "UL", "CS", "DA", "TM", "DT"})


def _references_only(items: Sequence) -> bool:
    """De-identified items holding nothing but references (UIDs, with frame and segment numbers,
    codes, and dates as the profile left them)."""
    return bool(items) and all(
        any(e.VR == "UI" or e.VR == "SQ" for e in item)
        and all(e.VR in _REFERENCE_VRS or (e.VR == "SQ" and _references_only(e.value)) for e in item)
        for item in items
    )


_SAFE_CREATORS = frozenset(creator for creator, _, _ in SAFE_PRIVATE)


def _drop_unused_creators(ds: Dataset) -> None:
    """Private creators whose block kept no element go too (they would name an empty block)."""
    used = {(tag.group, tag.element >> 8) for tag in ds.keys() if tag.is_private and tag.element >= 0x0100}
    for tag in sorted(ds.keys()):
        if tag.is_private and 0x0010 <= tag.element < 0x0100 and (tag.group, tag.element) not in used:
            del ds[tag]


def _with_dictionary_vr(ds: Dataset, element: DataElement) -> DataElement:
    """``element`` as its dictionary VR says, when it arrived with another one.

    A value too long for its VR's length field arrives as UN (a 70,000-character Patient Name),
    and faulty writers use wrong VRs (a Patient Name as FL). The value replacing it must be
    written with the attribute's own VR. Only a UID's value is needed here (it is mapped); any
    other value is replaced by the caller, so it is not decoded.
    """
    if element.tag.is_private or element.VR == "SQ":
        return element
    vr = dictionary_vr(element.tag)
    if vr is None or vr == element.VR or vr in BULK_VRS or vr == "SQ":
        return element
    value = None
    if vr == "UI" and isinstance(element.value, bytes):
        parts = element.value.decode("ascii", "replace").strip("\0 ").split("\\")
        value = parts if len(parts) > 1 else parts[0]
    ds[element.tag] = DataElement(element.tag, vr, value)
    return ds[element.tag]


def _remove_protection(ds: Dataset) -> None:
    from stegonode.handlers.protection import remove_protection

    remove_protection(ds)


def restore(ds: Dataset, attributes: Dataset, complete: bool = True) -> None:
    """Undo :func:`deidentify` on ``ds`` with the carried original ``attributes``; when they are
    not all of them (``complete`` False), the object stays marked as de-identified.

    A Study or Series Instance UID the attributes do not carry was generated (:data:`GENERATED`):
    without Retain UIDs every UID de-identification writes differs from the original's, so an
    original one is always carried. Under Retain UIDs an uncarried UID is the retained original
    and stays (a generated one too: the attributes cannot tell them apart)."""
    if complete:
        generated = () if _retained_uids(ds) else [tag for tag in GENERATED if tag not in attributes]
        for tag in (*ADDED, *generated):
            if tag in ds:
                del ds[tag]
    for element in attributes:
        if element.tag != Tag("SpecificCharacterSet"):
            ds[element.tag] = element


def _retained_uids(ds: Dataset) -> bool:
    """De-identified under the Retain UIDs Option, as its De-identification Method Code Sequence says."""
    code = OPTIONS["retain_uids"].code
    return any(str(item.get("CodeValue", "")) == code for item in ds.get("DeidentificationMethodCodeSequence", []))
