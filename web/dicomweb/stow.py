"""STOW-RS (PS3.18 10.5): instances stored through the node's C-STORE path.

Each part of a ``multipart/related; type="application/dicom"`` request goes to
:meth:`stegonode.node.ingest.Ingest.accept`, as a C-STORE's data set does: what the pipeline
cannot protect (Burned In Annotation YES, a malformed object, ...) is refused at once, and the
response's Failed SOP Sequence carries the DICOM status (Failure Reason) and the node's reason
(Error Comment, as in the C-STORE response); an accepted instance is durably in the inbox with
its job queued before the response names it, so an acknowledged store is never lost, and the
node's workers protect it as they protect a C-STORE. The Referenced SOP Sequence names each by
the UIDs it is stored under (the node's pseudonymous UIDs) with its Retrieve URL.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import Counter
from typing import Any

import pydicom
from flask import Response, current_app, request
from pydicom import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from stegonode.node.ingest import CANNOT_UNDERSTAND, Ingest
from stegonode.node.service import build_ingest

from . import bp, record
from .wado import index, media_type, retrieve_url

STUDY_MISMATCH = 0xA900  # the instance is not of the study the request names (PS3.18 10.5.3)
_lock = threading.Lock()


def ingest() -> Ingest:
    """The console's C-STORE path, built once as the node builds its own (same keys, policy and
    size limit); the workers of the node sharing the index find its jobs."""
    app = current_app
    with _lock:
        if "stegonode.stow" not in app.extensions:
            state = app.extensions["stegonode"]
            config, keys = state.config, state.node_keys()
            app.extensions["stegonode.stow"] = build_ingest(config, keys, state.storage(), index(), lambda: None)
        return app.extensions["stegonode.stow"]


def parts(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """The (content type, body) parts of a multipart/related request."""
    mime, params = media_type(content_type)
    if mime != "multipart/related" or "boundary" not in params:
        raise UnsupportedMediaType('STOW-RS takes multipart/related; type="application/dicom"')
    if params.get("type", "application/dicom").lower() != "application/dicom":
        raise UnsupportedMediaType("STOW-RS here takes application/dicom parts only (no JSON or XML metadata)")
    delimiter = b"--" + params["boundary"].encode()
    found = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.partition(b"\r\n\r\n")
        headers = dict(re.findall(rb"(?im)^([A-Za-z-]+):\s*(.*?)\s*$", head))
        headers = {k.lower(): v for k, v in headers.items()}
        found.append((headers.get(b"content-type", b"application/dicom").decode("latin-1"),
                      data[:-2] if data.endswith(b"\r\n") else data))
    return found


def _identity(data: bytes) -> tuple[str, str, str, str]:
    """SOP Class, SOP Instance, Study and Series Instance UIDs of a part ("" where unreadable)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        return tuple(str(ds.get(keyword, "")) for keyword in  # type: ignore[return-value]
                     ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"))
    except Exception:  # what the node makes of it is Ingest's answer
        return "", "", "", ""


def _failed(sop_class: str, instance: str, status: int, reason: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class or None
    item.ReferencedSOPInstanceUID = instance or None
    item.FailureReason = status
    item.add_new(0x00000902, "LO", reason[:64])  # Error Comment, as the C-STORE response has it
    return item


def store(study: str | None) -> Response:
    """Store every part; answer which were stored (under which UIDs) and which were refused, why."""
    accepted: list[Dataset] = []
    refused: list[Dataset] = []
    classes: Counter[str] = Counter()
    node = ingest()
    received = parts(request.get_data(cache=False), request.headers.get("Content-Type", ""))
    if not received:
        raise BadRequest("the multipart body holds no part")
    for content_type, data in received:
        sop_class, instance, part_study, part_series = _identity(data)
        if media_type(content_type)[0] != "application/dicom":
            refused.append(_failed(sop_class, instance, CANNOT_UNDERSTAND, "part is not application/dicom"))
            continue
        if study is not None and part_study != study:
            refused.append(_failed(sop_class, instance, STUDY_MISMATCH, "not of the study in the request URL"))
            continue
        status = node.accept(data, UID(sop_class), instance, "STOW-RS")
        if status.Status != 0:
            refused.append(_failed(sop_class, instance, int(status.Status), str(status.get("ErrorComment", ""))))
            continue
        pseudonym = node.pseudonyms.uid
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = pseudonym(instance)
        item.RetrieveURL = retrieve_url(pseudonym(part_study), pseudonym(part_series), pseudonym(instance))
        accepted.append(item)
        classes[sop_class] += 1
    return _answer(study, accepted, refused, classes)


def _answer(study: str | None, accepted: list[Dataset], refused: list[Dataset], classes: Counter[str]) -> Response:
    answer = Dataset()
    if study is not None and accepted:
        answer.RetrieveURL = retrieve_url(ingest().pseudonyms.uid(study))
    if accepted:
        answer.ReferencedSOPSequence = Sequence(accepted)
    if refused:
        answer.FailedSOPSequence = Sequence(refused)
    outcome = "success" if not refused else ("failure" if accepted else "serious")
    record("store", outcome, instances=tuple(str(i.ReferencedSOPInstanceUID) for i in accepted),
           sop_class=classes.most_common(1)[0][0] if classes else "",
           detail=f"STOW-RS: {len(accepted)} stored, {len(refused)} refused")
    status = 200 if not refused else (202 if accepted else 409)
    response = Response(json.dumps(answer.to_json_dict()), status, mimetype="application/dicom+json")
    for item in refused[:10]:
        response.headers.add("Warning", f'299 stegonode "{item[0x00000902].value}"')
    return response


@bp.post("/studies")
def store_instances() -> Any:
    return store(None)


@bp.post("/studies/<study>")
def store_study_instances(study: str) -> Any:
    return store(study)
