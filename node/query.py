"""C-FIND and retrieve matching over the index (PS3.4 C.2.2.2 and C.6).

Query levels PATIENT, STUDY, SERIES and IMAGE in the Patient Root and Study Root models.
Matching: universal (empty or ``*``), single value, wildcard (``*`` and ``?``), range on dates
and times (``A-B``, ``-B``, ``A-``) and UID lists (``A\\B``). Keys the index does not hold are
returned empty, as the standard allows. Everything answered comes from the de-identified
objects: pseudonymous IDs and new UIDs. Conditions are SQLAlchemy Core expressions, the same
for SQLite and PostgreSQL; the two constructs whose SQL differs (wildcards, a list of distinct
values) are compiled per dialect below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydicom import Dataset
from pydicom.datadict import dictionary_VR
from pydicom.multival import MultiValue
from sqlalchemy import Boolean, ColumnElement, Table, Text, and_, distinct, func, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from stegonode.errors import InputError

from .index import Index
from .index import instances as table

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
    "IMAGE": ("SOPInstanceUID", "SOPClassUID", "InstanceNumber", "AvailableTransferSyntaxUID"),
}
# Keys answered from an index column of another name: the transfer syntax an instance is stored
# in (PS3.4 C.6.1.1.5: what the node can send it in without conversion; uncompressed too).
COLUMNS = {"AvailableTransferSyntaxUID": "TransferSyntaxUID"}


def _column(keyword: str) -> ColumnElement[Any]:
    return table.c[COLUMNS.get(keyword, keyword)]


class wildcard(FunctionElement):
    """``column`` matches a DICOM wildcard pattern (``*`` any run, ``?`` one character),
    case-sensitively: GLOB on SQLite, LIKE (in the "C" collation) on PostgreSQL. Arguments:
    the column, the pattern as GLOB pattern, the pattern as LIKE pattern."""

    type = Boolean()
    inherit_cache = True


@compiles(wildcard, "sqlite")
def _wildcard_sqlite(element: wildcard, compiler: Any, **kw: Any) -> str:
    column, glob, _ = element.clauses
    return f"{compiler.process(column, **kw)} GLOB {compiler.process(glob, **kw)}"


@compiles(wildcard, "postgresql")
def _wildcard_postgresql(element: wildcard, compiler: Any, **kw: Any) -> str:
    column, _, like = element.clauses
    return f"{compiler.process(column, **kw)} LIKE {compiler.process(like, **kw)} ESCAPE '\\'"


def _wildcard(column: ColumnElement[str], value: str) -> wildcard:
    glob = value.replace("[", "[[]")  # GLOB's only other special character
    like = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return wildcard(column, glob, like.replace("*", "%").replace("?", "_"))


class distinct_values(FunctionElement):
    """The distinct values of a column over a group, joined by commas."""

    type = Text()
    inherit_cache = True


@compiles(distinct_values, "sqlite")
def _distinct_values_sqlite(element: distinct_values, compiler: Any, **kw: Any) -> str:
    return f"GROUP_CONCAT(DISTINCT {compiler.process(element.clauses, **kw)})"


@compiles(distinct_values, "postgresql")
def _distinct_values_postgresql(element: distinct_values, compiler: Any, **kw: Any) -> str:
    return f"STRING_AGG(DISTINCT {compiler.process(element.clauses, **kw)}, ',')"


# Keys computed over the instances below a matched entity (PS3.4 C.3).
def _COUNT_ALL(table: Table) -> ColumnElement[Any]:  # noqa: N802 (a table of such functions)
    return func.count()


AGGREGATES: dict[str, tuple[str, Callable[[Table], ColumnElement[Any]]]] = {
    "NumberOfPatientRelatedStudies": ("PATIENT", lambda t: func.count(distinct(t.c.StudyInstanceUID))),
    "NumberOfPatientRelatedSeries": ("PATIENT", lambda t: func.count(distinct(t.c.SeriesInstanceUID))),
    "NumberOfPatientRelatedInstances": ("PATIENT", _COUNT_ALL),
    "NumberOfStudyRelatedSeries": ("STUDY", lambda t: func.count(distinct(t.c.SeriesInstanceUID))),
    "NumberOfStudyRelatedInstances": ("STUDY", _COUNT_ALL),
    "ModalitiesInStudy": ("STUDY", lambda t: distinct_values(t.c.Modality)),
    "SOPClassesInStudy": ("STUDY", lambda t: distinct_values(t.c.SOPClassUID)),
    "NumberOfSeriesRelatedInstances": ("SERIES", _COUNT_ALL),
}
# Multi-valued study keys match when any instance of the study matches.
_STUDY_SET_KEYS = {"ModalitiesInStudy": "Modality", "SOPClassesInStudy": "SOPClassUID"}
_NOT_MATCHED = {"QueryRetrieveLevel", "SpecificCharacterSet", "QueryRetrieveView"}


@dataclass(frozen=True)
class Query:
    """An identifier turned into SQL conditions at one level."""

    level: str
    conditions: tuple[ColumnElement[bool], ...]
    requested: tuple[str, ...]

    @property
    def where(self) -> ColumnElement[bool]:
        return and_(true(), *self.conditions)


def parse(identifier: Dataset, model_root: str) -> Query:
    """Translate a C-FIND/C-GET/C-MOVE identifier; InputError names what is wrong."""
    level = str(identifier.get("QueryRetrieveLevel", "")).upper()
    if level not in LEVELS:
        raise InputError(f"QueryRetrieveLevel {level!r}: use one of {', '.join(LEVELS)}")
    if model_root == "STUDY" and level == "PATIENT":
        raise InputError("QueryRetrieveLevel PATIENT is not part of the Study Root model")
    known = _attributes_up_to(level)
    conditions: list[ColumnElement[bool]] = []
    requested = []
    for element in identifier:
        keyword = element.keyword
        if not keyword or keyword in _NOT_MATCHED or element.VR == "SQ":
            continue
        requested.append(keyword)
        value = _text(element.value)
        if keyword in _STUDY_SET_KEYS and value:
            inner = table.alias("member")
            condition = _match(inner.c[_STUDY_SET_KEYS[keyword]], value, "CS")
            if condition is not None:
                members = select(inner.c.StudyInstanceUID).where(condition)
                conditions.append(table.c.StudyInstanceUID.in_(members))
        elif keyword in known and value:
            condition = _match(_column(keyword), value, dictionary_VR(element.tag))
            if condition is not None:
                conditions.append(condition)
    return Query(level, tuple(conditions), tuple(requested))


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


def _match(column: ColumnElement[str], value: str, vr: str) -> ColumnElement[bool] | None:
    """The matching condition on ``column`` for a non-empty identifier ``value`` (None: all)."""
    if vr == "UI":
        return column.in_([uid.strip() for uid in value.split("\\") if uid.strip()])
    if vr in ("DA", "TM", "DT") and "-" in value:
        low, _, high = value.partition("-")
        parts = []
        if low:
            parts.append(column >= low)
        if high:
            parts.append(column <= (high if vr == "DA" else high + "\uffff"))
        return and_(true(), *parts)
    if set(value) <= {"*"}:
        return None
    if "*" in value or "?" in value:
        return _wildcard(column, value)
    return column == value


def find(index: Index, query: Query, limit: int | None = None, offset: int = 0) -> Iterator[Dataset]:
    """One response identifier per matching entity at the query's level (the first ``limit``
    after ``offset`` of them, oldest first: QIDO-RS paging)."""
    level = query.level
    depth = LEVELS.index(level)
    columns = [kw for lvl in LEVELS[: depth + 1] for kw in LEVEL_ATTRIBUTES[lvl]]
    selected = [func.min(_column(c)).label(c) for c in columns]
    selected += [
        expression(table).label(keyword)
        for keyword, (at_level, expression) in AGGREGATES.items()
        if at_level == level and keyword in query.requested
    ]
    key = table.c[UNIQUE_KEY[level]]
    where = query.where
    if limit is not None or offset:
        # The page's entities first (their keys only), then their attributes and counts:
        # aggregating every match to keep a page of them costs seconds on a large index.
        page = (select(key).where(where).group_by(key).order_by(func.min(table.c.stored_at))
                .limit(limit).offset(offset or None))
        where = and_(where, key.in_(page))
    statement = select(*selected).where(where).group_by(key).order_by(func.min(table.c.stored_at))
    for row in index.select(statement):
        yield _response(query, row)


def _response(query: Query, row) -> Dataset:
    response = Dataset()
    response.QueryRetrieveLevel = query.level
    for keyword in dict.fromkeys((*query.requested, UNIQUE_KEY[query.level])):
        value = row.get(keyword)
        if keyword in ("ModalitiesInStudy", "SOPClassesInStudy") and value:
            value = value.split(",")
        setattr(response, keyword, value if value not in (None, "") else None)
    return response


@dataclass(frozen=True)
class Instance:
    """A stored protected object to retrieve: its storage key and its (new) identity."""

    key: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str = ""  # as stored


def instances(index: Index, query: Query) -> list[Instance]:
    """Every stored instance under the entities the identifier matches, series by series."""
    rows = index.select(
        select(table.c.path, table.c.SOPClassUID, table.c.SOPInstanceUID, table.c.TransferSyntaxUID)
        .where(query.where).order_by(table.c.SeriesInstanceUID, table.c.stored_at)
    )
    return [Instance(row["path"], row["SOPClassUID"], row["SOPInstanceUID"], row["TransferSyntaxUID"])
            for row in rows]
