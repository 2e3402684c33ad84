"""Where objects live: the node's data directory, written so that a crash never leaves a partial file.

Layout (no file name carries patient data: received objects are named by a random token,
stored objects by their new, pseudonymous SOP Instance UID)::

    DATA_DIR/inbox/<token>.dcm          received bytes, waiting for a worker
    DATA_DIR/stored/<uid>.dcm           protected (stego) objects: what the node serves
    DATA_DIR/originals/<uid>.dcm        received originals, only with node.keep_originals
    DATA_DIR/quarantine/<token>.dcm     objects whose processing failed for good
    DATA_DIR/tmp/                       files being written (<host>.<pid>.<random>.part)

Several hosts may share the directory (receivers and worker hosts of a cluster, e.g. over NFS):
the index names stored objects by key (``stored/<uid>.dcm``), not by path, so each host may
mount it where it likes. What the file system must guarantee:

* ``rename`` within the directory is atomic: a reader sees the old file or the new one, never a
  mix (every write goes to tmp/ first, then is renamed into its area: one file system);
* ``fsync`` of a file and of a directory makes its data and the rename durable before the call
  returns (NFS: the server commits on fsync/close; do not mount with ``async``-on-server
  exports or ``nolock``-style shortcuts that drop this);
* a file renamed into place on one host is readable by path on another once the renaming
  host's index commit is visible (NFS close-to-open consistency gives this).

:class:`ObjectStore` is the whole interface the node uses; with ``[storage] url`` set, an
S3-compatible object store takes the place of the directory (:mod:`stegonode.node.s3store`,
docs/object-store.md).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from stegonode.codecs.keys import NODE_FILE
from stegonode.errors import ConfigError

AREAS = ("inbox", "stored", "originals", "quarantine", "tmp")
HOST = socket.gethostname()
STALE_TMP_S = 86400.0  # another host's half-written file this old is a leftover of a crash


class ObjectStore(Protocol):
    """What the node needs of storage: whole objects by area and name, written atomically and
    durably. A key (``area/name.dcm``) names an object in every implementation: the index
    records keys, never paths. Implementations: :class:`Storage` (a directory) and
    :class:`stegonode.node.s3store.S3Store` (an S3-compatible object store). Every failure to
    reach the storage is an OSError (FileNotFoundError for an object that is not there)."""

    def key(self, area: str, name: str) -> str:
        """The key of ``name`` in ``area``."""

    def write(self, area: str, name: str, data: bytes) -> str:
        """Store ``data`` as ``name`` in ``area``, atomically and durably; return its key."""

    def stage(self, data: bytes) -> str:
        """Store ``data`` durably where no reader looks; return a reference for :meth:`move`
        (or :meth:`discard`). A staged object of a process that died is swept at a start."""

    def move(self, source: str, area: str, name: str) -> str:
        """Publish a staged object (a :meth:`stage` reference) as ``name`` in ``area``,
        atomically (a reader sees the old object or the new one); return its key."""

    def discard(self, source: str) -> None:
        """Drop a staged object that is not to be published (gone already: nothing)."""

    def relocate(self, area: str, name: str, to_area: str, to_name: str) -> str:
        """Move an object to another area (inbox to quarantine or originals); return its key."""

    def delete(self, key: str) -> None:
        """Remove an object (gone already: nothing)."""

    def read(self, key: str) -> bytes:
        """The whole object (in memory: received objects never touch another host's disk)."""

    def open(self, key: str) -> BinaryIO:
        """A stream of the object (for sending it on without holding it whole)."""

    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A local file of the object while the context lasts (what pynetdicom sends from)."""

    def names(self, area: str) -> list[str]:
        """The names of the objects in ``area``."""

    def location(self, key: str) -> str:
        """Where an object is, for an admin (a path, or an s3:// URL)."""


@dataclass(frozen=True)
class Storage:
    """A data directory on a local or shared file system (see the module's guarantees)."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> Storage:
        """Make the areas, and drop half-written files crashed processes left in tmp/."""
        storage = cls(Path(root))
        for area in AREAS:
            (storage.root / area).mkdir(parents=True, exist_ok=True)
        storage.sweep_tmp()
        return storage

    def sweep_tmp(self) -> None:
        """Remove tmp/ files whose writer is gone: a process of this host that no longer runs,
        or any file a day old (another host's crash). Writers still running keep theirs."""
        for leftover in (self.root / "tmp").iterdir():
            writer = leftover.name.removesuffix(".part").rsplit(".", 2)  # host, pid, random
            try:
                if len(writer) < 3:  # a release before clusters: it ran alone, and has stopped
                    gone = True
                else:
                    gone = writer[0] == HOST and writer[1].isdigit() and not process_alive(int(writer[1]))
                if gone or time.time() - leftover.stat().st_mtime > STALE_TMP_S:
                    leftover.unlink()
            except FileNotFoundError:
                pass  # another host swept it first

    def key(self, area: str, name: str) -> str:
        return f"{area}/{name}.dcm"

    def path(self, area: str, name: str) -> Path:
        return self.local_path(self.key(area, name))

    def local_path(self, key: str) -> Path:
        return self.root / key

    def names(self, area: str) -> list[str]:
        return [path.stem for path in (self.root / area).glob("*.dcm")]

    def write(self, area: str, name: str, data: bytes) -> str:
        """Write ``data`` as ``area/name.dcm`` atomically and durably (temp, fsync, rename)."""
        return self.move(self.stage(data), area, name)

    def stage(self, data: bytes) -> str:
        """Write ``data`` to a new file in tmp/, durably; :meth:`move` publishes it (its path)."""
        tmp = self._tmp_path()
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return str(tmp)

    def stage_beside(self, data: bytes, syncers: Executor) -> Future[str]:
        """:meth:`stage`, its fsync running in ``syncers`` while the caller goes on; the future
        gives the path once the file is durable (or the OSError that stopped it).

        The bytes are written here (into the page cache; the write releases the GIL) and the call
        returns once the fsync has begun. That wait is the point: a pool thread needs the GIL to
        begin the fsync, and a caller busy in Python code (checking the object) keeps the GIL
        for up to the interpreter's switch interval, 5 ms, longer than the check and the fsync
        together, so without it the fsync would begin only when the caller blocks on its result.
        """
        tmp = self._tmp_path()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            return _failed(exc)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError as exc:  # a full disk: nothing half-written stays
            os.close(fd)
            tmp.unlink(missing_ok=True)
            return _failed(exc)
        started = threading.Event()

        def sync() -> str:
            started.set()
            try:
                os.fsync(fd)  # releases the GIL: the caller's checks run meanwhile
            finally:
                os.close(fd)
            return str(tmp)

        try:
            synced = syncers.submit(sync)
        except RuntimeError:  # the pool is shut down (the node stopping)
            os.close(fd)
            raise
        while not started.wait(timeout=1.0):
            if synced.cancelled():  # the pool was shut down before a thread took it
                os.close(fd)
                break
        return synced

    def _tmp_path(self) -> Path:
        return self.root / "tmp" / f"{HOST}.{os.getpid()}.{secrets.token_hex(8)}.part"

    def move(self, source: str | Path, area: str, name: str) -> str:
        """Rename ``source`` into ``area`` (same file system: atomic) and make it durable."""
        target = self.path(area, name)
        os.replace(source, target)
        sync_directory(target.parent)
        return self.key(area, name)

    def discard(self, source: str) -> None:
        Path(source).unlink(missing_ok=True)

    def relocate(self, area: str, name: str, to_area: str, to_name: str) -> str:
        return self.move(self.path(area, name), to_area, to_name)

    def delete(self, key: str) -> None:
        self.local_path(key).unlink(missing_ok=True)

    def read(self, key: str) -> bytes:
        return self.local_path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return open(self.local_path(key), "rb")

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        yield self.local_path(key)  # the file itself

    def location(self, key: str) -> str:
        return str(self.local_path(key))


def open_store(config: Any, data_dir: Path, create: bool = True) -> ObjectStore:
    """The storage node.toml's [storage] table names: the data directory (``url`` empty), or an
    S3-compatible object store. ``create``: make what is missing and sweep what crashed
    processes left (a host starting); otherwise only open it (worker processes, the CLI)."""
    from .s3store import S3Store, settings_of  # boto3 loads only for an object store

    settings = settings_of(config["storage"])
    if settings is not None:
        return S3Store.create(settings, data_dir) if create else S3Store(settings, data_dir)
    return Storage.create(data_dir) if create else Storage(Path(data_dir))


def _failed(exc: BaseException) -> Future[str]:
    future: Future[str] = Future()
    future.set_exception(exc)
    return future


def new_token() -> str:
    """A random name for a received object: unguessable and free of patient data."""
    return secrets.token_hex(16)


def process_alive(pid: int) -> bool:
    """Whether a process of this host with this id runs (a zombie, dead but not yet reaped,
    does not: a killed worker's parent may be gone and nothing may reap it for a while)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: trust kill()
    return state not in ("Z", "X")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GroupSync:
    """Group commit of one directory's fsync: threads that renamed a file into it share fsyncs.

    A caller returns only after an fsync of the directory that began after it called, so its
    rename (done before the call) is durable, as with an fsync of its own; but while one fsync
    runs, every caller arriving meanwhile waits for the next, which then covers them all: N
    concurrent associations cost about two directory fsyncs, not N.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cond = threading.Condition()
        self._requested = 0  # tickets handed out
        self._covered = 0  # every ticket up to this one is durable
        self._running = False

    def sync(self) -> None:
        with self._cond:
            self._requested += 1
            ticket = self._requested
            while self._covered < ticket:
                if self._running:
                    self._cond.wait()
                    continue
                self._running, covers = True, self._requested  # every rename before now
                self._cond.release()
                try:
                    _fsync_directory(self.directory)
                finally:
                    self._cond.acquire()
                    self._running = False
                    self._cond.notify_all()
                self._covered = max(self._covered, covers)  # not reached if the fsync raised


_group_syncs: dict[Path, GroupSync] = {}
_group_syncs_lock = threading.Lock()


def sync_directory(directory: Path) -> None:
    """fsync ``directory`` (renames into it made durable), shared with concurrent callers."""
    with _group_syncs_lock:
        group = _group_syncs.get(directory)
        if group is None:
            group = _group_syncs[directory] = GroupSync(directory)
    group.sync()


@dataclass(frozen=True)
class NodePaths:
    """Where node.toml's [node] table puts the data directory, the index and the keys."""

    data_dir: Path
    database: str  # an SQLAlchemy URL: sqlite:///PATH or postgresql://...
    keys: Path
    generate_keys: bool

    @classmethod
    def of(cls, node: dict[str, Any]) -> NodePaths:
        data_dir = Path(node["data_dir"])
        database = node["database"] or f"sqlite:///{data_dir / 'index.sqlite'}"
        if node["keys"]:
            return cls(data_dir, database, Path(node["keys"]), generate_keys=False)
        return cls(data_dir, database, data_dir / "keys" / NODE_FILE, generate_keys=True)

    def check(self) -> None:
        """Configured key files must exist; generated ones are made on first start."""
        if not self.generate_keys and not self.keys.is_file():
            raise ConfigError(f"node.keys = {str(self.keys)!r}: no such key file")
