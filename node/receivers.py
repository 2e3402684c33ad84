"""Several receiver processes on the node's one port (``node.receivers``).

pynetdicom reads PDUs, decodes DIMSE messages and runs the C-STORE handler in Python threads:
one process receives on one core (the GIL), however many associations arrive. ``stegonode
serve`` therefore starts ``node.receivers - 1`` more receiver processes beside its own (0: one
per core, at most :data:`MAX_AUTO`). They share the node's listening socket (each accepts the
connections it finds: an idle receiver takes the next caller), its data directory and its index
(SQLite in WAL mode or PostgreSQL, the same sharing a cluster of receivers relies on), and one
:class:`~stegonode.node.admission.SharedLedger` of admitted associations, so the association
limits hold for the node as a whole. Each serves every DICOM service the node offers (storage,
query, retrieve); the worker pool, the web console and the SEG writer stay in the main process,
woken by the receivers when they queue a job. A receiver whose parent has gone stops.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stegonode.errors import StegonodeError

from .admission import AcceptBalance, SharedLedger

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger("stegonode.node")
MAX_AUTO = 4  # receivers for node.receivers = 0: one per core, at most this many
START_TIMEOUT_S = 120.0


def receiver_count(node: dict[str, Any]) -> int:
    """How many receiver processes node.receivers asks for (the main process included)."""
    configured = int(node["receivers"])
    return configured if configured > 0 else max(1, min(len(os.sched_getaffinity(0)), MAX_AUTO))


class Receivers:
    """The node's receiver processes beyond its own: started on its listening socket, stopped
    before it."""

    def __init__(self, config: Config, count: int, ledger: SharedLedger, balance: AcceptBalance,
                 wake: Callable[[], None]) -> None:
        self.config = config
        self.count = count  # extra processes
        self.ledger = ledger
        self.balance = balance  # the main process is its number 0, receiver k its number k
        self.wake = wake
        self._context = multiprocessing.get_context("spawn")  # threads + fork do not mix
        self._received = self._context.Event()  # a receiver queued a job
        self._processes: list[Any] = []
        self._stopping = threading.Event()

    def start(self, listening: socket.socket) -> None:
        """Start the processes on ``listening`` and wait until each serves (or say why not)."""
        answers = self._context.SimpleQueue()
        for number in range(1, self.count + 1):
            process = self._context.Process(
                target=_serve, name=f"stegonode-receiver-{number}",
                args=(self.config, listening, self.ledger.lock, self.ledger.slots,
                      (self.balance.receivers, number), self._received, answers, os.getpid()))
            process.start()
            self._processes.append(process)
        for _ in self._processes:
            answer = _answer(answers, self._processes)
            if answer is not None:
                self.stop()
                raise StegonodeError(f"a receiver process did not start: {answer}")
        threading.Thread(target=self._relay_wake, name="receivers-wake", daemon=True).start()
        log.info("%d receiver processes share the port (node.receivers)", self.count + 1)

    def _relay_wake(self) -> None:
        while not self._stopping.is_set():
            if self._received.wait(timeout=0.5):
                self._received.clear()
                self.wake()

    def stop(self) -> None:
        self._stopping.set()
        for process in self._processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: it stops serving
        for process in self._processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        self._processes = []


def _answer(answers: Any, processes: list[Any]) -> str | None:
    """None once a receiver reports it serves; its reason if it failed or died first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not answers.empty():
            kind, detail = answers.get()
            return None if kind == "ready" else detail
        if any(p.exitcode not in (None, 0) for p in processes):
            return "it exited at start"
        time.sleep(0.05)
    return f"no answer in {START_TIMEOUT_S:.0f} s"


# -- in a receiver process ----------------------------------------------------------------------

def _serve(config: Config, listening: socket.socket, lock: Any, slots: Any, balance: tuple[Any, int],
           received: Any, answers: Any, parent: int) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    level = config["node"]["log_level"]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s (%(processName)s): %(message)s")
    logging.getLogger("pynetdicom").setLevel(max(logging.getLevelName(level), logging.WARNING))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        receiver = _Receiver(config, listening, SharedLedger(lock, slots), AcceptBalance(*balance),
                             received.set)
        receiver.start()
    except Exception as exc:  # the parent says it in its start-up error
        answers.put(("failed", f"{type(exc).__name__}: {exc}"))
        return
    answers.put(("ready", os.getpid()))
    while not stop.wait(timeout=1.0):
        if os.getppid() != parent:  # the node's main process is gone
            break
    receiver.stop()


class _Receiver:
    """What a receiver process runs: the node's DICOM services on the shared socket."""

    def __init__(self, config: Config, listening: socket.socket, ledger: SharedLedger,
                 balance: AcceptBalance, wake: Callable[[], None]) -> None:
        from stegonode.codecs import keys as keyfiles
        from stegonode.dicom.dicomfile import configure_pydicom

        from . import audit
        from .index import Index
        from .scp import NodeServer
        from .service import build_ingest
        from .storage import NodePaths, open_store

        configure_pydicom()
        paths = NodePaths.of(config["node"])
        self.storage = open_store(config, paths.data_dir, create=False)  # the main process made it and swept tmp/
        self.index = Index(paths.database)
        keys = keyfiles.load_node_keys(paths.keys)
        ingest = build_ingest(config, keys, self.storage, self.index, wake)
        self.server = NodeServer(config, self.index, ingest, self.storage, ledger, listening, balance)
        self.server.audit.add_sink(lambda event: self.index.record_audit(audit.index_record(event)))

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.server.audit.close()
        self.index.close()
