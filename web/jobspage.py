"""The jobs page: every object the node received, refused (the DICOM status and the node's
reason), quarantined (why) or stored, and failed negotiations, newest first, searchable by time,
caller, SOP class and outcome; quarantined objects can be queued again or discarded."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from pydicom.uid import UID

from stegonode.errors import StegonodeError
from stegonode.node import console_index
from stegonode.node.console_index import JobFilter

from .app import ConsoleState
from .files import audit_console
from .paging import UID_PATTERN, Page

bp = Blueprint("jobspage", __name__)
PAGE_SIZE = 50


def _state() -> ConsoleState:
    return current_app.extensions["stegonode"]


def _day(text: str, end: bool = False) -> float:
    """A YYYY-MM-DD date (the form's date field) as Unix seconds, local time; 0 when empty or
    not a date. ``end``: the end of that day."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return 0.0
    return (day + timedelta(days=1) if end else day).timestamp()


def sop_class_name(uid: str) -> str:
    """The SOP class's name (pydicom's dictionary), or the UID itself when unknown."""
    if not uid:
        return ""
    name = UID(uid).name
    return name if name and name != uid else uid


@bp.route("/jobs")
def jobs():
    form = {name: request.args.get(name, "").strip()[:64] for name in ("since", "until", "caller", "sop_class", "outcome")}
    if form["outcome"] not in console_index.OUTCOMES:
        form["outcome"] = ""
    where = JobFilter(_day(form["since"]), _day(form["until"], end=True), form["caller"], form["sop_class"],
                      form["outcome"])
    page = Page.of(request.args.get("page", ""), PAGE_SIZE)
    try:
        index = _state().index()
        rows, total = console_index.job_rows(index, _state().storage(), where, page.offset, page.size)
        callers, reason = console_index.callers(index), None
    except StegonodeError as exc:
        rows, total, callers, reason = [], 0, [], str(exc)
    page.total = total
    return render_template("jobs.html", rows=rows, page=page, form=form, reason=reason, callers=callers,
                           outcomes=console_index.OUTCOMES, class_name=sop_class_name, when=_when,
                           sop_classes=_sop_classes())


def _sop_classes() -> list[tuple[str, str]]:
    """The storage SOP classes for the filter, by name."""
    from pynetdicom import AllStoragePresentationContexts

    uids = {str(context.abstract_syntax) for context in AllStoragePresentationContexts}
    return sorted(((uid, sop_class_name(uid)) for uid in uids), key=lambda pair: pair[1])


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


@bp.route("/jobs/<uid>/retry", methods=["POST"])
def retry(uid: str):
    state = _state()
    if not UID_PATTERN.match(uid) or not console_index.retry(state.index(), state.storage(), uid):
        abort(404, "No quarantined object with this SOP Instance UID.")
    return redirect(url_for("jobspage.jobs", outcome="queued"), code=303)


@bp.route("/jobs/<uid>/discard", methods=["POST"])
def discard(uid: str):
    state = _state()
    if not UID_PATTERN.match(uid) or not console_index.discard(state.index(), state.storage(), uid):
        abort(404, "No quarantined object with this SOP Instance UID.")
    audit_console("delete", instances=(uid,), detail="quarantined object discarded")
    return redirect(url_for("jobspage.jobs", outcome="quarantined"), code=303)
