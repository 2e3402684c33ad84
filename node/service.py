"""The running node: storage, index, worker pool and DICOM services, started and stopped together.

``stegonode serve`` runs a :class:`Node` (a receiver, with its own worker pool unless
``node.workers = 0``); ``stegonode worker`` runs a :class:`WorkerHost` (a pool, no listener).
Any number of both may share one index (PostgreSQL) and one storage directory.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path

from stegonode.codecs import keys as keyfiles
from stegonode.codecs.keys import NodeKeys
from stegonode.dicom.dicomfile import configure_pydicom, read_dicom
from stegonode.errors import ConfigError, InputError
from stegonode.handlers.admission import Policy
from stegonode.handlers.pipeline import PipelineContext, max_object_bytes, pixels_only_notice, pseudonymizer
from stegonode.handlers.seal import header_of

from . import audit
from .admission import AcceptBalance, SharedLedger
from .config import Config
from .index import Index
from .ingest import Ingest, job_key
from .receivers import Receivers, receiver_count
from .scp import NodeServer
from .segwriter import Segmentations
from .storage import NodePaths, ObjectStore, open_store
from .workers import Workers

log = logging.getLogger("stegonode.node")


class _Host:
    """What every host of a node opens: its data directory, the index and the keys."""

    def __init__(self, config: Config) -> None:
        configure_pydicom()
        threading.excepthook = _thread_failed
        self.config = config
        self.paths = NodePaths.of(config["node"])
        self.paths.check()
        self.storage = open_store(config, self.paths.data_dir)
        self.index = Index(self.paths.database)

    def _workers(self) -> Workers | None:
        if int(self.config["node"]["workers"]) == 0:
            return None
        return Workers(self.index, self.storage, self.config, self.paths.keys, self.paths.data_dir)


def build_ingest(config: Config, keys: NodeKeys, storage: ObjectStore, index: Index,
                 wake: Callable[[], None]) -> Ingest:
    """The C-STORE (and STOW-RS) path of a receiver: the keyed job names, the admission policy
    and the size limit node.toml sets (a carrier it cannot write stops it here)."""
    header = PipelineContext(config.handlers, keys, config.pipeline.carriers).shared(header_of)
    return Ingest(storage, index, pseudonymizer(config.handlers, keys), wake,
                  Policy.of(config.handlers, header is not None), max_object_bytes(config))


class Node(_Host):
    """``stegonode serve``: everything node.toml's [node] and [[peers]] tables describe."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        keys = keyfiles.load_node_keys(self._keys())
        # a carrier it cannot write, or a recipient file it cannot read, stops start-up
        PipelineContext(config.handlers, keys, config.pipeline.carriers).shared(header_of)
        notice = pixels_only_notice(config["pipeline"]["carriers"], keys)
        if notice:
            log.warning(notice)
        self.workers = self._workers()
        wake = self.workers.wake if self.workers is not None else (lambda: None)
        # SEGs are written by this node's worker pool: a receiver with workers = 0 writes none.
        self.segmentations = Segmentations(
            self.index, self.storage, self.workers.run, float(config["node"]["seg_stable_seconds"]),
            keys.pixel_cipher_key) if config["node"]["seg"] and self.workers is not None else None
        self.ingest = build_ingest(config, keys, self.storage, self.index, wake)
        self.receivers = _receivers(config, wake)
        self.server = NodeServer(config, self.index, self.ingest, self.storage,
                                 self.receivers.ledger if self.receivers else None,
                                 balance=self.receivers.balance if self.receivers else None)
        self.server.audit.add_sink(lambda event: self.index.record_audit(audit.index_record(event)))
        if self.workers is not None:  # jobs during a burst use the cores the receivers leave
            self.workers.receivers = 1 + (self.receivers.count if self.receivers else 0)
            self.workers.associations = self.server.admission.ledger.count

    def _keys(self) -> Path:
        """The node.keys path; on first start without configured keys, a new key pair."""
        if self.paths.generate_keys and not self.paths.keys.exists():
            _, peer = keyfiles.generate(self.paths.keys.parent)
            log.warning("generated a new key pair; give %s to the peer that reveals, then delete "
                        "it here (the node needs only %s)", peer, self.paths.keys)
        return self.paths.keys

    def start(self) -> None:
        self.adopt_inbox()
        # Workers first (they load the pipeline, about a second): the node listens once it can
        # protect. A port already in use then stops start-up with the workers started.
        if self.workers is not None:
            self.workers.start()
        try:
            self.server.start(self.receivers.start if self.receivers else None)
        except BaseException:
            if self.workers is not None:
                self.workers.stop()
            raise
        if self.segmentations is not None:
            self.segmentations.start()
        self.server.audit.record(audit.Event("config", user="stegonode serve", detail="configuration loaded"))
        self.server.audit.record(audit.Event("start", user="stegonode serve"))

    def stop(self) -> None:
        if self.receivers is not None:
            self.receivers.stop()  # before the socket they share is shut
        self.server.stop()
        self.server.audit.record(audit.Event("stop", user="stegonode serve"))
        self.server.audit.close()
        if self.segmentations is not None:
            self.segmentations.stop()
        if self.workers is not None:
            self.workers.stop()
        self.index.close()

    def adopt_inbox(self) -> None:
        """Queue inbox files that have no job: their commit was lost to a power cut.

        Files reach the inbox only complete (temporary name, fsync, rename), so each one is a
        whole object; its job is what an unsynchronized index commit can lose. In a cluster
        another receiver may be recording a file listed here at this moment: queueing a file
        whose job is recorded changes nothing (:meth:`Index.enqueue`).
        """
        needed = self.index.tokens()
        orphans = [token for token in self.storage.names("inbox") if token not in needed]
        for token in orphans:
            try:
                uid = read_dicom(self.storage.read(self.storage.key("inbox", token))).SOPInstanceUID
            except FileNotFoundError:
                continue  # processed and removed meanwhile by a worker of another host
            except InputError:
                self.storage.relocate("inbox", token, "quarantine", token)
                log.warning("inbox file %s unreadable: quarantined", token)
                continue
            self.ingest.queue(job_key(self.ingest.pseudonyms, uid), token, "")
        if orphans:
            log.info("queued %d inbox file(s) whose job was not yet recorded", len(orphans))


def _receivers(config: Config, wake: Callable[[], None]) -> Receivers | None:
    """The receiver processes beside the main one that node.receivers asks for, if any."""
    count = receiver_count(config["node"])
    if count <= 1:
        return None
    context = multiprocessing.get_context("spawn")
    ledger = SharedLedger.create(context, int(config["node"]["max_associations"]))
    return Receivers(config, count - 1, ledger, AcceptBalance.create(context, count), wake)


class WorkerHost(_Host):
    """``stegonode worker``: a worker pool on the shared index and storage, no DICOM listener."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        if not self.paths.keys.is_file():
            raise ConfigError(f"no node.keys at {self.paths.keys}: a worker host uses the "
                              "receivers' keys; set node.keys to that file")
        keyfiles.load_node_keys(self.paths.keys)  # a wrong file stops start-up, not each job
        workers = self._workers()
        if workers is None:
            raise ConfigError("node.workers = 0: stegonode worker needs at least one process")
        self.workers = workers

    def start(self) -> None:
        self.workers.start()

    def stop(self) -> None:
        self.workers.stop()
        self.index.close()


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    """An exception that ended a thread (pynetdicom's included): one line, never a traceback,
    whose last line could quote a received value."""
    name = args.thread.name if args.thread is not None else "a thread"
    log.error("%s ended with %s", name, args.exc_type.__name__)
