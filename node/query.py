"""C-FIND and retrieve matching over the index (PS3.4 C.2.2.2 and C.6).

Query levels PATIENT, STUDY, SERIES and IMAGE in the Patient Root and Study Root models.
Matching: universal (empty or ``*``), single value, wildcard (``*`` and ``?``), range on dates
and times (``A-B``, ``-B``, ``A-``) and UID lists (``A\\B``). Keys the index does not hold are
returned empty, as the standard allows. Everything answered comes from the de-identified
objects: pseudonymous IDs and new UIDs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.datadict import dictionary_VR
from pydicom.multival import MultiValue

from stegonode.codecs.errors import InputError

from .index import Index

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
UNIQUE_KEY = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
LEVEL_ATTRIBUTES = {
    "PATIENT": ("PatientID", "PatientName", "PatientBirthDate", "PatientSex"),
    "STUDY": ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
              "StudyDescription", "ReferringPhysicianName"),
    "SERIES": ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription"),
    "IMAGE": ("SOPInstanceUID", "SOPClassUID", "InstanceNumber"),
}
# Keys computed over the instances below a matched entity (PS3.4 C.3).
AGGREGATES = {
    "NumberOfPatientRelatedStudies": ("PATIENT", "COUNT(DISTINCT StudyInstanceUID)"),
    "NumberOfPatientRelatedSeries": ("PATIENT", "COUNT(DISTINCT SeriesInstanceUID)"),
    "NumberOfPatientRelatedInstances": ("PATIENT", "COUNT(*)"),
    "NumberOfStudyRelatedSeries": ("STUDY", "COUNT(DISTINCT SeriesInstanceUID)"),
    "NumberOfStudyRelatedInstances": ("STUDY", "COUNT(*)"),
    "ModalitiesInStudy": ("STUDY", "GROUP_CONCAT(DISTINCT Modality)"),
    "SOPClassesInStudy": ("STUDY", "GROUP_CONCAT(DISTINCT SOPClassUID)"),
    "NumberOfSeriesRelatedInstances": ("SERIES", "COUNT(*)"),
}
# Multi-valued study keys match when any instance of the study matches.
_STUDY_SET_KEYS = {"ModalitiesInStudy": "Modality", "SOPClassesInStudy": "SOPClassUID"}
_NOT_MATCHED = {"QueryRetrieveLevel", "SpecificCharacterSet", "QueryRetrieveView"}


@dataclass(frozen=True)
class Query:
    """An identifier turned into SQL conditions at one level."""

    level: str
    conditions: tuple[str, ...]
    parameters: tuple[str, ...]
    requested: tuple[str, ...]

    @property
    def where(self) -> str:
        return " AND ".join(self.conditions) or "1"


def parse(identifier: Dataset, model_root: str) -> Query:
    """Translate a C-FIND/C-GET/C-MOVE identifier; InputError names what is wrong."""
    level = str(identifier.get("QueryRetrieveLevel", "")).upper()
    if level not in LEVELS:
        raise InputError(f"QueryRetrieveLevel {level!r}: use one of {', '.join(LEVELS)}")
    if model_root == "STUDY" and level == "PATIENT":
        raise InputError("QueryRetrieveLevel PATIENT is not part of the Study Root model")
    known = _attributes_up_to(level)
    conditions: list[str] = []
    parameters: list[str] = []
    requested = []
    for element in identifier:
        keyword = element.keyword
        if not keyword or keyword in _NOT_MATCHED or element.VR == "SQ":
            continue
        requested.append(keyword)
        value = _text(element.value)
        if keyword in _STUDY_SET_KEYS and value:
            column = _STUDY_SET_KEYS[keyword]
            condition, values = _match(column, value, "CS")
            conditions.append(
                f"StudyInstanceUID IN (SELECT StudyInstanceUID FROM instances WHERE {condition})"
            )
            parameters.extend(values)
        elif keyword in known and value:
            condition, values = _match(keyword, value, dictionary_VR(element.tag))
            if condition:
                conditions.append(condition)
                parameters.extend(values)
    return Query(level, tuple(conditions), tuple(parameters), tuple(requested))


def _text(value: object) -> str:
    """An identifier value as its DICOM string: multiple values joined by backslashes."""
    if value is None:
        return ""
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def _attributes_up_to(level: str) -> set[str]:
    depth = LEVELS.index(level)
    return {keyword for lvl in LEVELS[: depth + 1] for keyword in LEVEL_ATTRIBUTES[lvl]}


def _match(column: str, value: str, vr: str) -> tuple[str, list[str]]:
    """One matching condition on ``column`` for a non-empty identifier ``value``."""
    quoted = f'"{column}"'
    if vr == "UI":
        uids = [uid.strip() for uid in value.split("\\") if uid.strip()]
        return f"{quoted} IN ({', '.join('?' * len(uids))})", uids
    if vr in ("DA", "TM", "DT") and "-" in value:
        low, _, high = value.partition("-")
        parts, values = [], []
        if low:
            parts.append(f"{quoted} >= ?")
            values.append(low)
        if high:
            parts.append(f"{quoted} <= ?")
            values.append(high if vr == "DA" else high + "\uffff")
        return " AND ".join(parts) or "1", values
    if set(value) <= {"*"}:
        return "", []
    if "*" in value or "?" in value:
        pattern = value.replace("[", "[[]")  # GLOB's only other special character
        return f"{quoted} GLOB ?", [pattern]
    return f"{quoted} = ?", [value]


def find(index: Index, query: Query) -> Iterator[Dataset]:
    """One response identifier per matching entity at the query's level."""
    level = query.level
    depth = LEVELS.index(level)
    columns = [kw for lvl in LEVELS[: depth + 1] for kw in LEVEL_ATTRIBUTES[lvl]]
    aggregates = {
        keyword: expression
        for keyword, (at_level, expression) in AGGREGATES.items()
        if at_level == level and keyword in query.requested
    }
    select = [f'MIN("{c}") AS "{c}"' for c in columns]
    select += [f'{expression} AS "{keyword}"' for keyword, expression in aggregates.items()]
    sql = (
        f"SELECT {', '.join(select)} FROM instances WHERE {query.where} "
        f'GROUP BY "{UNIQUE_KEY[level]}" ORDER BY MIN(stored_at)'
    )
    for row in index.select(sql, query.parameters):
        yield _response(query, row)


def _response(query: Query, row) -> Dataset:
    response = Dataset()
    response.QueryRetrieveLevel = query.level
    available = set(row.keys())
    for keyword in dict.fromkeys((*query.requested, UNIQUE_KEY[query.level])):
        value = row[keyword] if keyword in available else None
        if keyword in ("ModalitiesInStudy", "SOPClassesInStudy") and value:
            value = value.split(",")
        setattr(response, keyword, value if value not in (None, "") else None)
    return response


@dataclass(frozen=True)
class Instance:
    """A stored protected object to retrieve: its file and its (new) identity."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str


def instances(index: Index, query: Query) -> list[Instance]:
    """Every stored instance under the entities the identifier matches, series by series."""
    rows = index.select(
        f"SELECT path, SOPClassUID, SOPInstanceUID FROM instances WHERE {query.where} "
        "ORDER BY SeriesInstanceUID, stored_at",
        query.parameters,
    )
    return [Instance(row["path"], row["SOPClassUID"], row["SOPInstanceUID"]) for row in rows]
