"""``seg = true``: one DICOM SEG of the kept-intact region per series, once the series is stable.

A series is stable when no instance of it was stored for ``seg_stable_seconds``. A thread of
the node process finds such series in the index, a worker process computes every instance's
kept-intact region (:func:`stegonode.handlers.dicomseg.kept_region`, the complement of what
reveal reads) and writes one multi-frame SEG into ``stored/``, and the index serves it like any
stored object (C-FIND, C-GET, C-MOVE). An instance stored later makes the series due again:
its new SEG replaces the old one (a new SOP Instance UID, the same SEG series UID). The SEG's
``stored_at`` in the index is the newest source instance's, which is how a later instance is
recognised.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from pydicom import dcmread
from sqlalchemy import func, select

from stegonode.dicom.dicomfile import read_dicom
from stegonode.errors import Failure
from stegonode.handlers import dicomseg
from stegonode.handlers.protection import already_protected, read_protection

from .index import ATTRIBUTES, Index, instances
from .storage import ObjectStore
from .workers import Outcome, worker_store

log = logging.getLogger("stegonode.seg")
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def write_segmentation(keys: list[str], pixel_cipher_key: bytes) -> Outcome:
    """In a worker process: the SEG of the stored instances ``keys`` (one series), stored."""
    try:
        storage = worker_store()
        sources = []
        for key in keys:
            ds = read_dicom(storage.read(key))
            if read_protection(ds).has_pixels:  # objects with the header carrier alone kept no region
                sources.append(dicomseg.Source(ds, dicomseg.kept_region(ds, pixel_cipher_key)))
        seg = dicomseg.kept_segmentation(sources, dicomseg.software_version())
        buffer = io.BytesIO()
        seg.save_as(buffer, enforce_file_format=True)
        stored = storage.write("stored", seg.SOPInstanceUID, buffer.getvalue())
    except Exception as exc:  # a worker must report, never die: stegonode.errors decides the rest
        judged = Failure.of(exc, "writing the segmentation")
        return Outcome(reason=judged.reason, permanent=not judged.transient)
    return Outcome(attributes={k: str(seg.get(k, "") or "") for k in ATTRIBUTES},
                   transfer_syntax=str(seg.file_meta.TransferSyntaxUID), stored=stored)


class Segmentations:
    """The node-side loop: finds stable series without an up-to-date SEG and has one written."""

    def __init__(self, index: Index, storage: ObjectStore, run: Callable[..., Future],
                 stable_seconds: float, pixel_cipher_key: bytes) -> None:
        self.index = index
        self.storage = storage
        self.run = run  # submits a function to the worker pool
        self.stable_seconds = stable_seconds
        self.pixel_cipher_key = pixel_cipher_key
        self.done_up_to = 0.0  # every series whose newest instance is this old has been handled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="segmentations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        interval = min(1.0, max(self.stable_seconds / 4, 0.1))
        while not self._stop.wait(interval):
            try:
                self.write_due()
            except Exception:  # the loop must survive a bad series or a busy database
                log.exception("segmentation pass failed; retrying")

    def write_due(self) -> None:
        """One pass: a SEG for every stable series whose SEG is missing or older than it."""
        now = time.time()
        newest = func.max(instances.c.stored_at)
        rows = self.index.select(
            select(instances.c.SeriesInstanceUID, newest.label("newest"))
            .where(instances.c.SOPClassUID != SEGMENTATION_STORAGE)
            .group_by(instances.c.SeriesInstanceUID)
            .having(newest <= now - self.stable_seconds).having(newest > self.done_up_to)
            .order_by(newest))
        for row in rows:
            if self._stop.is_set():
                return
            self._series(row["SeriesInstanceUID"], row["newest"])
            self.done_up_to = max(self.done_up_to, row["newest"])

    def _series(self, series: str, newest: float) -> None:
        c = instances.c
        previous = self.index.select(select(c.SOPInstanceUID, c.path, c.stored_at)
                                     .where(c.SeriesInstanceUID == dicomseg.series_uid_for(series)))
        if any(row["stored_at"] >= newest for row in previous):
            return
        keys = [row["path"] for row in self.index.select(
            select(c.path).where(c.SeriesInstanceUID == series, c.SOPClassUID != SEGMENTATION_STORAGE)
            .order_by(c.path))]
        outcome = self.run(write_segmentation, keys, self.pixel_cipher_key).result()
        if outcome.reason is not None:
            log.warning("series %s: no segmentation: %s", series, outcome.reason)
            return
        self.index.add_derived(outcome.attributes, outcome.transfer_syntax, outcome.stored, newest,
                               replaces=[row["SOPInstanceUID"] for row in previous])
        for row in previous:
            self.storage.delete(row["path"])
        log.info("series %s: segmentation %s of %d instance(s) stored",
                 series, outcome.attributes["SOPInstanceUID"], len(keys))


def is_segmentation(path: Path) -> bool:
    """Whether a received file is one of the node's Segmentations (fetch keeps it as it is); a
    protected SEG that a modality sent is revealed like any protected object."""
    ds = dcmread(path, stop_before_pixels=True)
    return str(ds.get("SOPClassUID", "")) == SEGMENTATION_STORAGE and not already_protected(ds)
