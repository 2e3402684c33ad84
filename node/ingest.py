"""Durable ingest: a C-STORE is answered with success only once nothing can lose it.

The received bytes are written to the inbox (temporary name, fsync, rename, directory fsync;
in an object store one PUT: docs/object-store.md) and the job is committed to the index before
the success status goes back. In the data directory the temporary file's fsync runs in a
thread while the object is checked (the disk and the CPU at once, :meth:`Storage.stage_beside
<stegonode.node.storage.Storage.stage_beside>`; a refused object's temporary file is removed), and concurrent associations share the directory fsyncs
(:func:`stegonode.node.storage.sync_directory`): see docs/receiving.md. The inbox file is
the durable record: should a power cut take back the index commit, the next start queues the
file again (:meth:`stegonode.node.service.Node.adopt_inbox`). What cannot be protected is refused at once with a failure status and an Error
Comment, and nothing of it is kept: the sender still holds it and has been told why. An index
that cannot be reached gets the sender an Out of Resources status; the inbox file stays, and
the next start of a receiver queues it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from pydicom import Dataset
from pydicom.uid import UID
from pynetdicom import evt
from sqlalchemy.exc import SQLAlchemyError

from stegonode.dicom.dicomfile import read_dicom
from stegonode.dicom.pixels import MAX_DECODED_BYTES
from stegonode.dicom.pseudonyms import Pseudonymizer
from stegonode.errors import InconsistentFileMetaError, InputError, RefusedError, UnsupportedImageError
from stegonode.handlers.admission import Policy, check_admissible, check_object_size

from .dicomnet import c_store_request
from .index import Index
from .storage import ObjectStore, Storage, new_token

log = logging.getLogger("stegonode.ingest")

SUCCESS = 0x0000
SOP_CLASS_NOT_SUPPORTED = 0x0122
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000


class Ingest:
    """The C-STORE path: check, write durably, queue."""

    def __init__(
        self, storage: ObjectStore, index: Index, pseudonyms: Pseudonymizer,
        wake: Callable[[], None], policy: Policy = Policy(),
        max_object_bytes: int = MAX_DECODED_BYTES,
    ) -> None:
        self.policy = policy
        self.max_object_bytes = max_object_bytes  # node.max_object_mb: received or decoded
        self.storage = storage
        self.index = index
        self.pseudonyms = pseudonyms
        self.wake = wake  # this node's worker pool, if it has one: a job is queued
        # The fsyncs of received objects, beside the checks (threads start on demand).
        self._writers = ThreadPoolExecutor(16, thread_name_prefix="inbox-writer")

    def receive(self, event: evt.Event) -> Dataset:
        """Handle one C-STORE request; return its status (with an Error Comment on failure)."""
        request = c_store_request(event)
        return self.accept(event.encoded_dataset(include_meta=True), UID(request.AffectedSOPClassUID or ""),
                           str(request.AffectedSOPInstanceUID), event.assoc.requestor.ae_title)

    def accept(self, encoded: bytes, sop_class: UID, sop_instance_uid: str, caller: str) -> Dataset:
        """Check, write durably and queue one object (a Part 10 file's bytes, as received over
        DIMSE or STOW-RS); its status, with an Error Comment on failure."""
        start = time.perf_counter()
        new_uid = job_key(self.pseudonyms, sop_instance_uid)
        staged = self._stage(encoded)
        refused = self._check(encoded, sop_class)
        if refused is not None:
            if staged is not None:
                discard_staged(staged, self.storage)
            log.warning("refused %s (new UID %s): %s", sop_class.name, new_uid, refused.ErrorComment)
            return refused
        try:
            token = new_token()
            if staged is None:
                self.storage.write("inbox", token, encoded)  # an object store: one PUT
            else:
                self.storage.move(staged.result(), "inbox", token)
            self.queue(new_uid, token, caller)
        except OSError as exc:
            log.error("cannot store %s: %s", new_uid, exc.strerror or type(exc).__name__)
            return status_dataset(OUT_OF_RESOURCES, "node cannot write the object to its storage")
        except SQLAlchemyError as exc:
            log.error("cannot queue %s: index unavailable (%s)", new_uid, type(exc).__name__)
            return status_dataset(OUT_OF_RESOURCES, "node cannot record the object in its index")
        log.debug("received %s in %.1f ms", new_uid, 1000 * (time.perf_counter() - start))
        return status_dataset(SUCCESS)

    def queue(self, new_uid: str, token: str, calling_ae_title: str) -> None:
        """Record the job for inbox file ``token``; a queued older copy of the instance goes."""
        replaced = self.index.enqueue(new_uid, token, calling_ae_title)
        if replaced is not None:
            self.storage.delete(self.storage.key("inbox", replaced))
            log.info("%s received again: the newer copy replaces the queued one", new_uid)
        self.wake()

    def _stage(self, encoded: bytes) -> Future[str] | None:
        """Start writing ``encoded`` durably to the data directory's tmp/, beside the checks;
        None for an object store (one PUT once it is accepted) or above the size limit."""
        if len(encoded) > self.max_object_bytes or not isinstance(self.storage, Storage):
            return None
        return self.storage.stage_beside(encoded, self._writers)

    def _check(self, encoded: bytes, sop_class: UID) -> Dataset | None:
        """A refusal status for what the pipeline cannot protect, else None."""
        try:
            check_object_size(len(encoded), self.max_object_bytes)  # before anything is decoded
        except RefusedError as exc:
            return status_dataset(OUT_OF_RESOURCES, str(exc))
        try:
            ds = read_dicom(encoded, meta_binds=True)  # pynetdicom's meta: the request's UIDs
        except InconsistentFileMetaError as exc:
            return status_dataset(DATASET_DOES_NOT_MATCH_SOP_CLASS, f"{exc.name} differs from Affected {exc.name}")
        except InputError as exc:
            return status_dataset(CANNOT_UNDERSTAND, str(exc))
        refused = refusal(ds, sop_class, self.policy, self.max_object_bytes)
        return None if refused is None else status_dataset(*refused)


def job_key(pseudonyms: Pseudonymizer, sop_instance_uid: object) -> str:
    """The key by which the index, the queue and the log name a received instance: its new
    (pseudonymous) SOP Instance UID, the one the pipeline gives it, so that a copy received
    again finds the queued one and no log line holds the original UID."""
    return pseudonyms.uid(str(sop_instance_uid or ""))


def discard_staged(staged: Future[str], storage: ObjectStore) -> None:
    """Remove the temporary file of a refused object once it is written (nothing is kept)."""
    def remove(done: Future[str]) -> None:
        if done.exception() is None:
            storage.discard(done.result())
    staged.add_done_callback(remove)


def refusal(ds: Dataset, sop_class: UID, policy: Policy = Policy(),
            max_object_bytes: int = MAX_DECODED_BYTES) -> tuple[int, str] | None:
    """The C-STORE failure status and reason for an object the pipeline cannot protect, or None.

    Checks what needs no pixel decoding: with the header carrier off, a non-image SOP class
    (0x0122) or an image the pixel codec does not handle (0xA900); a truncated or malformed data
    set or one the node's policy refuses, such as Burned In Annotation YES, video or an
    encapsulated document (0xC000).
    """
    try:
        check_admissible(ds, policy, max_object_bytes)
    except UnsupportedImageError as exc:
        if "PixelData" not in ds and "Image Storage" not in sop_class.name:
            return SOP_CLASS_NOT_SUPPORTED, f"no pixels; header carrier off ({sop_class.name})"
        return DATASET_DOES_NOT_MATCH_SOP_CLASS, str(exc)
    except InputError as exc:
        return CANNOT_UNDERSTAND, str(exc)
    except Exception as exc:  # whatever pydicom raises on a malformed data set
        return CANNOT_UNDERSTAND, f"data set cannot be decoded ({type(exc).__name__})"
    return None


def status_dataset(status: int, comment: str = "") -> Dataset:
    """A DIMSE status; failures carry an Error Comment (LO, cut to 64 characters)."""
    response = Dataset()
    response.Status = status
    if comment:
        response.ErrorComment = comment[:64]
        response.reason = comment  # whole, for the console's jobs page; not encoded
    return response
