"""The file pages: protect, reveal, encrypt, decrypt (seed 004's upload, key, download)."""

from __future__ import annotations

import io
import json
import re
import time

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file, url_for
from werkzeug.utils import secure_filename

from stegonode.codecs import keys as keyfiles
from stegonode.dicom.dicomfile import dicom_bytes, read_dicom
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import InputError, WrongEmbeddingKeyError, WrongRecipientKeyError
from stegonode.handlers.collect import described
from stegonode.handlers.encrypt import (
    CIPHERS,
    EncryptHandler,
    cipher_report,
    decrypt_dataset,
    encrypt_dataset,
    pixel_words,
)
from stegonode.handlers.protection import read_protection
from stegonode.handlers.reveal import reveal, reveal_document
from stegonode.node import audit
from stegonode.node.config import SEGMENTER_CHOICES

from .app import ConsoleState
from .jobs import failure_reason
from .pictures import data_url, histograms

bp = Blueprint("files", __name__)
DICOM = "application/dicom"
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def audit_console(kind: str, outcome: str = "success", **fields) -> None:
    """Audit what the signed-in console user did (``fields``: stored, pseudonymous UIDs only)."""
    user = "console" if _state().login.mode != "none" else "console (no login)"
    _state().audit.record(audit.Event(kind, outcome, user, request.remote_addr or "unknown", **fields))


def _state() -> ConsoleState:
    return current_app.extensions["stegonode"]


def _uploads(field: str) -> list:
    files = [f for f in request.files.getlist(field) if f.filename]
    if not files:
        raise InputError("choose at least one file to upload")
    return files


def _one_upload(field: str) -> bytes:
    files = _uploads(field)
    if len(files) > 1:
        raise InputError("this page takes one file at a time")
    return files[0].read()


def _choice(name: str, allowed) -> str | None:
    value = request.form.get(name, "")
    if value == "":
        return None
    if value not in allowed:
        raise InputError(f"{name}: choose one of {', '.join(allowed)}")
    return value


# -- protect -------------------------------------------------------------------------------

@bp.route("/protect", methods=["GET", "POST"])
def protect():
    state = _state()
    handlers = state.config["handlers"]
    configured = {"segmenter": handlers["segment"]["segmenter"],
                  "cipher": handlers["encrypt"]["cipher"] if "encrypt" in state.config["pipeline"]["handlers"] else None}
    if request.method == "GET":
        return render_template("protect.html", segmenters=SEGMENTER_CHOICES, ciphers=list(CIPHERS),
                               configured=configured)
    files = _uploads("files")
    names = [secure_filename(f.filename or "")[:80] for f in files]
    uploads = [f.read() for f in files]
    segmenter = _choice("segmenter", SEGMENTER_CHOICES)
    cipher = _choice("cipher", list(CIPHERS))
    keys = state.node_keys()
    job = state.jobs.submit(uploads, lambda: state.pipeline(cipher, segmenter), keys.pixel_cipher_key, names)
    return redirect(url_for("files.protect_job", job_id=job.id), code=303)


def _job(job_id: str):
    job = _state().jobs.get(job_id) if JOB_ID.match(job_id) else None
    if job is None:
        abort(404, "No such protect job: jobs are kept for an hour after they finish.")
    return job


@bp.route("/protect/<job_id>")
def protect_job(job_id: str):
    return render_template("protect_job.html", job=_job(job_id))


@bp.route("/protect/<job_id>.json")
def protect_progress(job_id: str):
    job = _job(job_id)
    return {"total": job.total, "finished": len(job.results), "done": job.done}


def _result(job_id: str, number: int):
    job = _job(job_id)
    if not 1 <= number <= len(job.results) or job.results[number - 1].error:
        abort(404, "No such protected file in this job.")
    return job.results[number - 1]


@bp.route("/protect/<job_id>/<int:number>.dcm")
def protect_download(job_id: str, number: int):
    result = _result(job_id, number)
    return send_file(io.BytesIO(result.data), mimetype=DICOM, as_attachment=True, download_name=result.name)


@bp.route("/protect/<job_id>/<int:number>.png")
def protect_overlay(job_id: str, number: int):
    return send_file(io.BytesIO(_result(job_id, number).overlay), mimetype="image/png")


@bp.route("/protect/<job_id>.zip")
def protect_zip(job_id: str):
    job = _job(job_id)
    if not job.done or not job.succeeded:
        abort(404, "The job has no protected file to download yet.")
    return send_file(io.BytesIO(job.zip()), mimetype="application/zip", as_attachment=True,
                     download_name="protected.zip")


# -- reveal --------------------------------------------------------------------------------

@bp.route("/reveal", methods=["GET", "POST"])
def reveal_page():
    """The peer's key and the recovered identity exist only while this request runs: nothing is
    stored, and the downloads travel inside the response."""
    if request.method == "GET":
        return render_template("reveal.html", results=None)
    uploads = _uploads("files")
    keys = keyfiles.parse_peer_keys(_one_upload("keys"), "the uploaded key file")
    results, documents = [], []
    for number, upload in enumerate(uploads, start=1):
        name = secure_filename(upload.filename) or f"file{number}.dcm"
        try:
            ds = read_dicom(io.BytesIO(upload.read()))
            carriers = _carriers_in(ds)
            revealed = reveal(ds, keys)
        except Exception as exc:
            reason = failure_reason(exc, "revealing")
            if isinstance(exc, (WrongEmbeddingKeyError, WrongRecipientKeyError)):
                reason = f"this key file cannot open this object (another node's, or an older key): {reason}"
            audit_console("reveal", "failure", detail=reason)  # no UIDs: the upload may be an original
            results.append({"number": number, "name": name, "error": reason})
            documents.append(reveal_document(name, None, reason))
            continue
        audit_console("reveal", studies=(str(ds.StudyInstanceUID),), instances=(str(ds.SOPInstanceUID),),
                      sop_class=str(ds.SOPClassUID), detail=f"from the {revealed.carrier}")
        attributes = described(revealed.attributes)
        results.append({"number": number, "name": name, "error": None, "attributes": attributes,
                        "carrier": carrier_story(carriers, revealed.carrier, revealed.confirmed_by, revealed.complete),
                        "download": data_url(dicom_bytes(revealed.dataset), DICOM)})
        documents.append(reveal_document(name, attributes, carrier=revealed.carrier,
                                         confirmed_by=revealed.confirmed_by, complete=revealed.complete))
    if not any(result["error"] is None for result in results):
        # Nothing revealed: an error page, no patient-data banner, nothing to download.
        return render_template("reveal.html", results=results, json_url=None, nothing_revealed=True), 400
    document = json.dumps(documents, ensure_ascii=False, indent=1).encode()
    return render_template("reveal.html", results=results, json_url=data_url(document, "application/json"),
                           nothing_revealed=False)


def _carriers_in(ds) -> list[str]:
    """The carriers the object's protection block says it has (empty when it has none: reveal
    then says why)."""
    try:
        protection = read_protection(ds)
    except Exception:
        return []
    return [c for c in protection.carriers if c != "pixels" or protection.has_pixels]


def carrier_story(carriers: list[str], carrier: str, confirmed_by: tuple[str, ...], complete: bool) -> dict[str, str]:
    """Which carrier delivered, whether the other confirmed it, and what failed: ``text`` for
    the page, ``level`` "ok" or "warning" (a carrier the object has that could not be read)."""
    parts = [f"Delivered by the {carrier} carrier"]
    level = "ok"
    others = [c for c in carriers if c != carrier]
    if confirmed_by:
        parts.append(f"confirmed by the {' and '.join(confirmed_by)} carrier (they agree)")
    elif others:
        failed = others[0]
        level = "warning"
        why = ("the background pixels were changed (noise, lossy re-encoding or editing)" if failed == "pixels"
               else "the Encrypted Attributes were removed or altered")
        parts.append(f"the {failed} carrier could not be read: {why}")
    else:
        parts.append("the object has no other carrier")
    if not complete:
        level = "warning"
        parts.append("only the core attributes were recovered")
    return {"text": "; ".join(parts) + ".", "level": level}


# -- encrypt and decrypt (seed 004) ----------------------------------------------------------

def _report(plain_words, cipher: str, cipher_words) -> dict:
    """The cipher report table for ``cipher`` on the plain pixels, and the histograms of the
    plain and the cipher image of this file."""
    start = time.perf_counter()
    rows, _ = cipher_report(plain_words, [cipher])
    bits = plain_words.dtype.itemsize * 8
    picture = histograms({"plain image": plain_words, f"cipher image ({cipher})": cipher_words}, bits)
    frames, height, width = plain_words.shape
    return {"rows": rows, "cipher": cipher, "histograms": data_url(picture, "image/png"),
            "shape": f"{height} x {width} x {frames} frame(s), {bits}-bit words",
            "seconds": time.perf_counter() - start}


@bp.route("/encrypt", methods=["GET", "POST"])
def encrypt():
    if request.method == "GET":
        return render_template("cipher.html", mode="encrypt", ciphers=list(CIPHERS), outcome=None)
    cipher = _choice("cipher", list(CIPHERS)) or "aes-gcm"
    ds = read_dicom(io.BytesIO(_one_upload("file")))
    plain = pixel_words(read_pixels(ds)).copy()
    encrypt_dataset(ds, EncryptHandler(cipher, _state().node_keys().pixel_cipher_key))
    outcome = _report(plain, cipher, pixel_words(read_pixels(ds)))
    outcome["download"] = data_url(dicom_bytes(ds), DICOM)
    outcome["download_name"] = "encrypted.dcm"
    return render_template("cipher.html", mode="encrypt", ciphers=list(CIPHERS), outcome=outcome)


@bp.route("/decrypt", methods=["GET", "POST"])
def decrypt():
    if request.method == "GET":
        return render_template("cipher.html", mode="decrypt", outcome=None)
    ds = read_dicom(io.BytesIO(_one_upload("file")))
    keys = keyfiles.parse_peer_keys(_one_upload("keys"), "the uploaded key file")
    encrypted = pixel_words(read_pixels(ds)).copy()
    block = decrypt_dataset(ds, keys.pixel_cipher_key)
    if block is None:
        raise InputError("the pixels of this file are not encrypted (no stegonode cipher block)")
    outcome = _report(pixel_words(read_pixels(ds)), block.cipher, encrypted)
    outcome["download"] = data_url(dicom_bytes(ds), DICOM)
    outcome["download_name"] = "decrypted.dcm"
    return render_template("cipher.html", mode="decrypt", outcome=outcome)


