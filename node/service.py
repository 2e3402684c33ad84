"""The running node: storage, index, worker pool and DICOM services, started and stopped together."""

from __future__ import annotations

import logging
import threading
from typing import Any

from stegonode.codecs import keys as keyfiles
from stegonode.codecs.errors import InputError
from stegonode.handlers.dicomfile import configure_pydicom, read_dicom
from stegonode.handlers.pseudonyms import Pseudonymizer

from .index import Index
from .ingest import Ingest
from .scp import NodeServer
from .segwriter import Segmentations
from .storage import NodePaths, Storage
from .workers import Workers

log = logging.getLogger("stegonode.node")


class Node:
    """``stegonode serve``: everything node.toml's [node] and [[peers]] tables describe."""

    def __init__(self, config: dict[str, Any]) -> None:
        configure_pydicom()
        threading.excepthook = _thread_failed
        self.config = config
        self.paths = NodePaths.of(config["node"])
        self.paths.check()
        self.storage = Storage.create(self.paths.data_dir)
        self.index = Index(self.paths.database)
        keys = keyfiles.load_node_keys(self._keys())
        self.workers = Workers(self.index, self.storage, config, self.paths.keys)
        self.segmentations = Segmentations(
            self.index, self.storage, self.workers.run, float(config["node"]["seg_stable_seconds"]),
            keys.pixel_cipher_key) if config["node"]["seg"] else None
        self.ingest = Ingest(self.storage, self.index, Pseudonymizer(keys.pseudonym_key), self.workers)
        self.server = NodeServer(config, self.index, self.ingest)

    def _keys(self):
        """The node.keys path; on first start without configured keys, a new key pair."""
        if self.paths.generate_keys and not self.paths.keys.exists():
            _, peer = keyfiles.generate(self.paths.keys.parent)
            log.warning("generated a new key pair; give %s to the peer that reveals, then delete "
                        "it here (the node needs only %s)", peer, self.paths.keys)
        return self.paths.keys

    def start(self) -> None:
        self.adopt_inbox()
        self.server.start()  # first: a port already in use stops start-up before workers spawn
        self.workers.start()
        if self.segmentations is not None:
            self.segmentations.start()

    def stop(self) -> None:
        self.server.stop()
        if self.segmentations is not None:
            self.segmentations.stop()
        self.workers.stop()

    def adopt_inbox(self) -> None:
        """Queue inbox files that have no job: their commit was lost to a power cut.

        Files reach the inbox only complete (temporary name, fsync, rename), so each one is a
        whole object; its job is what an unsynchronized index commit can lose.
        """
        needed = self.index.tokens()
        orphans = [p for p in (self.storage.root / "inbox").glob("*.dcm") if p.stem not in needed]
        for path in orphans:
            try:
                uid = read_dicom(path).SOPInstanceUID
            except InputError:
                self.storage.move(path, "quarantine", path.stem)
                log.warning("inbox file %s unreadable: quarantined", path.stem)
                continue
            self.ingest.queue(self.ingest.pseudonyms.uid(str(uid)), path.stem, "")
        if orphans:
            log.info("queued %d inbox file(s) whose job was not yet recorded", len(orphans))


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    """An exception that ended a thread (pynetdicom's included): one line, never a traceback,
    whose last line could quote a received value."""
    name = args.thread.name if args.thread is not None else "a thread"
    log.error("%s ended with %s", name, args.exc_type.__name__)
