"""The running node: storage, index, worker pool and DICOM services, started and stopped together."""

from __future__ import annotations

import logging
from typing import Any

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
        self.config = config
        self.paths = NodePaths.of(config["node"])
        self.paths.check()
        self.storage = Storage.create(self.paths.data_dir)
        self.index = Index(self.paths.database)
        keys = keyfiles.load_node_keys(self._keys())
        self.workers = Workers(self.index, self.storage, config, self.paths.keys)
        ingest = Ingest(self.storage, self.index, Pseudonymizer(keys.pseudonym_key), self.workers)
        self.server = NodeServer(config, self.index, ingest)

    def _keys(self):
        """The node.keys path; on first start without configured keys, a new key pair."""
        if self.paths.generate_keys and not self.paths.keys.exists():
            _, peer = keyfiles.generate(self.paths.keys.parent)
            log.warning("generated a new key pair; give %s to the peer that reveals, then delete "
                        "it here (the node needs only %s)", peer, self.paths.keys)
        return self.paths.keys

    def start(self) -> None:
        self._drop_orphans()
        self.workers.start()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.workers.stop()

    def _drop_orphans(self) -> None:
        """Inbox files no job refers to were never acknowledged (a crash before the commit)."""
        needed = self.index.tokens()
        orphans = [p for p in (self.storage.root / "inbox").glob("*.dcm") if p.stem not in needed]
        for path in orphans:
            path.unlink()
        if orphans:
            log.info("removed %d unacknowledged inbox file(s) left by a crash", len(orphans))
