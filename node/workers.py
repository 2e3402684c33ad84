"""The worker pool: queued jobs run through the protect pipeline in separate processes.

Processing happens off the association threads (and off the GIL): a dispatcher thread claims
due jobs from the index, hands each inbox file to a worker process, and records the outcome.
A pool may run inside ``stegonode serve`` or alone (``stegonode worker``, a worker host), and
any number of pools may share one index and one storage directory: each claimed job is held
under a lease that the pool's heartbeat thread renews; the jobs of a pool whose lease ran out
(its host died) are taken over by a live pool and count as a failed attempt.
A worker writes the stored object durably before the index marks the job done, and the inbox
file is removed only after that commit, so a crash at any point repeats work, never loses it.
An object the pipeline refuses (too small a background, undecodable pixels), and any other
failure that comes from the object itself, is quarantined at once with the reason: it would
fail the same way again. Only failures of the environment (a worker that died, a full disk,
memory) are retried up to node.max_attempts times with a growing delay, then quarantined.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from stegonode.codecs.keys import load_node_keys
from stegonode.dicom.dicomfile import configure_pydicom
from stegonode.errors import ENVIRONMENT_FAILURES, Failure, WorkerStartError
from stegonode.handlers.pipeline import Pipeline, describe_carriers, pipeline_for
from stegonode.handlers.protect import protect_object
from stegonode.handlers.protection import read_protection

from .config import Config
from .index import ATTRIBUTES, Index, Job
from .keyring import key_ids_of
from .native import release_memory
from .storage import HOST, ObjectStore, open_store, process_alive

log = logging.getLogger("stegonode.jobs")
INGEST_QUIET_S = 0.25  # no C-STORE for this long: the burst is over, use every worker
# While C-STOREs arrive, jobs run only on the cores no receiver needs (none with as many
# associations open as receivers or cores) for up to this long, then at least one at a time: so
# that protection, which slows a busy receiver even at a lower CPU priority (memory bandwidth,
# caches, the disk), waits for the burst to end, and never starves behind one that does not end.
RECEIVING_FIRST_S = 10.0
WARM_TIMEOUT_S = 120.0  # worker processes loading the pipeline at start


@dataclass
class Outcome:
    """What a worker reports back: the stored object's index attributes, or why it failed."""

    reason: str | None = None
    permanent: bool = False  # the object itself is the problem: retrying cannot help
    attributes: dict[str, str] = field(default_factory=dict)
    transfer_syntax: str = ""
    stored: str = ""  # the protected object staged (ObjectStore.stage; published as stored/ by the pool)
    timings: dict[str, float] = field(default_factory=dict)
    carriers: str = ""  # e.g. "pixels+header", or "header" when the background was too small
    key_ids: str = ""  # the ids of the keys that sealed it (keyring.key_ids_of), space-separated
    identity_residues: int = 0  # identity occurrences the residual-identity check removed


# -- in the worker process -------------------------------------------------------------------

# After an object larger than this, a worker hands freed memory back (see release_memory).
LARGE_OBJECT_BYTES = 32 << 20
_pipeline: Pipeline | None = None
_storage: ObjectStore | None = None


def _start_worker(config: Config, keys_path: Path, data_dir: Path, log_level: str) -> None:
    global _pipeline, _storage
    os.nice(10)  # answering C-STORE comes first; protecting catches up in the background
    # One job at a time per worker, so one compute thread each (read when the networks load into
    # ONNX Runtime, see stegonode.models.foreground.onnx_threads): otherwise every worker starts
    # a thread per core, and workers contend with each other and with the association threads.
    os.environ["OMP_NUM_THREADS"] = "1"
    # The node's log settings and pydicom settings: spawned processes start with neither, and
    # pydicom's warnings, which quote values, would reach the node's log verbatim.
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure_pydicom()
    keys = load_node_keys(keys_path)
    _pipeline = pipeline_for(config, keys)
    _storage = open_store(config, Path(data_dir), create=False)


def worker_store() -> ObjectStore:
    """This worker process's storage (what the pool's storage opens, in this process)."""
    assert _storage is not None, "worker not started"
    return _storage


def _answer() -> int:
    """A warm-up task: which process ran it (held briefly, so the next task finds another)."""
    time.sleep(0.05)
    return os.getpid()


def protect_job(token: str) -> Outcome:
    """Protect one inbox object into a staged stored object; after a large object, give the
    memory it took back to the system."""
    assert _storage is not None, "worker not started"
    try:
        received = _storage.read(_storage.key("inbox", token))  # in memory, never on this host's disk
    except ENVIRONMENT_FAILURES as exc:
        return _not_now(exc)
    large = len(received) > LARGE_OBJECT_BYTES
    try:
        return _protect(received)
    finally:
        del received
        if large:
            release_memory()


def _not_now(exc: BaseException) -> Outcome:
    """A failure of the disk, the object store or the memory: another attempt may succeed."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return Outcome(reason=f"cannot protect now ({why})")


def _protect(received: bytes) -> Outcome:
    assert _pipeline is not None and _storage is not None, "worker not started"
    try:
        protected = protect_object(received, _pipeline)
        # Staged, not yet stored: the pool publishes it only if this copy is still the newest
        # acknowledged one when it finishes (Index.finish).
        stored = str(_storage.stage(protected.data))
        protection = read_protection(protected.dataset)
        carriers, key_ids = describe_carriers(protection), " ".join(sorted(key_ids_of(protection)))
    except Exception as exc:  # a worker reports, never dies: stegonode.errors decides the rest
        failure = Failure.of(exc)
        return Outcome(reason=failure.reason, permanent=not failure.transient)
    ds = protected.dataset
    attributes = {keyword: str(ds.get(keyword, "") or "") for keyword in ATTRIBUTES}
    return Outcome(
        attributes=attributes,
        transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
        stored=stored,
        timings=protected.timings,
        carriers=carriers,
        key_ids=key_ids,
        identity_residues=int(protected.report.get("identity_residues_removed", 0)),
    )


def outcome_of(future: Future) -> Outcome:
    """A finished worker task's Outcome; a worker process that died (the memory, a signal) is a
    failure of the environment, retried; any other exception is judged as the worker would."""
    try:
        return future.result()
    except BrokenProcessPool:
        return Outcome(reason="worker process died while protecting")
    except Exception as exc:
        failure = Failure.of(exc)
        return Outcome(reason=failure.reason, permanent=not failure.transient)


def warm_up(executor: ProcessPoolExecutor, processes: int, hint: str = "") -> None:
    """Rounds of short tasks until each of ``processes`` worker processes has answered (each
    loads the pipeline as it starts); WorkerStartError if one cannot, within WARM_TIMEOUT_S."""
    deadline = time.monotonic() + WARM_TIMEOUT_S
    answered: set[int] = set()
    try:
        while len(answered) < processes and time.monotonic() < deadline:
            rounds = [executor.submit(_answer) for _ in range(processes)]
            answered |= {future.result(timeout=WARM_TIMEOUT_S) for future in rounds}
    except (BrokenProcessPool, TimeoutError) as exc:
        executor.shutdown(wait=False, cancel_futures=True)
        raise WorkerStartError(f"worker processes could not load the protect pipeline "
                               f"({type(exc).__name__}{hint})") from None


# -- in the node process ---------------------------------------------------------------------


class Workers:
    """Dispatches queued jobs to a process pool and records their outcomes in the index."""

    def __init__(
        self, index: Index, storage: ObjectStore, config: Config, keys_path: Path,
        data_dir: Path,
    ) -> None:
        node = config["node"]
        self.index = index
        self.storage = storage
        self.processes = int(node["workers"])
        self.max_attempts = int(node["max_attempts"])
        self.keep_originals = bool(node["keep_originals"])
        self.lease_s = float(node["lease_seconds"])
        self.pool = f"{HOST}/{os.getpid()}/{secrets.token_hex(4)}"
        self._initargs = (config, keys_path, data_dir, node["log_level"])
        self._executor: ProcessPoolExecutor | None = None
        self._held: dict[str, Job] = {}  # in flight, by new SOP Instance UID: leases renewed
        self._last_received = 0.0
        self._burst_started = 0.0  # the first C-STORE after a quiet spell
        self.cores = len(os.sched_getaffinity(0))
        self.receivers = 1  # receiver processes of this node (Node sets them with the ledger)
        self.associations: Callable[[], int] = lambda: 0  # open ones, node-wide (Node sets it)
        self._lock = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._dispatch, name="dispatcher", daemon=True)
        self._heart = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._stopped = threading.Event()

    def start(self) -> None:
        interrupted = self.index.register_pool(self.pool, HOST, os.getpid(), self.processes, process_alive)
        if interrupted:
            log.info("%d job(s) of a stopped pool on this host go back to the queue", interrupted)
        self._executor = self._new_executor()
        self._warm()
        self._thread.start()
        self._heart.start()
        log.info("worker pool %s: %d process(es), lease %.0f s", self.pool, self.processes, self.lease_s)

    def _warm(self) -> None:
        """Start every worker process and wait until each has loaded the pipeline and its
        networks (about a second of CPU each): the node starts listening only once it can
        protect, and a pipeline that cannot load stops start-up with a reason instead of
        failing every job. The pool starts a process per task submitted while none is idle;
        rounds of short tasks, until every process has answered."""
        assert self._executor is not None
        warm_up(self._executor, self.processes, "; their log lines above say why")

    def _new_executor(self) -> ProcessPoolExecutor:
        # One BLAS thread per worker: the pool is the parallelism, and spinning BLAS threads
        # of several workers fight over the same cores (measured: half the throughput).
        # Spawned children inherit the environment and read it when they import numpy.
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, "1")
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),  # threads + fork do not mix
            initializer=_start_worker,
            initargs=self._initargs,
        )

    def wake(self) -> None:
        """A job was queued: dispatch without waiting for the next poll."""
        with self._lock:
            now = time.monotonic()
            if now - self._last_received >= INGEST_QUIET_S:
                self._burst_started = now
            self._last_received = now
            self._lock.notify()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()
        self._thread.join()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._stopped.set()  # leases renewed until the jobs in progress are recorded
        self._heart.join()
        released = self.index.release(self.pool)
        if released:
            log.info("%d job(s) not started go back to the queue", released)

    def _beat(self) -> None:
        """Renew the leases of the jobs held, and take over jobs whose holder died."""
        while True:
            with self._lock:
                held = list(self._held)
            try:
                self.index.heartbeat(self.pool, held, self.lease_s)
                for job in self.index.take_expired(self.pool, self.lease_s):
                    self._failed(job, f"worker pool {job.holder} stopped renewing its lease", False)
            except SQLAlchemyError as exc:
                log.error("heartbeat: index unavailable (%s)", type(exc).__name__)
            if self._stopped.wait(timeout=self.lease_s / 3):
                return

    def run(self, function: Callable[..., Any], *args: Any) -> Future:
        """Run ``function(*args)`` in a worker process (started workers have the pipeline loaded)."""
        assert self._executor is not None, "workers not started"
        try:
            return self._executor.submit(function, *args)
        except BrokenProcessPool:
            self._executor = self._new_executor()
            return self._executor.submit(function, *args)

    def _capacity(self) -> int:
        """Jobs in flight: while C-STOREs are arriving, one per core that no receiver is busy
        on (a receiver takes a core per open association, up to the receivers there are), so
        answering them keeps the CPU (and the disk); at least one once they have been arriving
        for RECEIVING_FIRST_S; every worker fed, with one job queued each, once they stop."""
        now = time.monotonic()
        if now - self._last_received >= INGEST_QUIET_S:
            return 2 * self.processes
        busy = min(self.associations(), self.receivers, self.cores)
        free = min(self.cores - busy, self.processes)
        return max(free, 1) if now - self._burst_started >= RECEIVING_FIRST_S else free

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                capacity = self._capacity()
                free = capacity - len(self._held)
            try:
                jobs = self.index.claim(self.pool, free, self.lease_s) if free > 0 else []
            except SQLAlchemyError as exc:
                log.error("cannot claim jobs: index unavailable (%s)", type(exc).__name__)
                jobs = []
            for job in jobs:
                self._submit(job)
            with self._lock:
                if not self._stopping and (not jobs or len(self._held) >= capacity):
                    self._lock.wait(timeout=INGEST_QUIET_S)

    def _submit(self, job: Job) -> None:
        assert self._executor is not None
        with self._lock:
            self._held[job.sop_instance_uid] = job
        try:
            future = self._executor.submit(protect_job, job.token)
        except BrokenProcessPool:
            self._executor = self._new_executor()
            future = self._executor.submit(protect_job, job.token)
        future.add_done_callback(lambda done: self._record(job, done))

    def _record(self, job: Job, future: Future) -> None:
        if future.cancelled():  # stopping: the job goes back to the queue (release)
            with self._lock:
                self._held.pop(job.sop_instance_uid, None)
            return
        outcome = outcome_of(future)
        try:
            if outcome.reason is None:
                self._succeeded(job, outcome)
            else:
                self._failed(job, outcome.reason, outcome.permanent)
        except (SQLAlchemyError, OSError) as exc:
            what = "index" if isinstance(exc, SQLAlchemyError) else "storage"
            log.error("job %s: outcome not recorded, %s unavailable (%s); the job returns "
                      "to the queue when its lease ends", job.sop_instance_uid, what, type(exc).__name__)
        finally:
            with self._lock:
                self._held.pop(job.sop_instance_uid, None)
                self._lock.notify()

    def _succeeded(self, job: Job, outcome: Outcome) -> None:
        staged = outcome.stored
        uid = outcome.attributes.get("SOPInstanceUID") or job.sop_instance_uid
        try:
            finish = self.index.finish(job, self.pool, outcome.attributes, outcome.transfer_syntax,
                                       lambda: self.storage.move(staged, "stored", uid), outcome.carriers,
                                       outcome.key_ids, outcome.identity_residues)
        except BaseException:
            with contextlib.suppress(OSError):  # the storage may be what failed
                self.storage.discard(staged)
            raise
        if finish != "done":
            self.storage.discard(staged)  # not to be published (a published one was moved away)
        if finish == "taken":  # another pool holds the job (and its inbox file) now
            log.warning("job %s: lease lost while protecting; another pool finishes it",
                        job.sop_instance_uid)
            return
        if finish == "replaced":  # a newer copy was acknowledged meanwhile: it is the outcome
            self.storage.delete(self.storage.key("inbox", job.token))
            log.info("job %s: a newer copy was received while this one was protected; "
                     "the newer copy is stored", job.sop_instance_uid)
            return
        if self.keep_originals and finish == "done":
            self.storage.relocate("inbox", job.token, "originals", job.sop_instance_uid)
        else:
            self.storage.delete(self.storage.key("inbox", job.token))
        steps = ", ".join(f"{name} {1000 * s:.0f}" for name, s in outcome.timings.items())
        log.info("job %s: stored with carriers %s in %.0f ms (%s); identity residues removed: %d",
                 job.sop_instance_uid, outcome.carriers, 1000 * sum(outcome.timings.values()), steps,
                 outcome.identity_residues)

    def _failed(self, job: Job, reason: str, permanent: bool) -> None:
        state = self.index.fail(job, self.pool, reason, 1 if permanent else self.max_attempts)
        if state == "replaced":  # a newer copy is queued: this one's inbox file is not needed
            self.storage.delete(self.storage.key("inbox", job.token))
            log.warning("job %s: attempt failed, a newer copy is queued: %s", job.sop_instance_uid, reason)
        elif state == "taken":
            log.warning("job %s: attempt failed after another pool took the job over: %s",
                        job.sop_instance_uid, reason)
        elif state == "quarantined":
            try:
                self.storage.relocate("inbox", job.token, "quarantine", job.token)
            except FileNotFoundError:
                pass  # already gone
            except OSError as exc:  # the storage is unavailable: the object stays where it is
                log.error("job %s: quarantined, its object stays in inbox/ (%s)", job.sop_instance_uid,
                          exc.strerror or type(exc).__name__)
            log.warning("job %s: quarantined after %d attempt(s): %s",
                        job.sop_instance_uid, job.attempts + 1, reason)
        else:
            log.warning("job %s: attempt %d failed, will retry: %s",
                        job.sop_instance_uid, job.attempts + 1, reason)
