"""What the console reads from and changes in the index: the jobs listing (every object received,
refused, quarantined or stored, and failed negotiations), the studies search, retry and discard
of quarantined objects, and deletion of stored objects.

Refusals are recorded by the node's SCP (:func:`record_refusal`): the stage (a C-STORE or the
association's negotiation), the caller, the SOP class, the new (pseudonymous) SOP Instance UID,
the DICOM status and the node's one-line reason (the Error Comment it answered, which never
quotes a value of the object). Nothing else of a refused object is kept: the sender still holds
it and was told why.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom import dcmread
from sqlalchemy import (
    Column,
    Float,
    Integer,
    Table,
    Text,
    and_,
    case,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Select, Subquery

from .index import Index, instances, jobs, metadata
from .storage import ObjectStore

log = logging.getLogger("stegonode.console")

KEPT_REFUSALS = 10000
refusals = Table(
    "refusals", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("stage", Text, nullable=False),
    Column("calling_ae_title", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("sop_class_uid", Text, nullable=False),
    Column("sop_instance_uid", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("reason", Text, nullable=False),
)
object_classes = Table(  # the SOP class of a quarantined object, read once from its file
    "object_classes", metadata,
    Column("sop_instance_uid", Text, primary_key=True),
    Column("sop_class_uid", Text, nullable=False),
)
# The jobs page's outcomes: what a row says, and the job states behind each.
OUTCOMES = ("refused", "negotiation failed", "quarantined", "failed", "queued", "stored", "deleted")
JOB_STATES = {"quarantined": ("quarantined",), "failed": ("failed",), "queued": ("queued", "processing"),
              "stored": ("done",), "deleted": ("done",)}  # deleted: done, and its stored object deleted since


def record_refusal(index: Index, stage: str, calling_ae_title: str, address: str, sop_class_uid: str,
                   sop_instance_uid: str, status: int, reason: str) -> None:
    """Keep one refusal (only the newest :data:`KEPT_REFUSALS`); never raises: a refusal that
    cannot be recorded is logged, and the node answers the caller all the same."""
    try:
        with index._transaction() as db:
            db.execute(refusals.insert().values(
                at=time.time(), stage=stage, calling_ae_title=calling_ae_title.strip(), address=address,
                sop_class_uid=sop_class_uid, sop_instance_uid=sop_instance_uid, status=status,
                reason=" ".join(reason.split())[:200]))
            newest = select(func.max(refusals.c.id)).scalar_subquery()
            db.execute(refusals.delete().where(refusals.c.id <= newest - KEPT_REFUSALS))
    except SQLAlchemyError as exc:
        log.error("refusal from %s not recorded: index unavailable (%s)", calling_ae_title.strip(),
                  type(exc).__name__)


def store_refused(index: Index, event: Any, pseudonym: Callable[[str], str], status: Any) -> None:
    """The SCP's hook: a C-STORE answered with a failure ``status`` (a status Dataset); the
    object is named by its new UID (``pseudonym`` of the received one)."""
    requestor = event.assoc.requestor
    record_refusal(index, "C-STORE", str(requestor.ae_title), str(requestor.address),
                   str(event.request.AffectedSOPClassUID or ""),
                   pseudonym(str(event.request.AffectedSOPInstanceUID or "")), int(status.Status),
                   str(getattr(status, "reason", "") or status.get("ErrorComment", "") or "refused"))


def negotiation_failed(index: Index, assoc: Any, calling_ae_title: str, reason: str) -> None:
    """The SCP's hook: an association rejected, or accepted with no presentation context."""
    record_refusal(index, "association", calling_ae_title, str(assoc.requestor.address), "", "", 0, reason)


def rejected_contexts(assoc: Any) -> str | None:
    """Why an established association can do nothing (every proposed presentation context
    rejected: which abstract syntaxes, and why), or None when one was accepted."""
    if assoc.accepted_contexts:
        return None
    reasons = {0x01: "user rejection", 0x02: "no reason given", 0x03: "SOP class not supported",
               0x04: "transfer syntax not supported"}
    proposed = sorted({f"{getattr(context.abstract_syntax, 'name', context.abstract_syntax)}: "
                       f"{reasons.get(context.result, 'rejected')}" for context in assoc.rejected_contexts})
    return "no presentation context accepted (" + "; ".join(proposed[:4]) + \
        (f"; {len(proposed) - 4} more" if len(proposed) > 4 else "") + ")"


@dataclass(frozen=True)
class JobFilter:
    """The jobs page's search: since/until (Unix seconds, 0: open), caller (AE title), SOP class
    UID, outcome (one of :data:`OUTCOMES`, empty: all)."""

    since: float = 0.0
    until: float = 0.0
    caller: str = ""
    sop_class: str = ""
    outcome: str = ""


@dataclass
class JobRow:
    at: float
    outcome: str
    caller: str
    address: str
    sop_class: str
    uid: str
    status: int | None
    reason: str
    stage: str = ""


def _fill_object_classes(index: Index, storage: ObjectStore) -> None:
    """Read the SOP class of every quarantined object whose class is not known yet (its file's
    header only), so the jobs page can filter them in SQL."""
    with index.engine.connect() as db:
        missing = db.execute(
            select(jobs.c.sop_instance_uid, jobs.c.token)
            .where(jobs.c.state == "quarantined",
                   jobs.c.sop_instance_uid.not_in(select(object_classes.c.sop_instance_uid)))
        ).all()
    found = []
    for uid, token in missing:
        try:
            header = dcmread(io.BytesIO(storage.read(storage.key("quarantine", token))), stop_before_pixels=True,
                             specific_tags=["SOPClassUID"], force=True)
            found.append({"sop_instance_uid": uid, "sop_class_uid": str(header.get("SOPClassUID", "") or "")})
        except Exception:  # an unreadable file: its class stays unknown
            found.append({"sop_instance_uid": uid, "sop_class_uid": ""})
    if found:
        with index._transaction() as db:
            db.execute(object_classes.delete().where(
                object_classes.c.sop_instance_uid.in_([row["sop_instance_uid"] for row in found])))
            db.execute(object_classes.insert(), found)


def _refusal_rows(where: JobFilter) -> Select[Any]:
    outcome = case((refusals.c.stage == "C-STORE", literal("refused")), else_=literal("negotiation failed"))
    statement = select(
        refusals.c.at.label("at"), outcome.label("outcome"), refusals.c.calling_ae_title.label("caller"),
        refusals.c.address.label("address"), refusals.c.sop_class_uid.label("sop_class"),
        refusals.c.sop_instance_uid.label("uid"), refusals.c.status.label("status"),
        refusals.c.reason.label("reason"), refusals.c.stage.label("stage"))
    conditions = _time_conditions(refusals.c.at, where)
    if where.caller:
        conditions.append(refusals.c.calling_ae_title == where.caller)
    if where.sop_class:
        conditions.append(refusals.c.sop_class_uid == where.sop_class)
    if where.outcome == "refused":
        conditions.append(refusals.c.stage == "C-STORE")
    elif where.outcome == "negotiation failed":
        conditions.append(refusals.c.stage != "C-STORE")
    return statement.where(and_(*conditions)) if conditions else statement


def _job_rows(where: JobFilter) -> Select[Any]:
    sop_class = func.coalesce(instances.c.SOPClassUID, object_classes.c.sop_class_uid, literal(""))
    outcome = case(
        (and_(jobs.c.state == "done", instances.c.SOPInstanceUID.is_(None)), literal("deleted")),
        (jobs.c.state == "done", literal("stored")), (jobs.c.state == "processing", literal("queued")),
        else_=jobs.c.state)
    statement = select(
        jobs.c.received_at.label("at"), outcome.label("outcome"),
        func.coalesce(jobs.c.calling_ae_title, literal("")).label("caller"), literal("").label("address"),
        sop_class.label("sop_class"), jobs.c.sop_instance_uid.label("uid"), null().label("status"),
        func.coalesce(jobs.c.reason, literal("")).label("reason"), literal("").label("stage"),
    ).select_from(
        jobs.outerjoin(instances, instances.c.SOPInstanceUID == jobs.c.sop_instance_uid)
        .outerjoin(object_classes, object_classes.c.sop_instance_uid == jobs.c.sop_instance_uid))
    conditions = _time_conditions(jobs.c.received_at, where)
    if where.caller:
        conditions.append(jobs.c.calling_ae_title == where.caller)
    if where.sop_class:
        conditions.append(sop_class == where.sop_class)
    if where.outcome in JOB_STATES:
        conditions.append(jobs.c.state.in_(JOB_STATES[where.outcome]))
    if where.outcome in ("stored", "deleted"):
        stored = instances.c.SOPInstanceUID.is_not(None)
        conditions.append(stored if where.outcome == "stored" else ~stored)
    return statement.where(and_(*conditions)) if conditions else statement


def _time_conditions(column: Any, where: JobFilter) -> list[Any]:
    conditions = []
    if where.since:
        conditions.append(column >= where.since)
    if where.until:
        conditions.append(column < where.until)
    return conditions


def job_rows(index: Index, storage: ObjectStore, where: JobFilter, offset: int, limit: int) -> tuple[list[JobRow], int]:
    """A page of the jobs listing, newest first, and how many rows match in all."""
    _fill_object_classes(index, storage)
    parts: list[Select[Any]] = []
    if where.outcome in ("", "refused", "negotiation failed"):
        parts.append(_refusal_rows(where))
    if where.outcome in ("", *JOB_STATES):
        parts.append(_job_rows(where))
    if not parts:
        return [], 0
    combined: Subquery = (union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery())
    with index.engine.connect() as db:
        total = db.execute(select(func.count()).select_from(combined)).scalar_one()
        rows = db.execute(select(combined).order_by(combined.c.at.desc(), combined.c.uid)
                          .offset(offset).limit(limit)).mappings().all()
    return [JobRow(**row) for row in rows], total


def callers(index: Index) -> list[str]:
    """Every calling AE title the jobs listing knows (for its filter)."""
    with index.engine.connect() as db:
        titles = set(db.execute(select(jobs.c.calling_ae_title).distinct()).scalars())
        titles |= set(db.execute(select(refusals.c.calling_ae_title).distinct()).scalars())
    return sorted(title for title in titles if title)


# -- quarantine: retry and discard ------------------------------------------------------------

def _quarantined_token(index: Index, uid: str) -> str | None:
    with index.engine.connect() as db:
        return db.execute(select(jobs.c.token).where(jobs.c.sop_instance_uid == uid,
                                                     jobs.c.state == "quarantined")).scalar()


def retry(index: Index, storage: ObjectStore, uid: str) -> bool:
    """Queue a quarantined object again (its file back to the inbox, its attempts from zero);
    False if there is no quarantined object with this (new) SOP Instance UID."""
    token = _quarantined_token(index, uid)
    if token is None:
        return False
    with contextlib.suppress(FileNotFoundError):  # gone already: the job alone goes back
        storage.relocate("quarantine", token, "inbox", token)
    with index._transaction() as db:
        moved = db.execute(update(jobs).where(jobs.c.sop_instance_uid == uid, jobs.c.state == "quarantined")
                           .values(state="queued", attempts=0, reason=None, not_before=0, holder=None,
                                   lease_until=None)).rowcount
    return bool(moved)


def discard(index: Index, storage: ObjectStore, uid: str) -> bool:
    """Delete a quarantined object: its file and its job; False if there is none."""
    token = _quarantined_token(index, uid)
    if token is None:
        return False
    with index._transaction() as db:
        gone = db.execute(delete(jobs).where(jobs.c.sop_instance_uid == uid, jobs.c.state == "quarantined")).rowcount
        db.execute(delete(object_classes).where(object_classes.c.sop_instance_uid == uid))
    storage.delete(storage.key("quarantine", token))
    return bool(gone)


# -- studies -----------------------------------------------------------------------------------

SORTS = {
    "newest": "study date, newest first",
    "oldest": "study date, oldest first",
    "patient": "pseudonymous patient",
    "received": "last stored first",
}


@dataclass(frozen=True)
class StudyFilter:
    """The studies search: a pseudonymous patient (ID or name, part of it), a modality, a range
    of (shifted) study dates as YYYYMMDD, the sort (:data:`SORTS`)."""

    patient: str = ""
    modality: str = ""
    date_from: str = ""
    date_to: str = ""
    sort: str = "newest"


@dataclass
class StudyRow:
    uid: str
    patient_id: str
    patient_name: str
    date: str
    description: str
    modalities: str
    series: int
    instances: int
    first_instance: str
    stored_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_studies(index: Index, where: StudyFilter, offset: int, limit: int) -> tuple[list[StudyRow], int]:
    """A page of studies matching ``where``, and how many match in all (indexed, server-side).

    The page's study UIDs come first, from the study-level columns alone (the index on study date
    and UID answers the date orders without reading the table), then the page's 25 studies are
    summed up (series, instances, modalities)."""
    c = instances.c
    conditions = []
    if where.patient:
        pattern = _like(where.patient)
        conditions.append(or_(c.PatientID.like(pattern, escape="\\"), c.PatientName.like(pattern, escape="\\")))
    if where.date_from:
        conditions.append(c.StudyDate >= where.date_from)
    if where.date_to:
        conditions.append(c.StudyDate <= where.date_to)
    if where.modality:  # a study matches when one of its series has the modality
        conditions.append(c.StudyInstanceUID.in_(select(c.StudyInstanceUID).where(c.Modality == where.modality)))
    if conditions:  # the matching studies once (one pass over the table), then ordered by the index
        matching = select(c.StudyInstanceUID).where(*conditions).distinct().cte("matching").prefix_with("MATERIALIZED")
        conditions = [c.StudyInstanceUID.in_(select(matching.c.StudyInstanceUID))]
    sort = where.sort if where.sort in SORTS else "newest"
    if sort == "received":
        page = select(c.StudyInstanceUID).where(*conditions).group_by(c.StudyInstanceUID) \
            .order_by(func.max(c.stored_at).desc(), c.StudyInstanceUID)
    elif sort == "patient":
        page = select(c.PatientID, c.StudyDate, c.StudyInstanceUID).where(*conditions).distinct() \
            .order_by(c.PatientID, c.StudyDate.desc(), c.StudyInstanceUID)
    else:
        date = c.StudyDate.desc() if sort == "newest" else c.StudyDate
        page = select(c.StudyDate, c.StudyInstanceUID).where(*conditions).distinct() \
            .order_by(date, c.StudyInstanceUID.desc() if sort == "newest" else c.StudyInstanceUID)
    summary = select(
        c.StudyInstanceUID.label("uid"), func.max(c.PatientID).label("patient_id"),
        func.max(c.PatientName).label("patient_name"), func.max(c.StudyDate).label("date"),
        func.max(c.StudyDescription).label("description"),
        func.count(func.distinct(c.SeriesInstanceUID)).label("series"), func.count().label("instances"),
        func.min(c.SOPInstanceUID).label("first_instance"), func.max(c.stored_at).label("stored_at"),
    )
    with index.engine.connect() as db:
        total = db.execute(select(func.count(func.distinct(c.StudyInstanceUID))).where(*conditions)).scalar_one()
        uids = list(dict.fromkeys(row.StudyInstanceUID for row in db.execute(page.offset(offset).limit(limit))))
        rows = {row["uid"]: row for row in db.execute(
            summary.where(c.StudyInstanceUID.in_(uids)).group_by(c.StudyInstanceUID)).mappings()}
        modalities: dict[str, set[str]] = {}
        for uid, modality in db.execute(select(c.StudyInstanceUID, c.Modality).distinct()
                                        .where(c.StudyInstanceUID.in_(uids))):
            modalities.setdefault(uid, set()).add(modality)
    return [StudyRow(**rows[uid], modalities=", ".join(sorted(m for m in modalities.get(uid, ()) if m)))
            for uid in uids if uid in rows], total


def modalities(index: Index) -> list[str]:
    with index.engine.connect() as db:
        return sorted(m for m in db.execute(select(instances.c.Modality).distinct()).scalars() if m)


def study_instances(index: Index, study_uid: str) -> list[dict[str, Any]]:
    """The instances of one study (indexed attributes, storage key, carriers), in series and
    instance order."""
    c = instances.c
    statement = select(*instances.c).where(c.StudyInstanceUID == study_uid).order_by(
        func.length(c.SeriesNumber), c.SeriesNumber, c.SeriesInstanceUID,
        func.length(c.InstanceNumber), c.InstanceNumber, c.SOPInstanceUID)
    return [dict(row) for row in index.select(statement)]


def instance_row(index: Index, sop_instance_uid: str) -> dict[str, Any] | None:
    rows = index.select(select(*instances.c).where(instances.c.SOPInstanceUID == sop_instance_uid))
    return dict(rows[0]) if rows else None


LEVELS = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID", "instance": "SOPInstanceUID"}


def objects_at(index: Index, level: str, uid: str) -> list[dict[str, Any]]:
    """The stored instances of a study, a series or one instance (UIDs, SOP class, key)."""
    column = instances.c[LEVELS[level]]
    c = instances.c
    return [dict(row) for row in index.select(
        select(c.StudyInstanceUID, c.SeriesInstanceUID, c.SOPInstanceUID, c.SOPClassUID, c.path,
               c.TransferSyntaxUID).where(column == uid))]


def delete_objects(index: Index, storage: ObjectStore, rows: Iterable[dict[str, Any]]) -> int:
    """Delete stored instances: their index rows first (C-FIND stops finding them), then their
    files; return how many rows went."""
    rows = list(rows)
    uids = [row["SOPInstanceUID"] for row in rows]
    if not uids:
        return 0
    with index._transaction() as db:
        gone = db.execute(delete(instances).where(instances.c.SOPInstanceUID.in_(uids))).rowcount
    for row in rows:
        storage.delete(row["path"])
        storage.delete(storage.key("originals", row["SOPInstanceUID"]))
    return gone
