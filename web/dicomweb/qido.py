"""QIDO-RS (PS3.18 10.6): studies, series and instances searches over the node's index.

The search becomes a C-FIND identifier and runs through the node's own matching
(:mod:`stegonode.node.query`): universal, single value, wildcard (``*``, ``?``), date and time
ranges, UID lists. ``fuzzymatching=true`` makes person-name keys match case-insensitively, each
word of the value at the start of a name component. ``includefield`` (keywords, tags or ``all``),
``limit`` and ``offset``. Answers are application/dicom+json. Attributes the index does not hold
come back empty, as C-FIND does.
"""

from __future__ import annotations

import dataclasses
import json
import re

from flask import Response, request
from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.uid import UID
from sqlalchemy import ColumnElement, and_, func, or_, true
from werkzeug.exceptions import BadRequest, NotAcceptable

from stegonode.node import query
from stegonode.node.index import instances as table

from . import bp, record
from .wado import index, retrieve_url

STUDY_ROOT_FIND = UID("1.2.840.10008.5.1.4.1.2.2.1")  # the C-FIND a QIDO-RS search stands for
RETURNED = {  # PS3.18 Tables 10.6.3-3 to -5, as far as the index holds them
    "STUDY": ("StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy", "ReferringPhysicianName",
              "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
              "StudyDescription", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
    "SERIES": ("StudyInstanceUID", "Modality", "SeriesDescription", "SeriesInstanceUID", "SeriesNumber",
               "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID", "InstanceNumber"),
}
PAGING = {"limit", "offset", "fuzzymatching", "includefield"}
MAX_LIMIT = 100_000
_WORD = re.compile(r"[^\s^,=]+")


def _keyword(name: str) -> str:
    """A query parameter's attribute: a keyword or eight hex digits (BadRequest otherwise)."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        keyword = keyword_for_tag(int(name, 16))
    else:
        keyword = name if tag_for_keyword(name) is not None else ""
    if not keyword:
        raise BadRequest(f"{name!r} is not a DICOM attribute keyword or tag (nested keys are not supported)")
    return keyword


def _count(name: str, default: int | None) -> int | None:
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) > MAX_LIMIT:
        raise BadRequest(f"{name}={value!r}: a whole number from 0 to {MAX_LIMIT}")
    return int(value)


def _identifier(level: str, fixed: dict[str, str]) -> tuple[Dataset, dict[str, str]]:
    """The C-FIND identifier of this request, and the person-name keys to match fuzzily."""
    fuzzy = request.args.get("fuzzymatching", "false").lower() == "true"
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    returned = list(RETURNED[level])
    for field in request.args.getlist("includefield"):
        for name in filter(None, (part.strip() for part in field.split(","))):
            returned += _everything(level) if name == "all" else [_keyword(name)]
    for keyword in returned:
        setattr(identifier, keyword, None)
    names: dict[str, str] = {}
    for name, value in [*request.args.items(multi=True), *fixed.items()]:
        if name in PAGING:
            continue
        keyword = _keyword(name)
        if dictionary_VR(keyword) == "SQ":
            raise BadRequest(f"{keyword}: sequence matching is not supported")
        if fuzzy and dictionary_VR(keyword) == "PN" and value and not set(value) <= {"*"}:
            names[keyword] = value
            setattr(identifier, keyword, None)
        else:
            setattr(identifier, keyword, value)
    return identifier, names


def _everything(level: str) -> list[str]:
    depth = query.LEVELS.index(level)
    keys = [kw for lvl in query.LEVELS[: depth + 1] for kw in query.LEVEL_ATTRIBUTES[lvl]]
    return keys + [kw for kw, (at, _) in query.AGGREGATES.items() if at == level]


def _fuzzy(keyword: str, value: str) -> ColumnElement[bool]:
    """Each word of ``value`` starts a component of the name, ignoring case."""
    column = func.lower(table.c[keyword])
    words = [w.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
             for w in _WORD.findall(value)]
    conditions = [or_(column.like(f"{w}%", escape="\\"), column.like(f"%^{w}%", escape="\\"),
                      column.like(f"% {w}%", escape="\\")) for w in words]
    return and_(true(), *conditions)


def search(level: str, **fixed: str) -> Response:
    """One QIDO-RS search at ``level`` (STUDY, SERIES, IMAGE), ``fixed`` keys from the path."""
    accept = request.accept_mimetypes
    if request.headers.get("Accept") and not any(
            accept[mime] for mime in ("application/dicom+json", "application/json")):
        raise NotAcceptable("QIDO-RS answers application/dicom+json only")
    identifier, names = _identifier(level, fixed)
    keys = audit_keys(identifier, names)
    try:
        parsed = query.parse(identifier, "STUDY")
    except Exception:
        record("query", "failure", sop_class=STUDY_ROOT_FIND, query_keys=keys, detail="QIDO-RS: search refused")
        raise
    if names:
        parsed = dataclasses.replace(
            parsed, conditions=(*parsed.conditions, *(_fuzzy(k, v) for k, v in names.items())))
    limit, offset = _count("limit", None), _count("offset", 0)
    answers = []
    for found in query.find(index(), parsed, limit, offset or 0):
        del found.QueryRetrieveLevel
        found.RetrieveURL = retrieve_url(found.get("StudyInstanceUID"), found.get("SeriesInstanceUID")
                                         if level != "STUDY" else None,
                                         found.get("SOPInstanceUID") if level == "IMAGE" else None)
        answers.append(found.to_json_dict())
    record("query", sop_class=STUDY_ROOT_FIND, query_keys=keys,
           detail=f"QIDO-RS {level.lower()} search, {len(answers)} matches")
    return Response(json.dumps(answers), 200, mimetype="application/dicom+json")


def audit_keys(identifier: Dataset, names: dict[str, str]) -> tuple[str, ...]:
    """The keywords the search matched on (values never)."""
    matched = {e.keyword for e in identifier if e.keyword != "QueryRetrieveLevel" and not e.is_empty}
    return tuple(sorted(matched | set(names)))


@bp.get("/studies")
def studies() -> Response:
    return search("STUDY")


@bp.get("/series")
def all_series() -> Response:
    return search("SERIES")


@bp.get("/studies/<study>/series")
def study_series(study: str) -> Response:
    return search("SERIES", StudyInstanceUID=study)


@bp.get("/instances")
def all_instances() -> Response:
    return search("IMAGE")


@bp.get("/studies/<study>/instances")
def study_instances(study: str) -> Response:
    return search("IMAGE", StudyInstanceUID=study)


@bp.get("/studies/<study>/series/<series>/instances")
def series_instances(study: str, series: str) -> Response:
    return search("IMAGE", StudyInstanceUID=study, SeriesInstanceUID=series)
