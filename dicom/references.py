"""References between the objects of a study, at every depth, and whether they still resolve.

De-identification replaces every UID that is not a well-known DICOM UID, wherever it is (every
sequence, every SR content item), with the keyed mapping of :mod:`stegonode.dicom.pseudonyms`:
the same original UID always becomes the same new one, on any receiver and whichever object
arrives first. So a reference (a Referenced SOP Instance UID deep in an RT structure set, a SEG's
source images, an SR's evidence) names, after protection, the protected object it named before.
This module finds those references and checks them: :func:`uid_elements` walks a data set,
:func:`resolve` tells which references name an object of a set of objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.uid import UID_dictionary

# What an object is known by: a reference resolves when it names one of these of some object.
IDENTITIES = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")
# The object's own identity (top level) and its SOP class: not references.
OWN = frozenset({"SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID",
                 "SOPClassUID", "MediaStorageSOPInstanceUID", "MediaStorageSOPClassUID"})
# SR UIDREF content items and other UIDs that identify something rather than refer to an
# object (a device, a tracked finding, an irradiation event): counted apart.
IDENTIFIERS = frozenset({"UID", "TrackingUID", "DimensionOrganizationUID", "ConcatenationUID",
                         "DeviceUID", "IrradiationEventUID", "ObservationUID", "InstanceCreatorUID",
                         "DoseReferenceUID", "SynchronizationFrameOfReferenceUID"})


@dataclass(frozen=True)
class UidElement:
    """One UID value in a data set: where (``ReferencedSeriesSequence[0].SeriesInstanceUID``),
    its keyword, and the value."""

    path: str
    keyword: str
    uid: str

    @property
    def well_known(self) -> bool:
        """A DICOM-defined UID (SOP class, transfer syntax, coding scheme...): never replaced."""
        return self.uid in UID_dictionary

    @property
    def is_reference(self) -> bool:
        """A reference to another object (not the object's own identity, not an identifier,
        not a private element: de-identification removes those)."""
        own = "." not in self.path and self.keyword in OWN
        return bool(self.keyword) and not own and not self.well_known and self.keyword not in IDENTIFIERS


def uid_elements(ds: Dataset, prefix: str = "") -> Iterator[UidElement]:
    """Every UID-valued element (VR UI) of ``ds``, at every depth of every sequence."""
    for element in ds:
        name = element.keyword or str(element.tag)
        if element.VR == "SQ":
            for index, item in enumerate(element.value or []):
                yield from uid_elements(item, f"{prefix}{name}[{index}].")
        elif element.VR == "UI" and element.value:
            values = element.value if element.VM > 1 else [element.value]
            for value in values:
                yield UidElement(prefix + name, element.keyword, str(value))


def identities(objects: Iterable[Dataset]) -> set[str]:
    """The UIDs that name the ``objects``: their SOP instance, series, study, frame of reference."""
    return {str(ds.get(keyword)) for ds in objects for keyword in IDENTITIES if ds.get(keyword)}


@dataclass(frozen=True)
class Resolution:
    """The references of one object: those that name an object of the set, those that do not."""

    resolved: list[UidElement]
    unresolved: list[UidElement]

    @property
    def total(self) -> int:
        return len(self.resolved) + len(self.unresolved)


def resolve(ds: Dataset, known: set[str]) -> Resolution:
    """Which references of ``ds`` name an object whose identity is in ``known``."""
    references = [element for element in uid_elements(ds) if element.is_reference]
    return Resolution([r for r in references if r.uid in known], [r for r in references if r.uid not in known])
