"""The node's DICOM services: Verification, Storage, and Query/Retrieve (C-FIND, C-GET, C-MOVE).

Event handlers stay thin: access control and per-association logging here, durable ingest in
:mod:`stegonode.node.ingest`, matching in :mod:`stegonode.node.query`, files and jobs behind
:class:`~stegonode.node.storage.Storage` and :class:`~stegonode.node.index.Index`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

from pydicom import Dataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, build_context, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from stegonode.errors import ConfigError, InputError

from . import audit, console_index, query
from .admission import MAX_PENDING_TOTAL, AcceptBalance, Admission, Ledger, NodeAssociationServer
from .audit import ServiceAudit
from .config import Config
from .dicomnet import (
    bound_reads,
    contain_protocol_errors,
    poll_fast,
    quiet_pynetdicom_tracebacks,
    register_server,
    set_nodelay,
    wake_reactors,
)
from .index import Association, Index
from .ingest import Ingest, status_dataset
from .retrieve import StoredObject, move_contexts, send_from_files
from .storage import ObjectStore

log = logging.getLogger("stegonode.associations")

# Transfer syntaxes whose pixel data the protect pipeline decodes.
TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1,
    JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, RLELossless,
]
MODELS = {
    PatientRootQueryRetrieveInformationModelFind: "PATIENT",
    PatientRootQueryRetrieveInformationModelGet: "PATIENT",
    PatientRootQueryRetrieveInformationModelMove: "PATIENT",
    StudyRootQueryRetrieveInformationModelFind: "STUDY",
    StudyRootQueryRetrieveInformationModelGet: "STUDY",
    StudyRootQueryRetrieveInformationModelMove: "STUDY",
}
# Sub-operation failures of C-GET/C-MOVE (PS3.4 C.4.2.1.5/C.4.3.1.4) and C-FIND errors.
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000
MOVE_DESTINATION_UNKNOWN = 0xA801
SUBOPERATIONS_IMPOSSIBLE = 0xA702  # out of resources: unable to perform sub-operations
# Bytes per second below which a PDU in progress is cut off, once idle_timeout has passed since
# it began (node.toml, idle_timeout): a 128 kbit/s line keeps up; a peer trickling bytes to hold
# its association slot does not.
MIN_TRANSFER_RATE = 16 * 1024


class Peers:
    """The [[peers]] table: C-MOVE destinations and callers allowed from other hosts."""

    def __init__(self, peers: list[dict[str, Any]], policy: str) -> None:
        self.policy = policy
        self.by_title = {peer["ae_title"]: peer for peer in peers}
        self._addresses = {peer["ae_title"]: _addresses(peer["host"]) for peer in peers}

    def destination(self, ae_title: str) -> tuple[str, int] | None:
        peer = self.by_title.get(ae_title.strip())
        return (peer["host"], peer["port"]) if peer else None

    def allows(self, ae_title: str, address: str) -> bool:
        """loopback: loopback callers and listed peers; peers: listed peers only; any: all."""
        if self.policy == "any":
            return True
        if self.policy == "loopback" and ipaddress.ip_address(address).is_loopback:
            return True
        return address in self._addresses.get(ae_title.strip(), set())


def _addresses(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        log.warning("peer host %s does not resolve; it cannot connect until it does", host)
        return set()


class NodeServer:
    """One pynetdicom AE serving the node's storage and query/retrieve services."""

    def __init__(self, config: Config, index: Index, ingest: Ingest,
                 storage: ObjectStore, ledger: Ledger | None = None,
                 listening: socket.socket | None = None, balance: AcceptBalance | None = None) -> None:
        self.node = config["node"]
        self.listening = listening  # another receiver process: the node's socket (receivers.py)
        self.balance = balance  # several receiver processes: who accepts the next caller
        self.index = index
        self.ingest = ingest
        self.storage = storage
        self.peers = Peers(config["peers"], self.node["allowed_callers"])
        self.ae = self._application_entity()
        self.admission = Admission(
            int(self.node["max_associations"]), int(self.node["max_pending_per_address"]),
            int(self.node["max_associations_per_address"]), int(self.node["max_associations_per_ae"]),
            ledger,
        )
        quiet_pynetdicom_tracebacks()
        wake_reactors()
        self._server: NodeAssociationServer | None = None
        self._stats: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._stats_lock = threading.Lock()
        self.audit = audit.from_config(config)
        self.auditor = ServiceAudit(self.audit, self.ingest.pseudonyms.uid)

    def _application_entity(self) -> AE:
        ae = AE(ae_title=self.node["ae_title"])
        # Admission enforces max_associations on requested associations only; pynetdicom's
        # own limit counts every connection, so it only bounds the waiting ones as well (with
        # room for connections Admission has closed whose threads are still ending).
        ae.maximum_associations = int(self.node["max_associations"]) + 2 * MAX_PENDING_TOTAL
        ae.acse_timeout = float(self.node["acse_timeout"])
        ae.network_timeout = float(self.node["idle_timeout"])
        ae.dimse_timeout = float(self.node["dimse_timeout"])
        ae.maximum_pdu_size = 0  # no limit: fewer, larger PDUs from the sender
        ae.add_supported_context(Verification)
        for context in AllStoragePresentationContexts:
            # SCU and SCP roles accepted, so a C-GET requestor can take the stored objects.
            assert context.abstract_syntax is not None
            ae.add_supported_context(
                context.abstract_syntax, TRANSFER_SYNTAXES, scu_role=True, scp_role=True
            )
        for model in MODELS:
            ae.add_supported_context(model, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        return ae

    def start(self, receivers: Callable[[socket.socket], None] | None = None) -> None:
        """Listen and serve; ``receivers`` first gets the listening socket to share (the node's
        other receiver processes, :mod:`stegonode.node.receivers`)."""
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, set_nodelay),
            (evt.EVT_CONN_OPEN, self._bound_reads),
            (evt.EVT_CONN_OPEN, lambda event: self.admission.opened(event.assoc)),
            (evt.EVT_CONN_CLOSE, lambda event: self.admission.closed(event.assoc)),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ESTABLISHED, self._on_established),
            (evt.EVT_ESTABLISHED, send_from_files),  # C-GET sends on the caller's association
            (evt.EVT_ESTABLISHED, poll_fast),
            (evt.EVT_RELEASED, self._on_closed),
            (evt.EVT_ABORTED, self._on_closed),
            (evt.EVT_C_ECHO, lambda event: 0x0000),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_C_MOVE, self._on_move),
        ]
        if self.balance is not None:
            self.balance.join()
            handlers += [(evt.EVT_CONN_OPEN, self.balance.opened), (evt.EVT_CONN_CLOSE, self.balance.closed)]
        address = (self.node["bind_address"], int(self.node["port"]))
        tls = self._tls()
        server_class: type[NodeAssociationServer] = NodeAssociationServer
        if self.listening is not None:
            server_class = type("SharedServer", (NodeAssociationServer,), {"inherited_socket": self.listening})
        try:
            server = self.ae.make_server(address, evt_handlers=handlers, ssl_context=tls, server_class=server_class)
        except OSError as exc:
            raise ConfigError(
                f"node.bind_address/node.port {address[0]}:{address[1]}: cannot listen "
                f"({exc.strerror or exc})"
            ) from None
        assert isinstance(server, NodeAssociationServer)
        self._server = server
        server.acse_timeout = float(self.node["acse_timeout"])
        server.balance = self.balance
        register_server(self.ae, self._server)
        if receivers is not None:
            receivers(server.share())
        threading.Thread(target=server.serve_forever, name="acceptor", daemon=True).start()
        if self.listening is None:
            log.info("%s listening on %s:%d%s", self.node["ae_title"], *address,
                     " (TLS)" if self.node["tls"]["certificate"] else "")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def _tls(self) -> ssl.SSLContext | None:
        tls = self.node["tls"]
        if not tls["certificate"]:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(tls["certificate"], tls["private_key"])
            if tls["ca_certificates"]:
                context.load_verify_locations(tls["ca_certificates"])
                context.verify_mode = ssl.CERT_REQUIRED  # callers must show a certificate
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"node.tls: cannot load the certificate, key or CAs ({exc})") from None
        return context

    # -- associations ----------------------------------------------------------------------

    def _on_requested(self, event: evt.Event) -> None:
        assoc = event.assoc
        request = assoc.requestor.primitive
        assert request is not None, "EVT_REQUESTED comes with the A-ASSOCIATE request"
        calling = request.calling_ae_title
        address = assoc.requestor.address
        called = request.called_ae_title.strip()
        if not self.peers.allows(calling, address):
            log.warning("rejected association from %s@%s: caller not allowed", calling, address)
            console_index.negotiation_failed(self.index, assoc, calling, "association rejected: caller not allowed")
            assoc.acse.send_reject(0x01, 0x01, 0x03)  # permanent, calling AE not recognised
            assoc.kill()
        elif called != self.node["ae_title"].strip() and not self.node["accept_any_called_ae_title"]:
            log.warning("rejected association from %s@%s: it called %r, this node is %s",
                        calling, address, called, self.node["ae_title"])
            console_index.negotiation_failed(self.index, assoc, calling,
                                             "association rejected: called AE title is not this node's")
            assoc.acse.send_reject(0x01, 0x01, 0x07)  # permanent, called AE not recognised
            assoc.kill()
        elif (limit := self.admission.requested(assoc, calling)) is not None:
            log.warning("rejected association from %s@%s: %s", calling, address, limit)
            console_index.negotiation_failed(self.index, assoc, calling, f"association rejected: {limit}")
            assoc.acse.send_reject(0x02, 0x03, 0x02)  # transient, local limit exceeded
            assoc.kill()

    def _bound_reads(self, event: evt.Event) -> None:
        contain_protocol_errors(event.assoc)
        bound_reads(event.assoc, float(self.node["acse_timeout"]), float(self.node["idle_timeout"]),
                    MIN_TRANSFER_RATE)

    def _on_established(self, event: evt.Event) -> None:
        if (rejected := console_index.rejected_contexts(event.assoc)) is not None:
            console_index.negotiation_failed(self.index, event.assoc, event.assoc.requestor.ae_title, rejected)
        with self._stats_lock:
            self._stats[event.assoc] = (time.time(), time.monotonic(), Counter())

    def _count(self, event: evt.Event, what: str, n: int = 1) -> None:
        with self._stats_lock:
            entry = self._stats.get(event.assoc)
        if entry is not None:
            entry[2][what] += n

    def _on_closed(self, event: evt.Event) -> None:
        with self._stats_lock:
            entry = self._stats.pop(event.assoc, None)
        self.auditor.closed(event)
        if entry is None:
            return
        started_at, started, counts = entry
        done = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing"
        ending = "released" if event.event is evt.EVT_RELEASED else "aborted"
        association = Association(event.assoc.requestor.ae_title, event.assoc.requestor.address,
                                  started_at, time.monotonic() - started, ending, done)
        log.info("association %s@%s %s after %.2f s: %s", association.calling_ae_title,
                 association.address, ending, association.duration, done)
        self.index.record_association(association)

    # -- services --------------------------------------------------------------------------

    def _on_store(self, event: evt.Event) -> Dataset | int:
        try:
            status = self.ingest.receive(event)
        except Exception as exc:  # never an exception to pynetdicom: it would answer 0xC211, unexplained
            log.error("C-STORE from %s could not be processed (%s)", event.assoc.requestor.address,
                      type(exc).__name__)
            status = status_dataset(UNABLE_TO_PROCESS, f"node could not process the object ({type(exc).__name__})")
        self._count(event, "stored" if status.Status == 0 else "refused")
        if status.Status != 0:
            console_index.store_refused(self.index, event, self.ingest.pseudonyms.uid, status)
        self.auditor.stored(event, status.Status == 0)
        return status

    def _query(self, event: evt.Event) -> query.Query:
        model = MODELS[UID(event.request.AffectedSOPClassUID or "")]
        return query.parse(event.identifier, model)

    def _on_find(self, event: evt.Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        try:
            parsed = self._query(event)
        except InputError as exc:
            self.auditor.refused(event, "query", "identifier refused")
            yield status_dataset(IDENTIFIER_DOES_NOT_MATCH, str(exc)), None
            return
        except Exception:
            self.auditor.refused(event, "query", "identifier cannot be decoded")
            yield status_dataset(UNABLE_TO_PROCESS, "identifier cannot be decoded"), None
            return
        found = 0
        for response in query.find(self.index, parsed):
            if event.is_cancelled:
                yield 0xFE00, None
                return
            response.RetrieveAETitle = self.node["ae_title"]
            found += 1
            yield 0xFF00, response
        self._count(event, f"C-FIND ({found} matches)")
        self.auditor.queried(event, found)

    def _retrieve(self, event: evt.Event, destination: tuple[str, int] | None = None):
        """Shared C-GET/C-MOVE body; C-MOVE first yields the destination."""
        try:
            found = query.instances(self.index, self._query(event))
        except Exception as exc:
            if destination is not None:
                # pynetdicom reports a failure only over an association with the destination.
                yield (*destination, {"contexts": [build_context(Verification)]})
            reason = str(exc) if isinstance(exc, InputError) else "identifier cannot be decoded"
            self.auditor.refused(event, "retrieve", "identifier refused")
            yield 1  # pynetdicom reads the count before the failure status
            yield status_dataset(IDENTIFIER_DOES_NOT_MATCH, reason), None
            return
        if destination is not None:
            # Their SOP classes, each in its stored transfer syntaxes and uncompressed.
            contexts = move_contexts(found)
            handlers = [(evt.EVT_CONN_OPEN, handler)
                        for handler in (set_nodelay, send_from_files, poll_fast)]
            yield (*destination, {"contexts": contexts, "evt_handlers": handlers})
        yield len(found)
        for instance in found:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            with ExitStack() as copy:  # pynetdicom sends each before it asks for the next
                try:
                    path = copy.enter_context(self.storage.local_copy(instance.key))
                except OSError as exc:
                    log.error("retrieve stopped: stored object %s unavailable (%s)",
                              instance.sop_instance_uid, exc.strerror or type(exc).__name__)
                    yield status_dataset(SUBOPERATIONS_IMPOSSIBLE, "stored objects unavailable now"), None
                    return
                yield 0xFF00, StoredObject(instance, path)
        self._count(event, "retrieved", len(found))
        self.auditor.retrieved(event, found, destination)

    def _on_get(self, event: evt.Event):
        yield from self._retrieve(event)

    def _on_move(self, event: evt.Event):
        ae_title = event.move_destination or ""
        known = self.peers.destination(ae_title)
        if known is None:
            log.warning("C-MOVE to unknown destination %s refused", ae_title)
            self.auditor.refused(event, "retrieve", f"C-MOVE to unknown destination {ae_title}")
            yield None, None  # pynetdicom answers 0xA801 Move Destination Unknown
            return
        yield from self._retrieve(event, known)
