"""Protect jobs of the console: uploads protected one after another in a background thread.

A job keeps the uploaded bytes only until its file is protected, then the protected object
(de-identified, its identity sealed in the pixels), the overlay of what changed and the figures.
No file name is kept: results are numbered in upload order and named by their new UID. Jobs are
forgotten after :data:`KEEP_S` seconds, or when more than :data:`MAX_JOBS` exist.
"""

from __future__ import annotations

import copy
import io
import logging
import secrets
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from pydicom import Dataset

from stegonode.dicom.colour import cover_pixels
from stegonode.dicom.pixels import PixelFormat, read_pixels
from stegonode.errors import StegonodeError, public_message
from stegonode.handlers.admission import pixel_carrier_obstacle
from stegonode.handlers.encrypt import decrypted
from stegonode.handlers.pipeline import Pipeline
from stegonode.handlers.protect import protect_object

from .pictures import change_overlay

log = logging.getLogger("stegonode.web")
KEEP_S = 3600.0
MAX_JOBS = 20


@dataclass
class Result:
    """One uploaded file's outcome: the protected object and its figures, or why it failed."""

    number: int
    error: str | None = None
    upload: str = ""  # a failed upload's file name (as the browser sent it, made safe), to find it
    name: str = ""
    data: bytes = b""
    overlay: bytes = b""
    report: dict[str, float | int | str] = field(default_factory=dict)
    seconds: float = 0.0
    kept: bool = False  # already protected by stegonode: stored as it is, not protected again

    @property
    def carriers(self) -> tuple[str, str]:
        return carriers_of(self.report)

    @property
    def pixels_changed(self) -> bool:
        return "pixels" in str(self.report.get("carriers", "")).split("+")


@dataclass
class Job:
    id: str
    total: int
    created: float = field(default_factory=time.time)
    results: list[Result] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the uploads' names, kept only for failed ones

    @property
    def done(self) -> bool:
        return len(self.results) == self.total

    @property
    def succeeded(self) -> list[Result]:
        return [r for r in self.results if r.error is None]

    def zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for result in self.succeeded:
                archive.writestr(result.name, result.data)
        return buffer.getvalue()


PIXELS_CARRY_LESS = {
    "core": "the background is too small for every attribute: the pixels carry the core ones, the header all",
    "none": "the background is too small for the sealed identity: the header carries it",
    "off": "the pixel carrier is off (pipeline.carriers)",
}


def carriers_of(report: dict[str, float | int | str]) -> tuple[str, str]:
    """What carries the identity of a protected object ("pixels + header", "pixels(core) +
    header", "header only") and, when the pixels carry less than all of it, why."""
    carriers = str(report.get("carriers", "")).split("+") if report.get("carriers") else []
    scope = str(report.get("pixel_attributes", "none"))
    shown = [("pixels(core)" if carrier == "pixels" and scope == "core" else carrier) for carrier in carriers]
    label = " + ".join(shown) if "pixels" in carriers else (" + ".join(shown) + " only" if shown else "none")
    if report.get("pixel_obstacle"):
        return label, f"no pixel carrier: {report['pixel_obstacle']}"
    if "pixels" in carriers and scope != "core":
        return label, ""
    return label, PIXELS_CARRY_LESS.get(scope if "pixels" in carriers else ("off" if scope == "off" else "none"), "")


def failure_reason(exc: Exception, doing: str = "protecting") -> str:
    """What to tell the user (:func:`stegonode.errors.public_message`)."""
    return public_message(exc, doing)


@dataclass
class _Cover:
    """What the overlay compares the protected pixels with: the cover as received."""

    encrypting: bool = False  # the pipeline encrypts pixels (colour then gets the header carrier alone)
    pixels: np.ndarray | None = None
    display: Dataset | None = None  # the header that windows the cover (rescale, photometric)
    peak: int = 0

    def keep(self, ds: Dataset) -> None:
        if pixel_carrier_obstacle(ds, self.encrypting) is None:  # the header carrier alone changes no pixel
            self.display, self.peak = copy.deepcopy(ds), PixelFormat.of(ds).peak
            self.pixels = cover_pixels(copy.deepcopy(ds))  # a colour image's luminance (dicom.colour)


def protect_one(number: int, data: bytes, pipeline: Pipeline, pixel_cipher_key: bytes) -> Result:
    start = time.perf_counter()
    try:
        cover = _Cover(encrypting=pipeline.policy.encrypting)
        protected = protect_object(data, pipeline, before=cover.keep)
        ds, instance = protected.dataset, protected.instance
        result = Result(number, name=f"{ds.SOPInstanceUID}.dcm", data=protected.data, kept=protected.kept,
                        report=dict(protected.report))
        if instance is not None and cover.pixels is not None and cover.display is not None:
            stego = read_pixels(decrypted(ds, pixel_cipher_key)) if instance.encryption else instance.pixels
            assert stego is not None, "an object with a pixel carrier keeps its pixels"
            result.overlay = change_overlay(cover.display, cover.pixels, stego)
            result.report["peak"] = cover.peak
    except Exception as exc:  # one bad upload must not stop the others
        if not isinstance(exc, StegonodeError):
            log.error("console: protecting upload %d failed with %s", number, type(exc).__name__)
        return Result(number, error=failure_reason(exc), seconds=time.perf_counter() - start)
    result.seconds = time.perf_counter() - start
    return result


class ProtectJobs:
    """Jobs by random id; one background thread protects them in order of submission."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stegonode-web-protect")

    def submit(self, uploads: list[bytes], pipeline: Callable[[], Pipeline], pixel_cipher_key: bytes,
               names: list[str] | None = None) -> Job:
        job = Job(secrets.token_urlsafe(16), len(uploads))
        job.names = list(names or [])
        with self._lock:
            self._expire()
            self._jobs[job.id] = job
        self._executor.submit(self._run, job, uploads, pipeline, pixel_cipher_key)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._expire()
            return self._jobs.get(job_id)

    def _expire(self) -> None:
        limit = time.time() - KEEP_S
        for job_id in [j.id for j in self._jobs.values() if j.created < limit and j.done]:
            del self._jobs[job_id]
        while len(self._jobs) > MAX_JOBS and next(iter(self._jobs.values())).done:
            self._jobs.popitem(last=False)

    @staticmethod
    def _run(job: Job, uploads: list[bytes], pipeline: Callable[[], Pipeline], key: bytes) -> None:
        try:
            built = pipeline()
        except Exception as exc:
            job.results = [Result(n, error=failure_reason(exc)) for n in range(1, job.total + 1)]
            job.names = []
            return
        for number in range(job.total):
            data, uploads[number] = uploads[number], b""  # the original goes once it is protected
            result = protect_one(number + 1, data, built, key)
            if result.error is not None and number < len(job.names):
                result.upload = job.names[number]
            job.results.append(result)
        job.names = []
