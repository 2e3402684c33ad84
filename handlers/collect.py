"""Collect: the identifying attributes of an instance, and their compact serialization.

What is collected is exactly what de-identification changes or removes: the handler
de-identifies a copy of the header (pixel data left out) and keeps every top-level element whose
value differs, with its original value, so reveal can restore the header. Bulk binary data
(icons, overlays, curves) and private attributes are carried by the header carrier only: they
would not fit in a QR code. What the options keep of them (safe private attributes, overlays
under Clean Graphics) and de-identification changed is carried too.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from typing import TYPE_CHECKING, ClassVar

from pydantic import field_validator
from pydicom import DataElement, Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.tag import Tag

from stegonode.codecs.settings import Names, Settings
from stegonode.dicom.lazy import copy_element, label_explicit, same_element
from stegonode.errors import MessageNotFoundError

from .base import HandlerBase, Instance, keyword_tags
from .deidentify import ADDED, BULK_VRS, deidentifier, is_bulk
from .registry import HANDLERS

if TYPE_CHECKING:
    from .pipeline import PipelineContext

PIXEL_DATA = Tag("PixelData")


class CollectSettings(Settings):
    """``[handlers.collect]``: DICOM keywords collected and sealed beyond the profile's list."""

    extra_attributes: Names = ()

    @field_validator("extra_attributes")
    @classmethod
    def _keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        keyword_tags(value, "handlers.collect.extra_attributes")
        return value


@HANDLERS.register
class CollectHandler(HandlerBase):
    """Fills ``instance.attributes`` with the original identifying attributes."""

    name: ClassVar[str] = "collect"
    requires: ClassVar[tuple[str, ...]] = ()
    table: ClassVar[type[Settings]] = CollectSettings

    @classmethod
    def from_config(cls, context: PipelineContext) -> CollectHandler:
        return cls(context.shared(deidentifier))

    def __init__(self, deidentifier: Callable[[Dataset], object]) -> None:
        self.deidentifier = deidentifier

    def __call__(self, instance: Instance) -> None:
        instance.attributes = collect(instance.dataset, self.deidentifier)


def collect(ds: Dataset, deidentifier: Callable[[Dataset], object], bulk: bool = True) -> Dataset:
    """The carried attributes, plus Specific Character Set so text decodes as in the original.

    ``bulk``: bulk and private data too. The header carrier, which has no QR code's size limit,
    carries them (so reveal restores the header exactly, every element of every sequence
    included); the pixel carrier carries :func:`without_bulk` of them."""
    header = Dataset()
    for element in ds:
        if element.tag != PIXEL_DATA:
            header.add(element)
    clean = Dataset()
    for element in header:
        clean.add(_copy(element))
    deidentifier(clean)
    carried = Dataset()
    if "SpecificCharacterSet" in ds:
        carried.SpecificCharacterSet = ds.SpecificCharacterSet
    for element in header:
        kept = element.tag in clean
        # What de-identification sets is removed by restore: carried even where it was the same
        # (reveal removes the marks unless the original had them).
        changed = not kept or not same_element(clean[element.tag], element) or element.tag in ADDED
        # Without ``bulk``, bulk data is carried only when de-identification kept it and changed
        # something in it (a safe private or overlay text cleaned, a date in a kept private
        # sequence moved).
        if changed and (bulk or not is_bulk(element) or (kept and element.VR not in BULK_VRS)):
            carried.add(_copy(element))
    return carried


def without_bulk(attributes: Dataset) -> Dataset:
    """The carried attributes less bulk and private data: what the pixel carrier holds."""
    if not any(is_bulk(element) for element in attributes):
        return attributes
    subset = Dataset()
    for element in attributes:
        if not is_bulk(element):
            subset.add(element)
    return subset


def _copy(element: DataElement) -> DataElement:
    """A copy that de-identification may change without touching ``element`` (see
    :func:`.lazy.copy_element`)."""
    return copy_element(element)


def serialize(attributes: Dataset) -> bytes:
    """Explicit VR Little Endian encoding of the attributes (exact, sequences included)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    label_explicit(attributes)  # undecoded elements are written as they are
    write_dataset(fp, attributes)
    return fp.getvalue()


def parse(data: bytes) -> Dataset:
    """Inverse of :func:`serialize`."""
    try:
        attributes = read_dataset(BytesIO(data), is_implicit_VR=False, is_little_endian=True)
        for element in attributes:  # decode now, so damage shows here and not later
            _ = element.value
    except Exception:
        raise MessageNotFoundError("recovered payload is not a valid attribute set") from None
    return attributes


def described(attributes: Dataset) -> dict[str, object]:
    """Keyword -> value as in the original header (JSON-ready); charset omitted."""
    return {
        element.keyword or str(element.tag): _plain(element)
        for element in attributes
        if element.keyword != "SpecificCharacterSet"
    }


def _plain(element) -> object:
    if element.VR == "SQ":
        return [described(item) for item in element.value]
    value = element.value
    if value is None:
        return ""
    if element.VM > 1:
        return [str(v) for v in value]
    return value if isinstance(value, (int, float)) else str(value)
