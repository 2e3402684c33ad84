"""Admission: junk connections cannot hold the node's association slots.

pynetdicom counts every open connection against ``maximum_associations``, including those that
never send an A-ASSOCIATE-RQ, and does a TLS handshake in its accept loop. Here:

- a connection has ``acse_timeout`` seconds to finish its TLS handshake (in its own thread) and
  to request an association (pynetdicom's ARTIM timer), then it is closed;
- only requested associations count against ``max_associations``;
- from one address at most ``max_pending_per_address`` connections may wait to request an
  association: the oldest is closed when one more arrives, so a flood costs only its sender;
  from all addresses together at most ``MAX_PENDING_TOTAL``: the oldest waiting connection
  anywhere is closed (a real caller sends its request within milliseconds of connecting);
- one address may hold at most ``max_associations_per_address`` admitted associations and one
  calling AE title ``max_associations_per_ae``, both below ``max_associations``, so no single
  caller fills the node;
- an established association silent for ``idle_timeout`` seconds is aborted (pynetdicom's
  network timeout), and every PDU must arrive at a pace :func:`~.dicomnet.bound_reads` sets.

With several receiver processes on one port (node.receivers, :mod:`stegonode.node.receivers`)
the admitted associations are counted in a :class:`SharedLedger` that every receiver of the
node reads and writes, so max_associations and the per-address and per-AE limits hold for the
node as a whole; the limits on waiting connections hold per receiver process.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import ssl
import threading
import time
from typing import Any, Protocol

from pynetdicom.association import Association
from pynetdicom.transport import ThreadedAssociationServer

from .dicomnet import close_connection
from .storage import process_alive

log = logging.getLogger("stegonode.associations")
# Connections waiting to request an association, all addresses together, beyond the
# established ones (pynetdicom refuses association requests above this many connections).
MAX_PENDING_TOTAL = 256
WARN_EVERY_S = 60.0


class Admission:
    """Connections waiting to request an association, per address, and the admitted associations."""

    def __init__(self, max_associations: int, max_pending_per_address: int,
                 max_per_address: int | None = None, max_per_ae: int | None = None,
                 ledger: Ledger | None = None) -> None:
        self.max_associations = max_associations
        self.max_pending_per_address = max_pending_per_address
        half = max(1, max_associations // 2)  # the default: no one caller holds more than half
        self.max_per_address = max_per_address or half
        self.max_per_ae = max_per_ae or half
        self._lock = threading.Lock()
        self._pending: dict[str, dict[Association, None]] = {}  # insertion-ordered: oldest first
        self._order: dict[Association, None] = {}  # every waiting connection, oldest first
        self.ledger: Ledger = LocalLedger() if ledger is None else ledger  # the admitted associations
        self._closed: dict[str, int] = {}  # evictions per address not yet reported
        self._warned: dict[str, float] = {}

    def opened(self, assoc: Association) -> None:
        """A connection: the oldest waiting connections of its address beyond the limit go."""
        address = assoc.requestor.address
        with self._lock:
            waiting = self._pending.setdefault(address, {})
            for stale in [a for a in waiting if not a.is_alive() and a is not assoc]:
                del waiting[stale]
            waiting[assoc] = None
            self._order[assoc] = None
            excess = list(waiting)[: max(0, len(waiting) - self.max_pending_per_address)]
            for old in excess:
                del waiting[old]
                self._order.pop(old, None)
            for stale in [a for a in self._order if not a.is_alive() and a is not assoc]:
                self._forget_pending(stale)
            overall = list(self._order)[: max(0, len(self._order) - MAX_PENDING_TOTAL)]
            for old in overall:
                self._forget_pending(old)
        for old in excess + overall:
            close_connection(old)
        if excess:
            self._report(address, len(excess))

    def _report(self, address: str, closed: int) -> None:
        """One warning per address per minute: a flood must not flood the log as well."""
        now = time.monotonic()
        with self._lock:
            count = self._closed.get(address, 0) + closed
            due = now - self._warned.get(address, -WARN_EVERY_S) >= WARN_EVERY_S
            self._closed[address] = 0 if due else count
            if due:
                self._warned[address] = now
        if due:
            log.warning("closed %d connection(s) from %s that had not requested an association: "
                        "more than %d waiting from that address", count, address, self.max_pending_per_address)

    def requested(self, assoc: Association, calling_ae_title: str) -> str | None:
        """An association request: None if admitted, else which limit refuses it."""
        address, title = assoc.requestor.address, calling_ae_title.strip()
        with self._lock:
            self._forget_pending(assoc)
            return self.ledger.admit(assoc, address, title, (self.max_associations, self.max_per_address,
                                                             self.max_per_ae))

    def closed(self, assoc: Association) -> None:
        with self._lock:
            self._forget_pending(assoc)
            self.ledger.release(assoc)

    def _forget_pending(self, assoc: Association) -> None:
        self._order.pop(assoc, None)
        waiting = self._pending.get(assoc.requestor.address)
        if waiting is not None:
            waiting.pop(assoc, None)
            if not waiting:
                del self._pending[assoc.requestor.address]


Limits = tuple[int, int, int]  # max_associations, per address, per calling AE title


class Ledger(Protocol):
    """The admitted associations, counted against the limits."""

    def admit(self, assoc: Association, address: str, title: str, limits: Limits) -> str | None:
        """Count ``assoc`` in and return None, or return which limit refuses it."""

    def release(self, assoc: Association) -> None:
        """``assoc`` ended (nothing happens if it was never admitted)."""

    def count(self) -> int:
        """The associations admitted and not yet released (an estimate: no lock taken)."""


def _refusal(admitted: list[tuple[str, str]], address: str, title: str, limits: Limits) -> str | None:
    """Which limit the admitted (address, title) pairs leave no room under, or None."""
    total, per_address, per_ae = limits
    if len(admitted) >= total:
        return f"{len(admitted)} associations open (max_associations)"
    same_address = sum(a == address for a, _ in admitted)
    if same_address >= per_address:
        return f"{same_address} associations open from {address} (max_associations_per_address)"
    same_title = sum(t == title for _, t in admitted)
    if same_title >= per_ae:
        return f"{same_title} associations open by that AE title (max_associations_per_ae)"
    return None


class LocalLedger:
    """One receiver process: its own associations (the caller holds the lock)."""

    def __init__(self) -> None:
        self._admitted: dict[Association, tuple[str, str]] = {}

    def admit(self, assoc: Association, address: str, title: str, limits: Limits) -> str | None:
        self._admitted = {a: entry for a, entry in self._admitted.items() if a.is_alive()}
        refused = _refusal(list(self._admitted.values()), address, title, limits)
        if refused is None:
            self._admitted[assoc] = (address, title)
        return refused

    def release(self, assoc: Association) -> None:
        self._admitted.pop(assoc, None)

    def count(self) -> int:
        return len(self._admitted)


class _Slot(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_int), ("address", ctypes.c_char * 64), ("title", ctypes.c_char * 68)]


class SharedLedger:
    """Several receiver processes of one node: one slot per admitted association, in shared
    memory under a process-shared lock (the node's processes, spawned with both). A slot whose
    process has died is free again."""

    def __init__(self, lock: Any, slots: Any) -> None:
        self.lock, self.slots = lock, slots  # handed to each receiver process
        self._mine: dict[Association, int] = {}  # this process's admitted associations -> slot

    @classmethod
    def create(cls, context: Any, max_associations: int) -> SharedLedger:
        return cls(context.Lock(), context.RawArray(_Slot, max_associations))

    def admit(self, assoc: Association, address: str, title: str, limits: Limits) -> str | None:
        for ended in [a for a in self._mine if not a.is_alive()]:
            self.release(ended)
        with self.lock:
            admitted, free = [], None
            for number, slot in enumerate(self.slots):
                if slot.pid and not _holder_alive(slot.pid):
                    slot.pid = 0  # its receiver died: its associations died with it
                if not slot.pid:
                    free = number if free is None else free
                    continue
                admitted.append((_text(slot.address), _text(slot.title)))
            refused = _refusal(admitted, address, title, limits)
            if refused is None and free is None:
                refused = f"{len(admitted)} associations open (max_associations)"
            if refused is None:
                assert free is not None
                slot = self.slots[free]
                slot.pid, slot.address, slot.title = os.getpid(), _bytes(address, 64), _bytes(title, 68)
                self._mine[assoc] = free
            return refused

    def release(self, assoc: Association) -> None:
        number = self._mine.pop(assoc, None)
        if number is not None:
            with self.lock:
                self.slots[number].pid = 0

    def count(self) -> int:
        pids = [slot.pid for slot in self.slots if slot.pid]
        alive = {pid: _holder_alive(pid) for pid in set(pids)}
        return sum(alive[pid] for pid in pids)


class _Receiver(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_int), ("connections", ctypes.c_int)]


class AcceptBalance:
    """The connections each receiver process of a node holds, in shared memory, so that the
    least busy receiver takes the next caller.

    The receivers share one listening socket: a caller's connect wakes them all and the first
    to accept takes it. Left to that race, the main process took 9 of 12 callers held open one
    after another, whose threads then shared its one GIL while the other receiver idled (and
    four simultaneous associations split 1 / 3 in 3 of 14 bursts). So a receiver that holds
    more connections than another live receiver waits :attr:`DEFER_S` before it accepts, and
    the less busy one takes the caller meanwhile (should that one be stalled, this one accepts
    after the wait). Each process writes only its own count; reading another's without the
    lock is enough to choose who goes first.

    A connection counts from its accept: its association opens (evt.EVT_CONN_OPEN) in its own
    thread, 10-15 ms later in a busy receiver, and that receiver would meanwhile take the next
    caller too. So the accept loop counts it until the connection's thread has handed it to its
    association (or closed it: a TLS handshake that failed), and the association counts it from
    its open until its close.
    """

    DEFER_S = 0.02

    def __init__(self, receivers: Any, number: int) -> None:
        self.receivers, self.number = receivers, number  # the shared array, this process's entry
        self._lock = threading.Lock()

    @classmethod
    def create(cls, context: Any, count: int) -> AcceptBalance:
        """For ``count`` receiver processes; this process is number 0."""
        return cls(context.RawArray(_Receiver, count), 0)

    def join(self) -> None:
        """This process serves as its entry (once, before it accepts)."""
        mine = self.receivers[self.number]
        mine.pid, mine.connections = os.getpid(), 0

    def add(self, change: int) -> None:
        with self._lock:
            self.receivers[self.number].connections += change

    def opened(self, *_: Any) -> None:
        """A connection's association is open here (evt.EVT_CONN_OPEN)."""
        self.add(1)

    def closed(self, *_: Any) -> None:
        """evt.EVT_CONN_CLOSE."""
        self.add(-1)

    def busier(self) -> bool:
        """Whether another live receiver holds fewer connections than this one."""
        mine = self.receivers[self.number].connections
        return any(other.connections < mine and other.pid and _holder_alive(other.pid)
                   for number, other in enumerate(self.receivers) if number != self.number)


def _holder_alive(pid: int) -> bool:
    """Whether the receiver process holding a ledger slot still runs (this one does)."""
    return pid == os.getpid() or process_alive(pid)


def _bytes(text: str, size: int) -> bytes:
    return text.encode("utf-8", "replace")[: size - 1]


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


class NodeAssociationServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with the TLS handshake moved off the accept loop (a caller
    that never completes it blocked every other caller) and errors logged in one line."""

    acse_timeout: float = 5.0
    request_queue_size = 128  # socketserver's 5 drops a burst of connects (the kernel retries after 1 s)
    # Another receiver process of the node: the node's listening socket, shared (see
    # stegonode.node.receivers); None: this server binds and listens itself.
    inherited_socket: socket.socket | None = None
    # Several receiver processes on the socket: the least busy accepts first (see AcceptBalance).
    balance: AcceptBalance | None = None

    def server_bind(self) -> None:
        if self.inherited_socket is None:
            super().server_bind()
            return
        assert self.socket is not None
        self.socket.close()  # the one TCPServer made: unused
        self.socket = self.inherited_socket
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        if self.inherited_socket is None:
            super().server_activate()

    def server_close(self) -> None:
        if self.inherited_socket is None:
            super().server_close()
        else:  # only this process's descriptor: a shutdown would stop the node's other receivers
            self.inherited_socket.close()

    def share(self) -> socket.socket:
        """The listening socket, made non-blocking so that receiver processes sharing it each
        take the connections they find (one that finds none goes back to waiting)."""
        assert self.socket is not None
        self.socket.setblocking(False)
        return self.socket

    def get_request(self) -> tuple[Any, Any]:
        if self.balance is not None and self.balance.busier():
            time.sleep(self.balance.DEFER_S)  # a less busy receiver takes the caller meanwhile
        client, address = self.socket.accept()  # type: ignore[union-attr]  # none left: OSError
        client.setblocking(True)  # whatever the listening socket's mode: pynetdicom sets timeouts
        if self.ssl_context:
            client = self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        if self.balance is not None:
            self.balance.add(1)  # until process_request_thread ends
        return client, address

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request(request, client_address)  # starts process_request_thread
        except BaseException:
            if self.balance is not None:
                self.balance.add(-1)  # no thread: socketserver closes the connection
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            self._hand_over(request, client_address)
        finally:
            if self.balance is not None:
                self.balance.add(-1)  # the association counts it now, if it opened

    def _hand_over(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(self.acse_timeout)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ssl.SSLError) as exc:
                log.warning("TLS handshake from %s failed: %s", client_address[0], type(exc).__name__)
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("connection from %s ended with an error", client_address[0])
