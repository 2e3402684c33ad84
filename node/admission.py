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
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Any

from pynetdicom.association import Association
from pynetdicom.transport import ThreadedAssociationServer

from .dicomnet import close_connection

log = logging.getLogger("stegonode.associations")
# Connections waiting to request an association, all addresses together, beyond the
# established ones (pynetdicom refuses association requests above this many connections).
MAX_PENDING_TOTAL = 256
WARN_EVERY_S = 60.0


class Admission:
    """Connections waiting to request an association, per address, and the admitted associations."""

    def __init__(self, max_associations: int, max_pending_per_address: int,
                 max_per_address: int | None = None, max_per_ae: int | None = None) -> None:
        self.max_associations = max_associations
        self.max_pending_per_address = max_pending_per_address
        half = max(1, max_associations // 2)  # the default: no one caller holds more than half
        self.max_per_address = max_per_address or half
        self.max_per_ae = max_per_ae or half
        self._lock = threading.Lock()
        self._pending: dict[str, dict[Association, None]] = {}  # insertion-ordered: oldest first
        self._order: dict[Association, None] = {}  # every waiting connection, oldest first
        self._admitted: dict[Association, str] = {}  # admitted association -> calling AE title
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
            self._admitted = {a: t for a, t in self._admitted.items() if a.is_alive()}
            if len(self._admitted) >= self.max_associations:
                return f"{len(self._admitted)} associations open (max_associations)"
            same_address = sum(a.requestor.address == address for a in self._admitted)
            if same_address >= self.max_per_address:
                return f"{same_address} associations open from {address} (max_associations_per_address)"
            same_title = sum(t == title for t in self._admitted.values())
            if same_title >= self.max_per_ae:
                return f"{same_title} associations open by that AE title (max_associations_per_ae)"
            self._admitted[assoc] = title
            return None

    def closed(self, assoc: Association) -> None:
        with self._lock:
            self._forget_pending(assoc)
            self._admitted.pop(assoc, None)

    def _forget_pending(self, assoc: Association) -> None:
        self._order.pop(assoc, None)
        waiting = self._pending.get(assoc.requestor.address)
        if waiting is not None:
            waiting.pop(assoc, None)
            if not waiting:
                del self._pending[assoc.requestor.address]


class NodeAssociationServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with the TLS handshake moved off the accept loop (a caller
    that never completes it blocked every other caller) and errors logged in one line."""

    acse_timeout: float = 5.0
    request_queue_size = 128  # socketserver's 5 drops a burst of connects (the kernel retries after 1 s)

    def get_request(self) -> tuple[Any, Any]:
        client, address = self.socket.accept()  # type: ignore[union-attr]
        if self.ssl_context:
            client = self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        return client, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
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
