"""The studies the node stores: a search (pseudonymous patient, modality, shifted date range;
sorted, paged, in the index), a study's series and instances, an instance's image (every frame,
rendered on the server from the protected object) and its de-identified header as a tag table;
and the actions: delete (confirmed), send to a ``[[peers]]`` destination, download as a ZIP."""

from __future__ import annotations

import functools
import io
import zipfile
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file, url_for
from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement
from pydicom.uid import UID

from stegonode.errors import InputError, StegonodeError
from stegonode.node import audit, console_index
from stegonode.node.console_index import SORTS, StudyFilter
from stegonode.node.query import Instance
from stegonode.node.storage import ObjectStore, Storage

from .app import ConsoleState
from .files import audit_console
from .jobspage import sop_class_name
from .paging import UID_PATTERN, Page
from .pictures import frame_count, frame_png

bp = Blueprint("studypages", __name__)
PAGE_SIZE = 25
BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
MAX_VALUE = 160


def _state() -> ConsoleState:
    return current_app.extensions["stegonode"]


def _index():
    try:
        return _state().index()
    except StegonodeError as exc:
        abort(404, str(exc))


def _storage() -> ObjectStore:
    return _state().storage()


def _date(text: str) -> str:
    """A form date (YYYY-MM-DD) as a DICOM DA (YYYYMMDD); empty when it is not one."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").strftime("%Y%m%d")
    except ValueError:
        return ""


def _shown_date(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:8]}" if len(da) == 8 and da.isdigit() else da


@bp.app_template_filter("da")
def _da_filter(da: str) -> str:
    return _shown_date(da or "")


@bp.route("/studies")
def studies():
    form = {name: request.args.get(name, "").strip()[:64] for name in ("patient", "modality", "from", "to", "sort")}
    if form["sort"] not in SORTS:
        form["sort"] = "newest"
    page = Page.of(request.args.get("page", ""), PAGE_SIZE)
    try:
        index = _state().index()
    except StegonodeError as exc:
        return render_template("studies.html", reason=str(exc), form=form, page=page)
    where = StudyFilter(form["patient"], form["modality"], _date(form["from"]), _date(form["to"]), form["sort"])
    rows, page.total = console_index.search_studies(index, where, page.offset, page.size)
    return render_template("studies.html", reason=None, rows=rows, page=page, form=form, sorts=SORTS,
                           modalities=console_index.modalities(index))


def _uid(uid: str) -> str:
    if not UID_PATTERN.match(uid):
        abort(404, "Not a UID.")
    return uid


def _series(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    grouped: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for row in rows:
        series = grouped.setdefault(row["SeriesInstanceUID"], {
            "uid": row["SeriesInstanceUID"], "modality": row["Modality"], "number": row["SeriesNumber"],
            "description": row["SeriesDescription"], "instances": []})
        series["instances"].append(row)
    return list(grouped.values())


@bp.route("/studies/<uid>")
def study(uid: str):
    rows = console_index.study_instances(_index(), _uid(uid))
    if not rows:
        abort(404, "No stored study with this Study Instance UID.")
    peers = [peer["ae_title"] for peer in _state().config["peers"]]
    return render_template("study.html", study=rows[0], series=_series(rows), count=len(rows), peers=peers,
                           class_name=sop_class_name)


def _stored(uid: str) -> tuple[dict[str, Any], Path | bytes]:
    """The instance's row and its object: the file of the data directory, or the bytes read
    from an object store ([storage] url)."""
    row = console_index.instance_row(_index(), _uid(uid))
    if row is None:
        abort(404, "No stored instance with this SOP Instance UID.")
    storage = _storage()
    if isinstance(storage, Storage):
        path = storage.local_path(row["path"])
        if not path.is_file():
            abort(404, "No stored instance with this SOP Instance UID.")
        return row, path
    try:
        return row, storage.read(row["path"])
    except FileNotFoundError:
        abort(404, "No stored instance with this SOP Instance UID.")
    except OSError:
        abort(503, "The stored object cannot be read now (storage unavailable).")


def _source(stored: Path | bytes) -> Path | io.BytesIO:
    return io.BytesIO(stored) if isinstance(stored, bytes) else stored


def _read_header(stored: Path | bytes) -> Dataset:
    try:
        return dcmread(_source(stored), stop_before_pixels=False, defer_size=1024)
    except Exception:
        abort(404, "The stored object cannot be read.")


def _read(stored: Path | bytes) -> Dataset:
    try:
        return dcmread(_source(stored))
    except Exception:
        abort(404, "The stored object cannot be read.")


@bp.route("/instances/<uid>")
def instance(uid: str):
    row, path = _stored(uid)
    ds = _read(path)
    frames = frame_count(ds) if "PixelData" in ds else 0
    frame = request.args.get("frame", "1")
    number = int(frame) if frame.isdigit() and 1 <= int(frame) <= max(frames, 1) else 1
    study_rows = console_index.study_instances(_index(), row["StudyInstanceUID"])
    uids = [r["SOPInstanceUID"] for r in study_rows]
    position = uids.index(uid)
    return render_template(
        "instance.html", row=row, frames=frames, frame=number, class_name=sop_class_name,
        encrypted=_encrypted(ds), syntax_name=UID(row["TransferSyntaxUID"] or "").name or row["TransferSyntaxUID"],
        previous=uids[position - 1] if position else None,
        following=uids[position + 1] if position + 1 < len(uids) else None, position=position + 1, of=len(uids))


def _encrypted(ds: Dataset) -> str:
    """The cipher name when the stored pixels are encrypted (their picture is then noise)."""
    from stegonode.handlers.encrypt import read_cipher_block

    try:
        block = read_cipher_block(ds)
    except Exception:
        return ""
    return block.cipher if block is not None else ""


@bp.route("/instances/<uid>/frames/<int:number>.png")
def frame(uid: str, number: int):
    _, path = _stored(uid)
    ds = _read_header(path)
    if "PixelData" not in ds or not 1 <= number <= frame_count(ds):
        abort(404, "No such frame.")
    side = 160 if request.args.get("size") == "thumb" else 0
    try:
        if isinstance(path, bytes):  # from an object store: rendered each time
            picture = frame_png(dcmread(io.BytesIO(path)), number - 1, side)
        else:
            picture = _rendered(str(path), path.stat().st_mtime_ns, number - 1, side)
    except Exception as exc:
        abort(404, f"The frame cannot be rendered ({type(exc).__name__}).")
    return send_file(io.BytesIO(picture), mimetype="image/png")


@functools.lru_cache(maxsize=256)
def _rendered(path: str, modified_ns: int, index: int, side: int) -> bytes:
    """A frame's PNG, kept while the file is unchanged (a mammogram takes seconds to render)."""
    return frame_png(dcmread(path), index, side)


@bp.route("/instances/<uid>.png")
def thumbnail(uid: str):
    return frame(uid, 1)


def _value(element: DataElement) -> str:
    if element.VR in BINARY_VRS or element.tag == 0x7FE00010:
        length = len(element.value) if isinstance(element.value, (bytes, bytearray)) else 0
        return f"({length} bytes)"
    text = str(element.value) if element.value is not None else ""
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…"


def tag_rows(ds: Dataset, depth: int = 0) -> list[dict[str, Any]]:
    """The data set's elements, sequences' items nested (``depth``), binary values as lengths."""
    rows = []
    for element in ds:
        row = {"depth": depth, "tag": f"({element.tag.group:04X},{element.tag.element:04X})",
               "keyword": element.keyword or ("private" if element.tag.is_private else ""), "vr": element.VR}
        if element.VR == "SQ":
            rows.append({**row, "value": f"{len(element.value)} item(s)"})
            for number, item in enumerate(element.value, start=1):
                rows.append({"depth": depth + 1, "tag": "", "keyword": f"item {number}", "vr": "", "value": ""})
                rows.extend(tag_rows(item, depth + 2))
        else:
            rows.append({**row, "value": _value(element)})
    return rows


@bp.route("/instances/<uid>/tags")
def tags(uid: str):
    row, path = _stored(uid)
    ds = _read(path)
    return render_template("tags.html", row=row, meta=tag_rows(ds.file_meta), rows=tag_rows(ds))


@bp.route("/instances/<uid>.dcm")
def download(uid: str):
    row, path = _stored(uid)
    audit_console("download", studies=(row["StudyInstanceUID"],), instances=(uid,), sop_class=row["SOPClassUID"],
                  detail="stored (protected) object")
    return send_file(_source(path), mimetype="application/dicom", as_attachment=True, download_name=f"{uid}.dcm")


@bp.route("/studies/<uid>.zip")
def study_zip(uid: str):
    rows = console_index.study_instances(_index(), _uid(uid))
    if not rows:
        abort(404, "No stored study with this Study Instance UID.")
    storage, buffer = _storage(), io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for row in rows:
            try:
                archive.writestr(f"{row['SeriesInstanceUID']}/{row['SOPInstanceUID']}.dcm", storage.read(row["path"]))
            except FileNotFoundError:
                continue  # deleted meanwhile
    audit_console("download", studies=(uid,), instances=tuple(r["SOPInstanceUID"] for r in rows),
                  sop_class=rows[0]["SOPClassUID"], detail=f"study as ZIP, {len(rows)} stored (protected) object(s)")
    buffer.seek(0)
    return send_file(buffer, mimetype="application/zip", as_attachment=True, download_name=f"{uid}.zip")


# -- delete ------------------------------------------------------------------------------------

def _level() -> str:
    level = request.values.get("level", "")
    if level not in console_index.LEVELS:
        raise InputError("level: study, series or instance")
    return level


@bp.route("/delete", methods=["GET", "POST"])
def delete():
    level, uid = _level(), _uid(request.values.get("uid", ""))
    rows = console_index.objects_at(_index(), level, uid)
    if not rows:
        abort(404, f"No stored {level} with this UID.")
    if request.method == "GET":
        return render_template("delete.html", level=level, uid=uid, count=len(rows),
                               series=len({r["SeriesInstanceUID"] for r in rows}))
    gone = console_index.delete_objects(_index(), _storage(), rows)
    audit_console("delete", studies=tuple(dict.fromkeys(r["StudyInstanceUID"] for r in rows)),
                  instances=tuple(r["SOPInstanceUID"] for r in rows), sop_class=rows[0]["SOPClassUID"],
                  detail=f"{level} deleted, {gone} stored object(s)")
    study_uid = rows[0]["StudyInstanceUID"]
    if level != "study" and console_index.study_instances(_index(), study_uid):
        return redirect(url_for("studypages.study", uid=study_uid, deleted=gone), code=303)
    return redirect(url_for("studypages.studies", deleted=gone), code=303)


# -- send --------------------------------------------------------------------------------------

@bp.route("/studies/<uid>/send", methods=["POST"])
def send(uid: str):
    state = _state()
    peers = {peer["ae_title"]: peer for peer in state.config["peers"]}
    peer = peers.get(request.form.get("peer", ""))
    if peer is None:
        raise InputError("choose a destination of [[peers]] in node.toml")
    rows = console_index.study_instances(_index(), _uid(uid))
    if not rows:
        abort(404, "No stored study with this Study Instance UID.")
    storage = _storage()
    objects = [(Instance(r["path"], r["SOPClassUID"], r["SOPInstanceUID"], r["TransferSyntaxUID"]), r["path"])
               for r in rows]
    user = "console" if state.login.mode != "none" else "console (no login)"
    address = request.remote_addr or "unknown"
    sop_class = rows[0]["SOPClassUID"]
    instances = tuple(r["SOPInstanceUID"] for r in rows)

    def sent(outcome) -> None:
        state.audit.record(audit.Event(
            "send", "success" if not outcome.failed else ("failure" if outcome.sent else "serious"), user, address,
            peer=peer["ae_title"], peer_address=str(peer["host"]), studies=(uid,), instances=instances,
            sop_class=sop_class, detail=f"C-STORE, {outcome.sent} sent, {outcome.failed} failed"))

    job = state.sends.submit(state.config["node"]["ae_title"], peer, uid, objects, storage, sent)
    return redirect(url_for("studypages.send_progress", send_id=job.id), code=303)


def _send(send_id: str):
    job = _state().sends.get(send_id) if send_id.replace("-", "").replace("_", "").isalnum() else None
    if job is None:
        abort(404, "No such send.")
    return job


@bp.route("/sends/<send_id>")
def send_progress(send_id: str):
    return render_template("send.html", send=_send(send_id))


@bp.route("/sends/<send_id>.json")
def send_state(send_id: str):
    job = _send(send_id)
    return {"total": job.total, "finished": job.finished, "sent": job.sent, "failed": job.failed, "done": job.done}
