"""The node's pages: the dashboard (queue, throughput, quarantine, associations) and the
de-identified studies of the index with thumbnails and downloads of the stored objects."""

from __future__ import annotations

import io
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from flask import Blueprint, abort, current_app, render_template, send_file

from stegonode.errors import StegonodeError
from stegonode.handlers.dicomfile import read_dicom
from stegonode.handlers.pixels import read_pixels
from stegonode.node.index import quarantine_file
from stegonode.node.storage import Storage

from .app import ConsoleState
from .files import audit_console
from .pictures import thumbnail

bp = Blueprint("nodepages", __name__)
UID = re.compile(r"^[0-9.]{1,64}$")
STUDIES_LIMIT = 5000  # instances listed on the studies page
PLOT = {"width": 600, "height": 120, "minutes": 60}


def _state() -> ConsoleState:
    return current_app.extensions["stegonode"]


def _index_or_reason():
    try:
        return _state().index(), None
    except StegonodeError as exc:
        return None, str(exc)


def _throughput_bars(per_minute: list[int]) -> list[dict[str, float]]:
    """SVG bars of the per-minute counts, oldest on the left, scaled to the busiest minute."""
    width, height = PLOT["width"], PLOT["height"]
    step = width / len(per_minute)
    top = max(max(per_minute), 1)
    bars = []
    for minute, count in enumerate(per_minute):
        h = height * count / top
        bars.append({"x": round(minute * step + 1, 1), "y": round(height - h, 1), "w": round(step - 2, 1),
                     "h": round(h, 1), "count": count, "ago": len(per_minute) - minute})
    return bars


@bp.route("/dashboard")
def dashboard():
    index, reason = _index_or_reason()
    if index is None:
        return render_template("dashboard.html", reason=reason)
    per_minute = index.processed_per_minute(PLOT["minutes"])
    storage = Storage(_state().paths.data_dir)
    return render_template(
        "dashboard.html", reason=None, counts=index.counts(), carriers=index.carriers(),
        bars=_throughput_bars(per_minute),
        plot=PLOT, last_hour=sum(per_minute),
        quarantined=[(str(quarantine_file(storage.root, job)), job["reason"]) for job in index.quarantined_jobs()],
        associations=index.recent_associations(), when=_when,
    )


@bp.route("/dashboard.json")
def dashboard_counts():
    """What ``stegonode status --json`` prints."""
    index, reason = _index_or_reason()
    if index is None:
        abort(404, reason)
    return index.counts()


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Series:
    uid: str
    modality: str
    number: str
    description: str
    instances: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Study:
    uid: str
    patient_id: str
    patient_name: str
    date: str
    description: str
    series: OrderedDict[str, Series] = field(default_factory=OrderedDict)


def _tree(rows: list[dict[str, str]]) -> list[Study]:
    studies: OrderedDict[str, Study] = OrderedDict()
    for row in rows:
        study = studies.setdefault(row["StudyInstanceUID"], Study(
            row["StudyInstanceUID"], row["PatientID"], row["PatientName"], row["StudyDate"],
            row["StudyDescription"]))
        series = study.series.setdefault(row["SeriesInstanceUID"], Series(
            row["SeriesInstanceUID"], row["Modality"], row["SeriesNumber"], row["SeriesDescription"]))
        series.instances.append(row)
    return list(studies.values())


@bp.route("/studies")
def studies():
    index, reason = _index_or_reason()
    if index is None:
        return render_template("studies.html", reason=reason)
    rows = index.stored(STUDIES_LIMIT)
    return render_template("studies.html", reason=None, studies=_tree(rows),
                           instances=len(rows), limit=STUDIES_LIMIT)


def _stored(uid: str):
    index, reason = _index_or_reason()
    if index is None:
        abort(404, reason)
    key = index.stored_key(uid) if UID.match(uid) else None
    path = Storage(_state().paths.data_dir).local_path(key) if key else None
    if path is None or not path.is_file():
        abort(404, "No stored instance with this SOP Instance UID.")
    return path


@bp.route("/studies/<uid>.dcm")
def stored_download(uid: str):
    path = _stored(uid)
    audit_console("download", instances=(uid,), detail="stored (protected) object")
    return send_file(path, mimetype="application/dicom", as_attachment=True, download_name=f"{uid}.dcm")


@bp.route("/studies/<uid>.png")
def stored_thumbnail(uid: str):
    ds = read_dicom(_stored(uid))
    return send_file(io.BytesIO(thumbnail(ds, read_pixels(ds))), mimetype="image/png")
