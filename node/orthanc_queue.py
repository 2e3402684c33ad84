"""Queue mode of stegonode inside Orthanc (``[orthanc] mode = "queue"``).

Orthanc 1.10 runs received-instance callbacks one at a time, so protecting inside the callback
(callback mode) uses one core and holds every association while it runs. In queue mode the
callback only screens the object (what the node refuses without decoding pixels is still
refused with a DICOM status; a stego object is kept as it is), writes the received bytes
durably into the queue directory (temp file, fsync, rename, directory fsync: the node's
:class:`~stegonode.node.storage.Storage`) and returns DISCARD: Orthanc answers C-STORE success
and stores nothing, so the original never reaches Orthanc's storage or index.

The node's worker processes (:mod:`stegonode.node.workers`: the same initializer, one compute
thread each, lower priority than answering) protect each queued object; a thread of the plugin
stores the protected object into Orthanc through its REST API on loopback (``POST
/instances``; see :meth:`OrthancQueue._post` for why not ``orthanc.RestApiPost``), which calls the
callback again: the object is a stego object now, so it is kept as it is. Only then is the
queued file removed, so a crash at any moment repeats work, never loses it, and leftovers are
queued again when Orthanc starts. What the pipeline refuses after the answer is quarantined:
``quarantine/<token>.dcm`` with its reason in ``quarantine/<token>.txt``, in Orthanc's log, and
as a quarantined job in the node's index (node.database of node.toml; by default
``DATA_DIR/index.sqlite``), which ``stegonode status`` and the console's jobs view read.

The callback's cost is the answer rate (Orthanc runs one at a time): the durable write of the
received bytes runs in a thread while the object is screened, and the protected objects this
plugin posts back are recognised by their bytes, without decoding them again.

Layout of the queue directory (no name carries patient data)::

    inbox/<token>.dcm         received, acknowledged, waiting for a worker
    quarantine/<token>.dcm    refused by the pipeline (or failing node.max_attempts times)
    quarantine/<token>.txt    why
    tmp/                      files being written, and protected objects before Orthanc has them
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.spawn as spawn
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import ModuleType
from typing import Any

import pydicom

from .config import Config
from .index import QUEUE_HOLDER, Index
from .ingest import OUT_OF_RESOURCES, discard_staged, job_key
from .orthanc_plugin import Protector, Refusal, Screened
from .storage import NodePaths, Storage, new_token
from .workers import INGEST_QUIET_S, Outcome, _start_worker, outcome_of, protect_job, warm_up

log = logging.getLogger("stegonode.orthanc")
STORED = ("Success", "AlreadyStored")  # POST /instances answers that mean Orthanc holds it
MAX_RETRY_DELAY_S = 60.0
REST_TIMEOUT_S = 120.0


class OrthancQueue:
    """The queue-mode callback, the worker pool behind it, and the thread that stores into Orthanc."""

    def __init__(self, orthanc: ModuleType, protector: Protector, config: Config,
                 keys_path: Path, directory: Path, python: str, python_path: list[str],
                 rest_url: str) -> None:
        node = config["node"]
        self.orthanc = orthanc
        self.protector = protector
        self.storage = Storage.create(directory)
        self.processes = max(1, int(node["workers"]))
        self.max_attempts = int(node["max_attempts"])
        self.python = python  # inside Orthanc, sys.executable is Orthanc itself
        self.python_path = python_path
        self.rest_url = rest_url  # Orthanc's own REST API, on loopback
        self._initargs = (config, keys_path, self.storage.root, node["log_level"])
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Condition()
        self._pending: deque[str] = deque()  # queued tokens, waiting for a worker
        self._in_flight = 0  # submitted, not yet finished (stored into Orthanc or failed)
        self._last_received = 0.0
        self._attempts: dict[str, int] = {}  # token -> failed attempts (environment failures)
        self._uids: dict[str, str] = {}  # token -> new (pseudonymous) UID, for the log
        self._outcomes: queue.Queue[tuple[str, Future] | None] = queue.Queue()
        self._storer = threading.Thread(target=self._store_loop, name="stegonode-storer", daemon=True)
        self._dispatcher = threading.Thread(target=self._dispatch, name="stegonode-dispatcher", daemon=True)
        self._stopping = False
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="stegonode-queue-writer")
        self._posting: bytes | None = None  # the protected object the storer is posting back
        self._database = NodePaths.of(node).database  # quarantined objects are recorded there
        self._index: Index | None = None

    # -- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        """Start and warm the worker processes, then queue what a previous run left."""
        self._executor = self._new_executor()
        self._warm()
        self._storer.start()
        self._dispatcher.start()
        leftovers = self.storage.names("inbox")
        if leftovers:
            log.warning("queue mode: %d received object(s) left by a previous run are protected now",
                        len(leftovers))
        for token in leftovers:
            self._submit(token, self._new_uid(token))
        self.orthanc.RegisterOnChangeCallback(self._on_change)
        log.warning("queue mode: %d worker process(es), queue %s", self.processes, self.storage.root)

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")  # threads + fork do not mix
        _spawn_with_own_path(context, self.python, self.python_path)
        return ProcessPoolExecutor(self.processes, mp_context=context, initializer=_start_worker,
                                   initargs=self._initargs)

    def _warm(self) -> None:
        """Every worker process loads the pipeline before Orthanc listens: one that cannot
        stops the plugin (which then refuses every instance) rather than fail every object."""
        assert self._executor is not None
        warm_up(self._executor, self.processes)

    def _on_change(self, change_type: Any, level: Any, resource: str) -> None:
        if change_type == self.orthanc.ChangeType.ORTHANC_STOPPED:
            self.stop()

    def stop(self) -> None:
        """Orthanc stops: work not finished stays queued (the next start protects it)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            executor = self._executor
        self._outcomes.put(None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- in Orthanc's received-instance callback -----------------------------------------------

    def received(self, data: bytes, origin: Any) -> tuple[Any, bytes | None]:
        """Screen, write durably, discard: Orthanc answers success, and stores nothing."""
        from_dicom = origin == self.orthanc.InstanceOrigin.DICOM_PROTOCOL
        if not from_dicom and self._posting is not None and data == self._posting:
            return self.orthanc.ReceivedInstanceAction.KEEP_AS_IS, None  # protected by this queue
        # A C-STORE is written while it is screened (the bytes a refusal leaves are removed).
        staged = self.storage.stage_beside(data, self._writer) if from_dicom else None
        screened = self.protector.screen(data, origin)
        if not isinstance(screened, Screened):
            if staged is not None:
                discard_staged(staged, self.storage)
            return screened  # refused with its status, or a stego object kept as it is
        token = new_token()
        with self._lock:
            self._last_received = time.monotonic()
        try:
            self.storage.move(staged.result() if staged is not None else self.storage.stage(data), "inbox", token)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            return self.protector._refuse(Refusal(OUT_OF_RESOURCES, f"cannot queue the object ({why})"),
                                          screened.new_uid, screened.sop_class, origin)
        self._submit(token, screened.new_uid)
        return self.orthanc.ReceivedInstanceAction.DISCARD, None

    # -- the worker pool -----------------------------------------------------------------------

    def _submit(self, token: str, new_uid: str) -> None:
        """Queue ``token`` for the dispatcher."""
        with self._lock:
            self._uids[token] = new_uid
            self._pending.append(token)
            self._lock.notify_all()

    def _capacity(self) -> int:
        """As the node's pool (:meth:`stegonode.node.workers.Workers._capacity`): one object in
        flight while C-STOREs arrive, so answering them keeps the CPU; every worker fed, with
        one object waiting each, otherwise."""
        if time.monotonic() - self._last_received < INGEST_QUIET_S:
            return 1
        return 2 * self.processes

    def _dispatch(self) -> None:
        with self._lock:
            while not self._stopping:
                if self._pending and self._in_flight < self._capacity():
                    token = self._pending.popleft()
                    self._in_flight += 1
                    self._run(token)
                else:
                    self._lock.wait(timeout=INGEST_QUIET_S)

    def _run(self, token: str) -> None:
        """Hand ``token`` to a worker process (called holding the lock)."""
        assert self._executor is not None
        try:
            future = self._executor.submit(protect_job, token)
        except BrokenProcessPool:  # a worker died: the pool is replaced
            self._executor = self._new_executor()
            future = self._executor.submit(protect_job, token)
        future.add_done_callback(lambda done: self._outcomes.put((token, done)))

    def _new_uid(self, token: str) -> str:
        """A leftover's new UID, for the log (the pipeline derives the same from its UID)."""
        try:
            ds = pydicom.dcmread(self.storage.path("inbox", token), stop_before_pixels=True)
            return job_key(self.protector.pseudonyms, ds.get("SOPInstanceUID"))
        except Exception:  # unreadable: the worker says why
            return "unknown"

    # -- the storer thread ---------------------------------------------------------------------

    def _store_loop(self) -> None:
        while (item := self._outcomes.get()) is not None:
            token, future = item
            try:
                self._finish(token, future)
            except Exception as exc:  # never let the thread die: the object stays queued
                log.error("queued object %s: not finished (%s); it is protected again at the next "
                          "start", token, type(exc).__name__)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._lock.notify_all()

    def _finish(self, token: str, future: Future) -> None:
        if future.cancelled():
            return  # stopping: the object stays in inbox/
        outcome = outcome_of(future)
        if outcome.reason is None:
            outcome = self._store(token, outcome)
        if outcome.reason is not None:
            self._failed(token, outcome.reason, outcome.permanent)
            return
        with self._lock:
            self._attempts.pop(token, None)
            self._uids.pop(token, None)

    def _store(self, token: str, outcome: Outcome) -> Outcome:
        """POST the protected object to Orthanc, then drop the queued original."""
        staged = Path(outcome.stored)
        with self._lock:
            if self._stopping:
                staged.unlink(missing_ok=True)
                return Outcome()
        try:
            self._posting = staged.read_bytes()
            answer = json.loads(self._post(self._posting))
        except (OSError, ValueError) as exc:  # HTTPError, URLError, a connection reset, not JSON
            return Outcome(reason=f"Orthanc did not store the protected object ({_why(exc)})")
        finally:
            self._posting = None
            staged.unlink(missing_ok=True)
        status = answer.get("Status") if isinstance(answer, dict) else None
        if status not in STORED:
            return Outcome(reason=f"Orthanc did not store the protected object ({status})", permanent=True)
        self.storage.path("inbox", token).unlink(missing_ok=True)
        steps = ", ".join(f"{name} {1000 * s:.0f}" for name, s in outcome.timings.items())
        log.info("protected %s with carriers %s (%s); stored: %s", outcome.attributes.get("SOPInstanceUID"),
                 outcome.carriers, steps, status)
        return outcome

    def _post(self, data: bytes) -> bytes:
        """``POST /instances`` over Orthanc's own HTTP port on loopback, not ``orthanc.RestApiPost``:
        that call keeps the GIL while Orthanc waits to run the received-instance callback, which
        a C-STORE thread may be running, waiting for the GIL (a deadlock, seen in Orthanc 1.10
        with orthanc-python 4.0). Over HTTP this thread waits without the GIL."""
        request = urllib.request.Request(f"{self.rest_url}/instances", data, method="POST",
                                         headers={"Content-Type": "application/dicom"})
        with urllib.request.urlopen(request, timeout=REST_TIMEOUT_S) as answer:
            return answer.read()

    def _failed(self, token: str, reason: str, permanent: bool) -> None:
        with self._lock:
            attempts = self._attempts.get(token, 0) + 1
            self._attempts[token] = attempts
            uid = self._uids.get(token, "unknown")
        if not permanent and attempts < self.max_attempts:
            delay = min(2.0 ** attempts, MAX_RETRY_DELAY_S)
            log.warning("queued object %s (new UID %s): attempt %d failed, retried in %.0f s: %s",
                        token, uid, attempts, delay, reason)
            timer = threading.Timer(delay, self._submit, (token, uid))
            timer.daemon = True
            timer.start()
            return
        self._quarantine(token, reason)
        with self._lock:
            self._attempts.pop(token, None)
            self._uids.pop(token, None)
        log.warning("queued object %s (new UID %s) quarantined after %d attempt(s): %s",
                    token, uid, attempts, reason)
        self._record_quarantined(token, uid, reason, attempts)

    def _record_quarantined(self, token: str, uid: str, reason: str, attempts: int) -> None:
        """The quarantined object in the node's index: ``stegonode status`` and the console
        list it. An index that cannot be reached loses only this listing (the object and its
        reason stay in quarantine/, the reason in Orthanc's log)."""
        try:
            if self._index is None:
                self._index = Index(self._database)
            self._index.record_quarantined(uid if uid != "unknown" else token, token, reason, attempts,
                                           holder=f"{QUEUE_HOLDER}{self.storage.root}")
        except Exception as exc:  # DatabaseError, SQLAlchemyError: never let the storer thread die
            log.error("queued object %s: quarantine not recorded in the index %s (%s)", token,
                      self._database.split("://", 1)[0], type(exc).__name__)

    def _quarantine(self, token: str, reason: str) -> None:
        """The reason first, then the object: a quarantined object always has its reason."""
        reason_file = self.storage.root / "quarantine" / f"{token}.txt"
        os.replace(self.storage.stage(f"{reason}\n".encode()), reason_file)
        inbox = self.storage.path("inbox", token)
        if inbox.exists():
            self.storage.move(inbox, "quarantine", token)


def _why(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _spawn_with_own_path(context: Any, python: str, python_path: list[str]) -> None:
    """Spawned workers run the virtual environment's interpreter with its own module path.

    Inside Orthanc, ``sys.executable`` is Orthanc and ``sys.path`` starts with the standard
    library of the Python Orthanc embeds (Debian's), which another build of Python 3.11 cannot
    import (Debian builds some of its modules in). multiprocessing hands the parent's
    ``sys.path`` to each child: dropped here, so the child keeps the path its interpreter and
    its site-packages give it (the editable install's finder included), with the launcher's
    ``PythonPath`` entries first, through ``PYTHONPATH``.
    """
    context.set_executable(python)
    if python_path:
        os.environ["PYTHONPATH"] = os.pathsep.join(python_path)
    if getattr(spawn.get_preparation_data, "stegonode", False):
        return
    original = spawn.get_preparation_data

    def preparation_data(name: str) -> dict[str, Any]:
        data = original(name)
        data.pop("sys_path", None)
        return data

    preparation_data.stegonode = True  # type: ignore[attr-defined]
    spawn.get_preparation_data = preparation_data


def quarantined(directory: Path) -> dict[str, str]:
    """The queue directory's quarantined objects: token -> reason."""
    return {path.stem: path.read_text().strip()
            for path in sorted((Path(directory) / "quarantine").glob("*.txt"))}
