"""Files under the node's data directory, written so that a crash never leaves a partial file.

Layout (no file name carries patient data: received objects are named by a random token,
stored objects by their new, pseudonymous SOP Instance UID)::

    DATA_DIR/inbox/<token>.dcm          received bytes, waiting for a worker
    DATA_DIR/stored/<uid>.dcm           protected (stego) objects: what the node serves
    DATA_DIR/originals/<uid>.dcm        received originals, only with node.keep_originals
    DATA_DIR/quarantine/<token>.dcm     objects whose processing failed for good
    DATA_DIR/tmp/                       files being written; emptied on start
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stegonode.codecs.errors import ConfigError
from stegonode.codecs.keys import NODE_FILE

AREAS = ("inbox", "stored", "originals", "quarantine", "tmp")


@dataclass(frozen=True)
class Storage:
    """The node's data directory and the durable writes into it."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> "Storage":
        """Make the areas, and drop half-written files a crash left in tmp/."""
        storage = cls(Path(root))
        for area in AREAS:
            (storage.root / area).mkdir(parents=True, exist_ok=True)
        for leftover in (storage.root / "tmp").iterdir():
            leftover.unlink()
        return storage

    def path(self, area: str, name: str) -> Path:
        return self.root / area / f"{name}.dcm"

    def write(self, area: str, name: str, data: bytes) -> Path:
        """Write ``data`` as ``area/name.dcm`` atomically and durably (temp, fsync, rename)."""
        tmp = self.root / "tmp" / f"{secrets.token_hex(8)}.part"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        target = self.path(area, name)
        os.replace(tmp, target)
        _fsync_directory(target.parent)
        return target

    def move(self, source: Path, area: str, name: str) -> Path:
        """Rename ``source`` into ``area`` (same file system: atomic) and make it durable."""
        target = self.path(area, name)
        os.replace(source, target)
        _fsync_directory(target.parent)
        return target


def new_token() -> str:
    """A random name for a received object: unguessable and free of patient data."""
    return secrets.token_hex(16)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class NodePaths:
    """Where node.toml's [node] table puts the data directory, the index and the keys."""

    data_dir: Path
    database: Path
    keys: Path
    generate_keys: bool

    @classmethod
    def of(cls, node: dict[str, Any]) -> "NodePaths":
        data_dir = Path(node["data_dir"])
        database = Path(node["database"].removeprefix("sqlite:///")) if node["database"] else (
            data_dir / "index.sqlite"
        )
        if node["keys"]:
            return cls(data_dir, database, Path(node["keys"]), generate_keys=False)
        return cls(data_dir, database, data_dir / "keys" / NODE_FILE, generate_keys=True)

    def check(self) -> None:
        """Configured key files must exist; generated ones are made on first start."""
        if not self.generate_keys and not self.keys.is_file():
            raise ConfigError(f"node.keys = {str(self.keys)!r}: no such key file")
