"""The residual-identity check: the de-identified object searched for the identity it had.

Attribute lists miss identity typed where no list looks (a name in a series description, an ID
in a private text attribute, a birth date in an SR text item). At protect time the node holds the
exact identity values it seals, so after the profile has run, every remaining value at every
depth is searched for them and each occurrence is removed (text keeps the rest of its words; a
date or binary value that holds one is emptied or removed) and counted. Clean Descriptors, Clean
Structured Content and the other "C" actions keep their free text and rely on this to take the
identity out of it.

Searched for: each part of the patient's names (Patient's Name, Other Patient Names, Patient's
Birth Name, in every PN component group; parts split at ^ = , and spaces, also the parts of
hyphenated ones) in any case and order, as whole words; Patient ID, Other Patient IDs (and the
IDs of Other Patient IDs Sequence), Medical Record Locator and Accession Number as whole words;
the birth date in the common written forms (19610312, 1961-03-12, 12/03/1961, 3/12/61,
12.03.1961, 12 March 1961, Mar 12, 1961, ...). Name parts under 2 characters and IDs under 3
are not searched for (they would match everywhere). Numbers (IS, DS and binary numeric VRs),
code strings (CS), UIDs (replaced anyway) and ages are not searched.
"""

from __future__ import annotations

import copy
import datetime
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydicom import DataElement, Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from stegonode.dicom.lazy import undecoded_number

NAME_KEYWORDS = ("PatientName", "OtherPatientNames", "PatientBirthName")
ID_KEYWORDS = ("PatientID", "OtherPatientIDs", "MedicalRecordLocator", "AccessionNumber")
TEXT_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
DATE_VRS = frozenset({"DA", "DT"})
# Private text without a VR (implicit VR files) reads as bytes; binary values the options keep
# (Maker Note, safe private blobs) may hold text. Pixel data and overlay planes are not text.
BYTES_VRS = frozenset({"OB", "UN"})
BULK_GROUPS = frozenset({0x7FE0, *range(0x6000, 0x6100, 2)})
MIN_NAME_PART, MIN_ID = 2, 3
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_PART = re.compile(r"[\^=,\s]+")
_WORD_BEFORE, _WORD_AFTER = r"(?<![^\W_])", r"(?![^\W_])"  # not next to a letter or digit


@dataclass(frozen=True)
class Identity:
    """The identity values of one object, as compiled patterns."""

    words: re.Pattern[str] | None  # name parts and IDs
    dates: re.Pattern[str] | None  # the birth date in its written forms

    @classmethod
    def of(cls, ds: Dataset) -> Identity:
        """Read from the original header (before de-identification)."""
        parts: set[str] = set()
        for keyword in NAME_KEYWORDS:
            for name in _strings(ds.get(keyword)):
                parts |= name_parts(name)
        ids = {value.strip() for keyword in ID_KEYWORDS for value in _strings(ds.get(keyword))}
        for item in ds.get("OtherPatientIDsSequence") or []:
            ids |= {value.strip() for value in _strings(item.get("PatientID"))}
        words = {p for p in parts if len(p) >= MIN_NAME_PART} | {i for i in ids if len(i) >= MIN_ID}
        birth = next(iter(_strings(ds.get("PatientBirthDate"))), "").strip()
        return cls(_word_pattern(words), _date_pattern(birth))

    @classmethod
    def deferred(cls, ds: Dataset) -> Callable[[], Identity]:
        """:meth:`of` ``ds`` as it is now, compiled on the first call (for a check that seldom
        needs it): the few attributes it reads are copied now, since ``ds`` is de-identified
        meanwhile."""
        snapshot = Dataset()
        for keyword in (*NAME_KEYWORDS, *ID_KEYWORDS, "OtherPatientIDsSequence", "PatientBirthDate"):
            if keyword in ds:
                snapshot[keyword] = copy.deepcopy(ds[keyword])
        return functools.cache(lambda: cls.of(snapshot))

    def scrub(self, ds: Dataset, skip: Iterable[BaseTag] = ()) -> int:
        """Remove every occurrence from ``ds`` at every depth (``skip``: top-level tags left
        alone); the number of occurrences removed."""
        if self.words is None and self.dates is None:
            return 0
        return self._scrub(ds, frozenset(skip))

    def _scrub(self, ds: Dataset, skip: frozenset[BaseTag]) -> int:
        removed = 0
        for tag in sorted(ds.keys()):
            if tag in skip or undecoded_number(ds, tag):
                continue  # numbers hold no identity: not decoded
            element = ds[tag]
            if element.is_empty:
                continue
            if element.VR == "SQ":
                removed += sum(self._scrub(item, frozenset()) for item in element.value)
            elif element.VR in TEXT_VRS:
                removed += self._text(element)
            elif element.VR in DATE_VRS:
                removed += self._date(element)
            elif element.VR in BYTES_VRS and element.tag.group not in BULK_GROUPS:
                hits = self._count(bytes(element.value).decode("latin-1"))
                if hits:
                    del ds[element.tag]
                    removed += hits
        return removed

    def found_in(self, data: bytes) -> bool:
        """Whether ``data`` (a binary block read as Latin-1 text: a codestream's marker segment)
        holds one of the identity values."""
        return self._count(data.decode("latin-1")) > 0

    def _count(self, text: str) -> int:
        return sum(len(p.findall(text)) for p in (self.words, self.dates) if p is not None)

    def _clean(self, text: str) -> tuple[str, int]:
        hits = 0
        for pattern in (self.dates, self.words):
            if pattern is not None:
                text, n = pattern.subn("", text)
                hits += n
        return text, hits

    def _text(self, element: DataElement) -> int:
        values, hits = [], 0
        for value in _strings(element):
            cleaned, n = self._clean(value)
            if n:
                cleaned = _tidy(cleaned, element.VR)
            values.append(cleaned)
            hits += n
        if hits:
            element.value = values if element.VM > 1 else values[0]
        return hits

    def _date(self, element: DataElement) -> int:
        hits = sum(self._count(value) for value in _strings(element))
        if hits:
            element.value = None
        return hits


def name_parts(name: str) -> set[str]:
    """The parts of a person name (DICOM PN or free text), hyphenated ones also split."""
    parts = {p.strip(".") for p in _PART.split(name) if p.strip(".")}
    return parts | {piece for part in parts if "-" in part for piece in part.split("-") if piece}


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, DataElement):
        value = value.value
        if value is None:
            return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _word_pattern(words: set[str]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = []
    for word in sorted(words, key=len, reverse=True):
        escaped = re.escape(word)
        # Scripts without spaces between words (CJK) have no word boundaries to ask for.
        ascii_like = all(ord(ch) < 0x2E80 for ch in word)
        alternatives.append(f"{_WORD_BEFORE}{escaped}{_WORD_AFTER}" if ascii_like else escaped)
    return re.compile("|".join(alternatives), re.IGNORECASE)


def date_forms(day: datetime.date) -> set[str]:
    """How a date is commonly written (numeric orders with separators, two-digit years, month
    names and their abbreviations)."""
    y, m, d = day.year, day.month, day.day
    forms = {f"{y:04d}{m:02d}{d:02d}"}
    for sep in ("-", "/", ".", " "):
        for mm, dd in ((f"{m:02d}", f"{d:02d}"), (str(m), str(d))):
            forms |= {f"{y:04d}{sep}{mm}{sep}{dd}"}
            for yy in (f"{y:04d}", f"{y % 100:02d}"):
                forms |= {f"{dd}{sep}{mm}{sep}{yy}", f"{mm}{sep}{dd}{sep}{yy}"}
    for month in (_MONTHS[m - 1], _MONTHS[m - 1][:3]):
        for dd in (str(d), f"{d:02d}", f"{d}{_ordinal(d)}"):
            forms |= {f"{dd} {month} {y}", f"{dd}-{month}-{y}", f"{dd} {month}, {y}", f"{dd}{month}{y}",
                      f"{month} {dd}, {y}", f"{month} {dd} {y}", f"{dd}. {month} {y}"}
    return forms


def _ordinal(day: int) -> str:
    return "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _date_pattern(birth: str) -> re.Pattern[str] | None:
    digits = birth.replace(".", "")
    try:
        day = datetime.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None
    alternatives = sorted((re.escape(form) for form in date_forms(day)), key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(alternatives) + r")(?![\w])", re.IGNORECASE)


def _tidy(text: str, vr: str) -> str:
    """What is left of a value once occurrences are cut out: no runs of spaces, no dangling
    separators; a person name keeps its component structure but not empty trailing parts."""
    if vr == "PN":
        groups = []
        for group in text.split("="):
            components = [" ".join(c.split()) for c in group.split("^")]
            groups.append("^".join(components).rstrip("^"))
        return "=".join(groups).rstrip("=")
    text = re.sub(r"(?<=\s)[,;:/]+(?=\s)", "", text)  # a separator whose words were both cut out
    return re.sub(r"[ \t]{2,}", " ", text).strip(" ,;:/")
