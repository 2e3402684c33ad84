"""The running node: storage, index, worker pool and DICOM services, started and stopped together."""

from __future__ import annotations

import logging
from typing import Any

from pydicom import config as pydicom_config
from pydicom import dcmread

from stegonode.codecs import keys as keyfiles
from stegonode.handlers.pseudonyms import Pseudonymizer

from .index import Index
from .ingest import Ingest
from .scp import NodeServer
from .storage import NodePaths, Storage
from .workers import Workers

log = logging.getLogger("stegonode.node")


class Node:
    """``stegonode serve``: everything node.toml's [node] and [[peers]] tables describe."""

    def __init__(self, config: dict[str, Any]) -> None:
        # Objects are stored as received, so validating values as they are read could only
        # warn (quoting the value, which may identify someone) and costs about 5 % of a C-STORE.
        pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
        self.config = config
        self.paths = NodePaths.of(config["node"])
        self.paths.check()
        self.storage = Storage.create(self.paths.data_dir)
        self.index = Index(self.paths.database)
        keys = keyfiles.load_node_keys(self._keys())
        self.workers = Workers(self.index, self.storage, config, self.paths.keys)
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

    def stop(self) -> None:
        self.server.stop()
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
                uid = dcmread(path, stop_before_pixels=True).SOPInstanceUID
            except Exception:
                self.storage.move(path, "quarantine", path.stem)
                log.warning("inbox file %s unreadable: quarantined", path.stem)
                continue
            self.ingest.queue(self.ingest.pseudonyms.uid(str(uid)), path.stem, "")
        if orphans:
            log.info("queued %d inbox file(s) whose job was not yet recorded", len(orphans))
