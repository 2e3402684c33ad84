"""WADO-RS (PS3.18 10.4): studies, series and instances as stored, their metadata, frames, bulk
data, and rendered pictures.

Instances are found the way C-GET finds them (:func:`stegonode.node.query.instances`) and sent
as C-GET sends them (:mod:`stegonode.node.retrieve`): the stored file's bytes unchanged when the
client accepts the stored transfer syntax (``transfer-syntax=*`` or its UID), decompressed to
Explicit VR Little Endian otherwise (the default of PS3.18 8.7.3.5). Frames come encoded as
stored (``image/jls`` for JPEG-LS, ...) or native (``application/octet-stream``, little endian).
Rendered pictures (image/jpeg, image/png) use the object's own window (Window Center/Width, after
the Modality LUT), or ``window=center,width`` from the request, or the frame's range.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pydicom
from flask import Response, current_app, request, stream_with_context
from PIL import Image
from pydicom import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels import apply_modality_lut, pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless
from werkzeug.exceptions import BadRequest, NotAcceptable, NotFound, ServiceUnavailable

from stegonode.dicom.dicomfile import dicom_bytes, read_dicom
from stegonode.errors import StegonodeError
from stegonode.handlers.compression import DECODERS, decompressed
from stegonode.node import query
from stegonode.node.index import Index
from stegonode.node.storage import ObjectStore

from . import bp, log, record

MEDIA_TYPES = {JPEGLSLossless: "image/jls", JPEG2000Lossless: "image/jp2", RLELossless: "image/dicom-rle"}
NATIVE = "application/octet-stream"
BULK_THRESHOLD = 64 * 1024  # larger binary values are BulkDataURIs in metadata, smaller inline
UID_PATTERN = re.compile(r"^[0-9.]{1,64}$")
RENDERED_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG"}


def index() -> Index:
    try:
        return current_app.extensions["stegonode"].index()
    except StegonodeError as exc:
        raise ServiceUnavailable(str(exc)) from None


def storage() -> ObjectStore:
    """The node's storage: its data directory or its object store ([storage] url)."""
    return current_app.extensions["stegonode"].storage()


def base_url() -> str:
    """This server's URL as the client addressed it. A Host header without a port (as
    dicomweb-client sends) is completed with the port the request came in on."""
    host = request.host
    port = request.environ.get("SERVER_PORT", "")
    if ":" not in host.rsplit("]", 1)[-1] and port and port != {"http": "80", "https": "443"}.get(request.scheme):
        host = f"{host}:{port}"
    return f"{request.scheme}://{host}{request.script_root}"


def retrieve_url(study: str | None, series: str | None = None, instance: str | None = None) -> str:
    url = f"{base_url()}/dicomweb/studies/{study}"
    if series:
        url += f"/series/{series}"
        if instance:
            url += f"/instances/{instance}"
    return url


def stored(study: str, series: str | None = None, instance: str | None = None) -> list[query.Instance]:
    """The stored instances under the path's UIDs (NotFound when there are none)."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    for keyword, value in (("StudyInstanceUID", study), ("SeriesInstanceUID", series), ("SOPInstanceUID", instance)):
        if value is not None:
            if not UID_PATTERN.match(value):
                raise BadRequest(f"{keyword} {value!r} is not a UID")
            setattr(identifier, keyword, value)
    found = query.instances(index(), query.parse(identifier, "STUDY"))
    if not found:
        raise NotFound("no stored instance under this path")
    return found


def _audit(found: list[query.Instance], what: str, study: str) -> None:
    classes = Counter(instance.sop_class_uid for instance in found)
    record("retrieve", studies=(study,), instances=tuple(i.sop_instance_uid for i in found),
           sop_class=classes.most_common(1)[0][0], detail=f"WADO-RS {what}, {len(found)} instance(s)")


# -- content negotiation -----------------------------------------------------------------------

def media_type(text: str) -> tuple[str, dict[str, str]]:
    """``type/subtype; key=value; ...`` with values quoted or not (``type=application/dicom``
    unquoted is common: werkzeug's parser stops such a value at the slash)."""
    mime, *rest = re.findall(r'(?:[^;"]|"[^"]*")+', text) or [""]
    params = {}
    for item in rest:
        key, _, value = item.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return mime.strip().lower(), params


def _accepted() -> list[tuple[str, dict[str, str]]]:
    """The Accept header's media types with their parameters, most preferred first."""
    parts = re.findall(r'(?:[^,"]|"[^"]*")+', request.headers.get("Accept", "") or "*/*")
    ranked = []
    for order, part in enumerate(parts):
        mime, params = media_type(part)
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 1.0
        if mime and quality > 0:
            ranked.append((-quality, order, mime, params))
    return [(mime, params) for _, _, mime, params in sorted(ranked)]


def _syntax_for(found: Iterable[query.Instance], wanted: str | None) -> str | None:
    """``"stored"`` or the one transfer syntax every instance can be sent in, or None."""
    if wanted == "*":
        return "stored"
    syntax = UID(wanted or ExplicitVRLittleEndian)
    if syntax == ExplicitVRLittleEndian:
        return str(syntax)
    return "stored" if all(_stored_syntax(i) == syntax for i in found) else None


def _stored_syntax(instance: query.Instance) -> UID:
    return UID(instance.transfer_syntax or ExplicitVRLittleEndian)


def _instances_syntax(found: list[query.Instance]) -> str:
    for mime, params in _accepted():
        if mime == "multipart/related" and params.get("type", "application/dicom").lower() in ("application/dicom", "*/*"):
            choice = _syntax_for(found, params.get("transfer-syntax"))
        elif mime in ("*/*", "multipart/*", "application/dicom"):
            choice = str(ExplicitVRLittleEndian)
        else:
            continue
        if choice is not None:
            return choice
    raise NotAcceptable("instances are sent as multipart/related; type=\"application/dicom\" in their stored "
                        f"transfer syntax (transfer-syntax=*) or in {ExplicitVRLittleEndian} (the default)")


def multipart(parts: Iterator[tuple[str, bytes]], media_type: str) -> Response:
    """A streamed multipart/related response of ``(content type, body)`` parts."""
    boundary = secrets.token_hex(16)

    def body() -> Iterator[bytes]:
        try:
            for content_type, data in parts:
                yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"
        except Exception as exc:  # the status is sent: end without the closing delimiter, so the
            # client sees a cut response; the type only in the log (a message may quote a value)
            log.error("DICOMweb: %s failed while sending, with %s", endpoint, type(exc).__name__)
            return
        yield f"--{boundary}--\r\n".encode()

    endpoint = request.endpoint
    return Response(stream_with_context(body()), 200, content_type=f'multipart/related; type="{media_type}"; boundary={boundary}')


# -- instances ---------------------------------------------------------------------------------

def _as_sent(found: list[query.Instance], choice: str) -> Iterator[tuple[str, bytes]]:
    files = storage()
    for instance in found:
        data = files.read(instance.key)
        if choice == "stored" or _stored_syntax(instance) == UID(choice):
            yield f"application/dicom; transfer-syntax={_stored_syntax(instance)}", data
        else:
            ds = decompressed(read_dicom(data))
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            yield f"application/dicom; transfer-syntax={ExplicitVRLittleEndian}", dicom_bytes(ds)


def _retrieve(study: str, series: str | None = None, instance: str | None = None) -> Response:
    found = stored(study, series, instance)
    choice = _instances_syntax(found)
    _audit(found, "instances", study)
    return multipart(_as_sent(found, choice), "application/dicom")


@bp.get("/studies/<study>")
def retrieve_study(study: str) -> Response:
    return _retrieve(study)


@bp.get("/studies/<study>/series/<series>")
def retrieve_series(study: str, series: str) -> Response:
    return _retrieve(study, series)


@bp.get("/studies/<study>/series/<series>/instances/<instance>")
def retrieve_instance(study: str, series: str, instance: str) -> Response:
    return _retrieve(study, series, instance)


# -- metadata and bulk data --------------------------------------------------------------------

def _header(path: Path) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def metadata_of(instance: query.Instance, path: Path) -> dict:
    ds = _header(path)
    url = retrieve_url(ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID"), instance.sop_instance_uid)
    answer = ds.to_json_dict(BULK_THRESHOLD, lambda element: f"{url}/bulk/{element.tag:08X}")
    answer["00083002"] = {"vr": "UI", "Value": [str(_stored_syntax(instance))]}  # AvailableTransferSyntaxUID
    if "Rows" in ds:
        answer["7FE00010"] = {"vr": "OB" if _stored_syntax(instance).is_compressed else "OW",
                              "BulkDataURI": f"{url}/bulk/7FE00010"}
    return answer


def _metadata(study: str, series: str | None = None, instance: str | None = None) -> Response:
    found = stored(study, series, instance)
    files = storage()
    answers = []
    for i in found:
        with files.local_copy(i.key) as path:  # a data directory's file itself: its header only
            answers.append(metadata_of(i, path))
    _audit(found, "metadata", study)
    return Response(json.dumps(answers), 200, mimetype="application/dicom+json")


@bp.get("/studies/<study>/metadata")
def study_metadata(study: str) -> Response:
    return _metadata(study)


@bp.get("/studies/<study>/series/<series>/metadata")
def series_metadata(study: str, series: str) -> Response:
    return _metadata(study, series)


@bp.get("/studies/<study>/series/<series>/instances/<instance>/metadata")
def instance_metadata(study: str, series: str, instance: str) -> Response:
    return _metadata(study, series, instance)


def _find_element(ds: Dataset, tag: int) -> bytes | None:
    if tag in ds:
        value = ds[tag].value
        return value if isinstance(value, bytes) else None
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                found = _find_element(item, tag)
                if found is not None:
                    return found
    return None


@bp.get("/studies/<study>/series/<series>/instances/<instance>/bulk/<tag>")
def bulk(study: str, series: str, instance: str, tag: str) -> Response:
    """A binary value of the metadata: pixel data native (as frames are), others as stored."""
    if not re.fullmatch(r"[0-9A-Fa-f]{8}", tag):
        raise NotFound("bulk data is addressed by an eight-digit hex tag")
    found = stored(study, series, instance)
    ds = read_dicom(storage().read(found[0].key))
    if int(tag, 16) == 0x7FE00010:
        if "PixelData" not in ds:
            raise NotFound("this instance has no pixel data")
        data = _native_frames(ds, range(_frame_count(ds)))
    else:
        value = _find_element(ds, int(tag, 16))
        if value is None:
            raise NotFound(f"no binary value ({tag}) in this instance")
        data = value
    _audit(found, "bulk data", study)
    if next((mime for mime, _ in _accepted()), "") == NATIVE:  # single part, as OHIF may ask
        return Response(data, 200, mimetype=NATIVE)
    return multipart(iter([(NATIVE, data)]), NATIVE)


# -- frames ------------------------------------------------------------------------------------

def _frame_count(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def _frame_numbers(frames: str, count: int) -> list[int]:
    try:
        numbers = [int(part) for part in frames.split(",")]
    except ValueError:
        raise BadRequest("frames: a comma-separated list of frame numbers, from 1") from None
    if not numbers or any(n < 1 or n > count for n in numbers):
        raise NotFound(f"this instance has frames 1 to {count}")
    return numbers


def _native_frame(ds: Dataset, number: int, rgb: bool = False) -> np.ndarray:
    """One frame decoded; colour in the object's own photometric interpretation unless ``rgb``."""
    syntax = ds.file_meta.TransferSyntaxUID
    return pixel_array(ds, index=number - 1, decoding_plugin=DECODERS.get(syntax, ""), as_rgb=rgb)


def _native_frames(ds: Dataset, indices: Iterable[int]) -> bytes:
    return b"".join(_native_bytes(ds, _native_frame(ds, i + 1)) for i in indices)


def _native_bytes(ds: Dataset, frame: np.ndarray) -> bytes:
    bits = int(ds.BitsAllocated)
    dtype = {8: "u1", 16: "u2", 32: "u4"}.get(bits, "u2")
    if int(ds.get("PixelRepresentation", 0)) == 1:
        dtype = dtype.replace("u", "i")
    return np.ascontiguousarray(frame).astype(f"<{dtype}", copy=False).tobytes()


def _frames_choice(syntax: UID) -> str:
    """"stored" or "native" for this Accept header and the stored ``syntax``."""
    media = MEDIA_TYPES.get(syntax)
    for mime, params in _accepted():
        kind = params.get("type", NATIVE).lower() if mime == "multipart/related" else mime
        wanted = params.get("transfer-syntax")
        if kind in (NATIVE, "*/*", "multipart/*", "application/*"):
            if wanted is None or wanted == str(ExplicitVRLittleEndian) or not syntax.is_compressed:
                return "native"
            if wanted == "*" or wanted == str(syntax):
                return "stored"
        elif media is not None and kind == media and wanted in (None, "*", str(syntax)):
            return "stored"
    raise NotAcceptable(f"frames are sent native ({NATIVE}) or as stored "
                        f"({media or NATIVE}; transfer-syntax={syntax})")


@bp.get("/studies/<study>/series/<series>/instances/<instance>/frames/<frames>")
def frames(study: str, series: str, instance: str, frames: str) -> Response:
    found = stored(study, series, instance)
    ds = read_dicom(storage().read(found[0].key))
    if "PixelData" not in ds:
        raise NotFound("this instance has no pixel data")
    numbers = _frame_numbers(frames, _frame_count(ds))
    syntax = ds.file_meta.TransferSyntaxUID
    choice = _frames_choice(syntax)
    _audit(found, f"frames {','.join(map(str, numbers))}", study)
    if choice == "stored":
        media = MEDIA_TYPES.get(syntax, NATIVE)
        parts = ((f"{media}; transfer-syntax={syntax}",
                  get_frame(ds.PixelData, n - 1, number_of_frames=_frame_count(ds))) for n in numbers)
        return multipart(parts, media)
    parts = ((f"{NATIVE}; transfer-syntax={ExplicitVRLittleEndian}", _native_frames(ds, [n - 1])) for n in numbers)
    return multipart(parts, NATIVE)


# -- rendered ----------------------------------------------------------------------------------

def _window(ds: Dataset, values: np.ndarray) -> tuple[float, float]:
    """Center and width: the request's ``window``, the object's first window, or the range."""
    given = request.args.get("window")
    if given:
        try:
            center, width = (float(v) for v in given.split(",")[:2])
        except ValueError:
            raise BadRequest("window=center,width[,function]") from None
        return center, max(width, 1.0)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = ds.WindowCenter, ds.WindowWidth
        center = center[0] if isinstance(center, pydicom.multival.MultiValue) else center
        width = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
        return float(center), max(float(width), 1.0)
    low, high = float(values.min()), float(values.max())
    return (low + high) / 2, max(high - low, 1.0)


def rendered_picture(ds: Dataset, number: int) -> Image.Image:
    """Frame ``number`` as an 8-bit picture: windowed gray, or colour as it is."""
    frame = _native_frame(ds, number, rgb=True)
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        if frame.dtype != np.uint8:
            frame = (frame.astype(np.float64) * 255 / max(float(frame.max()), 1)).astype(np.uint8)
        return Image.fromarray(frame)
    values = apply_modality_lut(frame, ds).astype(np.float64)
    center, width = _window(ds, values)
    scaled = np.clip(((values - (center - 0.5)) / (width - 1 if width > 1 else 1) + 0.5) * 255, 0, 255)
    if ds.get("PhotometricInterpretation", "") == "MONOCHROME1":
        scaled = 255 - scaled
    return Image.fromarray(scaled.astype(np.uint8))


def _rendered(study: str, series: str, instance: str, number: int | None) -> Response:
    found = stored(study, series, instance)
    ds = read_dicom(storage().read(found[0].key))
    if "PixelData" not in ds:
        raise NotAcceptable("this instance has no pixel data to render")
    count = _frame_count(ds)
    if number is not None and not 1 <= number <= count:
        raise NotFound(f"this instance has frames 1 to {count}")
    mime = next((m for m, _ in _accepted() if m in RENDERED_TYPES), None)
    if mime is None and any(m in ("*/*", "image/*") for m, _ in _accepted()):
        mime = "image/jpeg"
    if mime is None:
        raise NotAcceptable("rendered pictures are image/jpeg or image/png")
    picture = rendered_picture(ds, number or 1)
    viewport = request.args.get("viewport")
    if viewport:
        try:
            width, height = (int(v) for v in viewport.split(",")[:2])
        except ValueError:
            raise BadRequest("viewport=width,height") from None
        picture.thumbnail((max(width, 1), max(height, 1)))
    buffer = io.BytesIO()
    quality = request.args.get("quality", "90")
    picture.save(buffer, RENDERED_TYPES[mime], **({"quality": int(quality)} if mime == "image/jpeg"
                                                   and quality.isdigit() else {}))
    _audit(found, f"rendered frame {number or 1}", study)
    return Response(buffer.getvalue(), 200, mimetype=mime)


@bp.get("/studies/<study>/series/<series>/instances/<instance>/rendered")
def rendered_instance(study: str, series: str, instance: str) -> Response:
    return _rendered(study, series, instance, None)


@bp.get("/studies/<study>/series/<series>/instances/<instance>/frames/<int:number>/rendered")
def rendered_frame(study: str, series: str, instance: str, number: int) -> Response:
    return _rendered(study, series, instance, number)
