"""Walking a data set without decoding what no step reads.

pydicom keeps an element as read (a raw element) until its value is asked for, and decoding is
costly per value: an RT structure set holds about 800,000 Decimal String numbers in its Contour
Data, each decoded into a Python object (10 s of the protect step on the shared machine).
De-identification, the residual-identity check and the carried-attribute comparison never need a
number's value (numbers are kept as they are: no identity, date or UID is ever a number), so
they skip numbers still undecoded and compare undecoded elements by their bytes.
"""

from __future__ import annotations

import copy

from pydicom import DataElement, Dataset
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.filewriter import correct_ambiguous_vr_element
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

# Value representations of numbers, text or binary: never an identity, a date or a UID.
NUMBER_VRS = frozenset({"DS", "IS", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "OF", "OD", "OL", "OV"})


def undecoded_number(ds: Dataset, tag: BaseTag) -> bool:
    """Whether the element ``tag`` of ``ds`` is still undecoded and holds numbers: its VR as
    read (the dictionary's for implicit VR) and the dictionary's, if the attribute is known."""
    element = ds.get_item(tag)
    if not isinstance(element, RawDataElement):
        return False
    known = None
    if not tag.is_private:
        try:
            known = dictionary_VR(tag)
        except KeyError:
            pass
    if known is not None and not set(known.split(" or ")) <= NUMBER_VRS:
        return False  # the attribute is no number, whatever VR it arrived with
    return (element.VR or known) in NUMBER_VRS or (element.VR is None and known is not None)


def same_element(a: DataElement, b: DataElement) -> bool:
    """``a == b`` (sequences item by item, at every depth), decoding only elements whose
    bytes differ."""
    if a.VR == "SQ" and b.VR == "SQ":
        return len(a.value) == len(b.value) and all(same_dataset(x, y) for x, y in zip(a.value, b.value, strict=True))
    return a == b


def same_dataset(a: Dataset, b: Dataset) -> bool:
    """``a == b`` as :func:`same_element` compares."""
    if set(a.keys()) != set(b.keys()):
        return False
    for tag in a.keys():
        x, y = a.get_item(tag), b.get_item(tag)
        if isinstance(x, RawDataElement) and isinstance(y, RawDataElement) \
                and (x.VR, x.value, x.is_little_endian, x.is_implicit_VR) == (y.VR, y.value, y.is_little_endian, y.is_implicit_VR):
            continue
        if not same_element(a[tag], b[tag]):
            return False
    return True


def label_explicit(ds: Dataset) -> None:
    """Make an Implicit VR Little Endian data set (at every depth) writable as Explicit VR
    without decoding it: each undecoded element gets its dictionary VR (its bytes are the same
    in both encodings); private and ambiguous elements are left to pydicom, which decodes them.
    pydicom's writer otherwise decodes every element of a data set read in another encoding."""
    relabel = ds.original_encoding == (True, True) and ds.original_character_set == ds._character_set
    for tag in list(ds.keys()):
        element = ds.get_item(tag)
        if isinstance(element, RawDataElement):
            vr = element.VR or (None if tag.is_private else dictionary_vr(tag))
            if relabel and vr is not None and vr != "SQ" and element.VR is None and element.is_little_endian:
                ds[tag] = element._replace(VR=vr, is_implicit_VR=False)
                continue
            if vr != "SQ" and not (relabel and vr is None):
                continue
        decoded = ds[tag]
        if decoded.VR == "SQ":
            for item in decoded.value:
                label_explicit(item)
        elif relabel and " or " in decoded.VR:
            correct_ambiguous_vr_element(decoded, ds, True)
    if relabel:
        ds.set_original_encoding(False, True, ds._character_set)


def dictionary_vr(tag: BaseTag) -> str | None:
    """The attribute's one VR in the data dictionary; None if unknown or ambiguous (US or SS)."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return None if " or " in vr else vr


def copy_element(element: DataElement) -> DataElement:
    """A copy that de-identification may change without touching ``element``: it assigns new
    values to elements (a shallow copy suffices) and recurses into sequence items, copied item
    by item the same way (undecoded elements, immutable, are shared). What ``copy.deepcopy``
    gives, at a fraction of its cost on a large SR content tree or structure set."""
    copied = copy.copy(element)
    if element.VR == "SQ" and isinstance(element.value, Sequence):
        items = Sequence([copy_dataset(item) for item in element.value])
        items.is_undefined_length = getattr(element.value, "is_undefined_length", False)
        copied._value = items
    return copied


def copy_dataset(ds: Dataset) -> Dataset:
    """A copy of ``ds`` as :func:`copy_element` copies (its reading state, encoding and
    character set included)."""
    copied = copy.copy(ds)
    copied._dict = {tag: _copy_item(ds.get_item(tag)) for tag in ds.keys()}
    copied._private_blocks = {}
    copied._pixel_array, copied._pixel_id = None, {}
    return copied


def _copy_item(item: DataElement | RawDataElement) -> DataElement | RawDataElement:
    return item if isinstance(item, RawDataElement) else copy_element(item)
