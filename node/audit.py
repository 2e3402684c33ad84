"""The audit trail: DICOM audit messages (PS3.15 A.5) for what people and peers do with the node.

Each :class:`Event` becomes one audit message, XML per the DICOM audit message schema
(PS3.15 A.5.1): EventIdentification (the PS3.15 A.5.3 event ID and type code, action, time,
outcome), the active participants (who asked, from which address; the node), the audit source
(the node's AE title) and the participant objects: studies and instances by their *stored*,
pseudonymous UIDs, patients by the node's pseudonymous patient ID. No identifying value of an
original is ever in a message.

Messages go, as node.toml's ``[audit]`` table says, to an audit repository over syslog
(RFC 5424 messages; UDP per RFC 5426, TCP with octet counting per RFC 6587, TLS per RFC 5425)
and/or to a local file (one message per line). Sending runs on its own thread: a slow or absent
repository never holds up a DICOM association or a console page; a message that cannot be sent
is logged (its event, not its content) and dropped.

Events and the PS3.15 A.5.3 messages they become:

- start, stop: Application Activity (110100), Application Start/Stop (110120/110121)
- config: Security Alert (110113), Software Configuration (110131)
- login, logout: User Authentication (110114), Login/Logout (110122/110123)
- login-lock, login-unlock: Security Alert (110113), User Security Attributes Changed (110137)
- query (C-FIND): Query (110112), with the query's SOP Class and keys (no values)
- retrieve (C-GET, C-MOVE), store (C-STORE received): DICOM Instances Transferred (110104)
- reveal (console): DICOM Instances Accessed (110103), action R
- download (re-identified objects from the console): Export (110106)
- delete: DICOM Instances Accessed (110103), action D
- send (the console sends stored objects to a peer): DICOM Instances Transferred (110104), action R
- reseal (header carriers for new recipients): DICOM Instances Accessed (110103), action U

DICOMweb (web/dicomweb) records the same kinds, one message per request, the caller being
"dicomweb token" or "console" and the detail naming the service: a QIDO-RS search is a query
(the Study Root C-FIND SOP Class, the keys it matched on), a WADO-RS retrieval (instances,
metadata, frames, bulk data, rendered) a retrieve, a STOW-RS request a store.
"""

from __future__ import annotations

import base64
import datetime
import logging
import os
import queue
import socket
import ssl
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

from stegonode.errors import ConfigError

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger("stegonode.audit")

DCM = "DCM"
# event kind -> (EventID code, meaning), (EventTypeCode code, meaning) or None, EventActionCode
EVENTS: dict[str, tuple[tuple[str, str], tuple[str, str] | None, str]] = {
    "start": (("110100", "Application Activity"), ("110120", "Application Start"), "E"),
    "stop": (("110100", "Application Activity"), ("110121", "Application Stop"), "E"),
    "config": (("110113", "Security Alert"), ("110131", "Software Configuration"), "E"),
    "login": (("110114", "User Authentication"), ("110122", "Login"), "E"),
    "logout": (("110114", "User Authentication"), ("110123", "Logout"), "E"),
    "login-lock": (("110113", "Security Alert"), ("110137", "User Security Attributes Changed"), "E"),
    "login-unlock": (("110113", "Security Alert"), ("110137", "User Security Attributes Changed"), "E"),
    "query": (("110112", "Query"), None, "E"),
    "retrieve": (("110104", "DICOM Instances Transferred"), None, "R"),
    "store": (("110104", "DICOM Instances Transferred"), None, "C"),
    "reveal": (("110103", "DICOM Instances Accessed"), None, "R"),
    "download": (("110106", "Export"), None, "R"),
    "delete": (("110103", "DICOM Instances Accessed"), None, "D"),
    "send": (("110104", "DICOM Instances Transferred"), None, "R"),
    "reseal": (("110103", "DICOM Instances Accessed"), None, "U"),
}
OUTCOMES = {"success": "0", "failure": "4", "serious": "8"}
SOURCE_ROLE = ("110153", "Source Role ID")
DESTINATION_ROLE = ("110152", "Destination Role ID")
APPLICATION_ROLE = ("110150", "Application")
# Syslog: facility 10 (security/authorization, RFC 5424 6.2.1), severity notice (5) or warning (4)
FACILITY = 10
TRANSPORTS = ("udp", "tcp", "tls")


@dataclass(frozen=True)
class Event:
    """One audited event. ``user``: who acted (a peer's AE title, "console", a command);
    ``address``: from where; ``peer``: the other end of a transfer (its AE title), with
    ``to_peer`` True when the node sent to it; ``studies``, ``instances``: stored (pseudonymous)
    UIDs; ``sop_class``: the SOP Class of a query or of the instances; ``patient``: the node's
    pseudonymous patient ID; ``query_keys``: the attribute keywords a query used (never values);
    ``detail``: a short free text without patient data (counts, a reason)."""

    kind: str
    outcome: str = "success"
    user: str = ""
    address: str = ""
    peer: str = ""
    peer_address: str = ""
    to_peer: bool = True
    studies: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    sop_class: str = ""
    patient: str = ""
    query_keys: tuple[str, ...] = ()
    detail: str = ""
    time: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))

    def __post_init__(self) -> None:
        if self.kind not in EVENTS:
            raise ValueError(f"unknown audit event {self.kind!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {self.outcome!r}")


def _code(parent: ElementTree.Element, tag: str, code: tuple[str, str], system: str = DCM) -> None:
    ElementTree.SubElement(parent, tag, {"csd-code": code[0], "codeSystemName": system, "originalText": code[1]})


def _participant(root: ElementTree.Element, user: str, requestor: bool, address: str = "",
                 role: tuple[str, str] | None = None) -> None:
    attributes = {"UserID": user or "unknown", "UserIsRequestor": "true" if requestor else "false"}
    if address:
        attributes["NetworkAccessPointID"] = address
        attributes["NetworkAccessPointTypeCode"] = "2"  # IP address (RFC 3881 / PS3.15 A.5.1)
    element = ElementTree.SubElement(root, "ActiveParticipant", attributes)
    if role is not None:
        _code(element, "RoleIDCode", role)


def message(event: Event, source_id: str, node_address: str = "") -> bytes:
    """The DICOM audit message (UTF-8 XML) of ``event``, audit source ``source_id``."""
    event_id, type_code, action = EVENTS[event.kind]
    root = ElementTree.Element("AuditMessage")
    identification = ElementTree.SubElement(root, "EventIdentification", {
        "EventActionCode": action,
        "EventDateTime": event.time.astimezone(datetime.UTC).isoformat(timespec="milliseconds"),
        "EventOutcomeIndicator": OUTCOMES[event.outcome],
    })
    _code(identification, "EventID", event_id)
    if type_code is not None:
        _code(identification, "EventTypeCode", type_code)
    if event.detail:
        ElementTree.SubElement(identification, "EventOutcomeDescription").text = " ".join(event.detail.split())
    _participants(root, event, source_id, node_address)
    source = ElementTree.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": source_id})
    _code(source, "AuditSourceTypeCode", ("4", "Application Server"))
    _objects(root, event)
    # one line: the local file holds one message per line
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ElementTree.tostring(root, encoding="unicode").encode()


def _participants(root: ElementTree.Element, event: Event, node: str, node_address: str) -> None:
    if event.kind in ("start", "stop"):
        _participant(root, node, False, node_address, APPLICATION_ROLE)
        if event.user:
            _participant(root, event.user, True)
        return
    if event.kind in ("store", "retrieve", "send"):
        # the sender is the source, the receiver the destination; the one that asked is the requestor
        caller = (event.user, event.address)
        target = (event.peer or event.user, event.peer_address or event.address)
        if event.kind == "store":  # the caller sent to the node
            _participant(root, caller[0], True, caller[1], SOURCE_ROLE)
            _participant(root, node, False, node_address, DESTINATION_ROLE)
        else:  # the node sent to the caller (C-GET) or to a move destination (C-MOVE)
            _participant(root, node, False, node_address, SOURCE_ROLE)
            _participant(root, target[0], target == caller, target[1], DESTINATION_ROLE)
            if target != caller:
                _participant(root, caller[0], True, caller[1])
        return
    _participant(root, event.user, True, event.address)
    _participant(root, node, False, node_address)


def _objects(root: ElementTree.Element, event: Event) -> None:
    if event.kind == "query":
        element = ElementTree.SubElement(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": event.sop_class or "unknown", "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "3"})
        _code(element, "ParticipantObjectIDTypeCode", ("110181", "SOP Class UID"))
        keys = ",".join(event.query_keys).encode("ascii", "replace")
        ElementTree.SubElement(element, "ParticipantObjectQuery").text = base64.b64encode(keys).decode()
    if event.patient:
        element = ElementTree.SubElement(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": event.patient, "ParticipantObjectTypeCode": "1",
            "ParticipantObjectTypeCodeRole": "1"})
        _code(element, "ParticipantObjectIDTypeCode", ("2", "Patient Number"), "RFC-3881")
    for study in event.studies:
        element = ElementTree.SubElement(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": study, "ParticipantObjectTypeCode": "2", "ParticipantObjectTypeCodeRole": "3"})
        _code(element, "ParticipantObjectIDTypeCode", ("110180", "Study Instance UID"))
    if event.instances and event.kind != "query":
        element = ElementTree.SubElement(root, "ParticipantObjectIdentification", {
            "ParticipantObjectID": event.sop_class or "unknown", "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "3"})
        _code(element, "ParticipantObjectIDTypeCode", ("110181", "SOP Class UID"))
        description = ElementTree.SubElement(element, "ParticipantObjectDescription")
        sop_class = ElementTree.SubElement(description, "SOPClass", {
            "UID": event.sop_class or "unknown", "NumberOfInstances": str(len(event.instances))})
        for uid in event.instances:
            ElementTree.SubElement(sop_class, "Instance", {"UID": uid})


def syslog_frame(xml: bytes, hostname: str, app: str = "stegonode", msgid: str = "DICOM+RFC3881",
                 severity: int = 5, when: datetime.datetime | None = None) -> bytes:
    """One RFC 5424 syslog message carrying ``xml`` (BOM-prefixed UTF-8, as 6.4 asks)."""
    when = when or datetime.datetime.now(datetime.UTC)
    header = (f"<{FACILITY * 8 + severity}>1 {when.astimezone(datetime.UTC).isoformat(timespec='milliseconds')}"
              f" {_printable(hostname)} {app} {os.getpid()} {msgid} - ")
    return header.encode("ascii") + b"\xef\xbb\xbf" + xml


def _printable(text: str) -> str:
    cleaned = "".join(c for c in text if 33 <= ord(c) <= 126)[:255]
    return cleaned or "-"


@dataclass(frozen=True)
class Repository:
    """Where syslog messages go: ``udp://HOST:PORT``, ``tcp://HOST:PORT`` or ``tls://HOST:PORT``."""

    transport: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Repository:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in TRANSPORTS or not parts.hostname or port is None:
            raise ConfigError(f"audit.repository = {url!r}: write udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT")
        return cls(parts.scheme, parts.hostname, port)


class Sender:
    """Sends syslog frames to one repository: a UDP datagram each, or a TCP/TLS stream with
    octet-counting framing (RFC 6587 3.4.1, RFC 5425 4.3), reconnecting when it breaks."""

    def __init__(self, repository: Repository, ca_certificates: str = "", timeout: float = 5.0) -> None:
        self.repository = repository
        self.timeout = timeout
        self._socket: socket.socket | None = None
        self._tls: ssl.SSLContext | None = None
        if repository.transport == "tls":
            self._tls = ssl.create_default_context(cafile=ca_certificates or None)

    def send(self, frame: bytes) -> None:
        repository = self.repository
        if repository.transport == "udp":
            with socket.socket(_family(repository.host), socket.SOCK_DGRAM) as sock:
                sock.sendto(frame, (repository.host, repository.port))
            return
        data = str(len(frame)).encode("ascii") + b" " + frame
        for attempt in (1, 2):  # a connection the repository closed is found on the first send
            try:
                self._connected().sendall(data)
                return
            except OSError:
                self.close()
                if attempt == 2:
                    raise

    def _connected(self) -> socket.socket:
        if self._socket is None:
            sock = socket.create_connection((self.repository.host, self.repository.port), timeout=self.timeout)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.repository.host)
            self._socket = sock
        return self._socket

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class AuditTrail:
    """Records events: each becomes an audit message, queued and written by one thread to the
    local file and the repository of ``[audit]``. With neither configured it does nothing."""

    def __init__(self, source_id: str, repository: str = "", file: str = "", ca_certificates: str = "") -> None:
        self.source_id = source_id
        self.hostname = socket.gethostname()
        self.node_address = ""
        self.file = Path(file) if file else None
        self.sender = Sender(Repository.parse(repository), ca_certificates) if repository else None
        self.sinks: list[Callable[[Event], None]] = []  # e.g. the index (Index.record_audit)
        self._queue: queue.Queue[tuple[Event, bytes] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.file is not None or self.sender is not None or bool(self.sinks)

    def add_sink(self, sink: Callable[[Event], None]) -> None:
        """Also hand every event to ``sink`` (on the audit thread; its errors are logged)."""
        self.sinks.append(sink)

    def record(self, event: Event) -> None:
        """Queue ``event``'s audit message (never blocks, never raises for the network)."""
        if not self.enabled:
            return
        xml = message(event, self.source_id, self.node_address)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stegonode-audit", daemon=True)
                self._thread.start()
        self._queue.put((event, xml))

    def flush(self) -> None:
        """Wait until every queued message was written or sent (or given up on)."""
        self._queue.join()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)
        if self.sender is not None:
            self.sender.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._write(*item)
            finally:
                self._queue.task_done()

    def _write(self, event: Event, xml: bytes) -> None:
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:  # the index may be away for a moment: the other outputs still get it
                log.error("audit: %s event not recorded in the index (%s)", event.kind, type(exc).__name__)
        if self.file is not None:
            try:
                with open(self.file, "ab") as handle:
                    handle.write(xml + b"\n")
            except OSError as exc:
                log.error("audit: cannot write %s (%s)", self.file, exc.strerror or type(exc).__name__)
        if self.sender is not None:
            try:
                self.sender.send(syslog_frame(xml, self.hostname))
            except OSError as exc:
                log.error("audit: cannot send to %s://%s:%d (%s); the message is dropped",
                          self.sender.repository.transport, self.sender.repository.host,
                          self.sender.repository.port, exc.strerror or type(exc).__name__)


def index_record(event: Event) -> dict[str, Any]:
    """``event`` as a row of the index's audit_events table."""
    return {"at": event.time.timestamp(), "kind": event.kind, "outcome": event.outcome, "user": event.user,
            "address": event.address, "objects": " ".join((*event.studies, *event.instances)),
            "detail": " ".join(" ".join(filter(None, (
                event.detail, f"to {event.peer}" if event.peer else "",
                f"keys {','.join(event.query_keys)}" if event.query_keys else ""))).split())}


def from_config(config: Config) -> AuditTrail:
    """The audit trail node.toml's ``[audit]`` table describes."""
    table = config.get("audit", {})
    source = table.get("source_id") or config["node"]["ae_title"]
    return AuditTrail(source, table.get("repository", ""), table.get("file", ""), table.get("ca_certificates", ""))


def query_keys(identifier: Any) -> tuple[str, ...]:
    """The keywords of a C-FIND/C-GET/C-MOVE identifier (never its values)."""
    try:
        return tuple(sorted(element.keyword or str(element.tag) for element in identifier))
    except Exception:  # an identifier that does not decode: its keys are not known
        return ()


def uids(values: Sequence[Any]) -> tuple[str, ...]:
    """Distinct non-empty UIDs, in first-seen order."""
    return tuple(dict.fromkeys(str(value) for value in values if value))


class ServiceAudit:
    """The DICOM services' audit hooks (the node's SCP calls them): one message per C-FIND,
    C-GET and C-MOVE request, and one per association for the C-STOREs it received (the new,
    pseudonymous SOP Instance UIDs: ``pseudonym`` maps a received UID to its stored one)."""

    def __init__(self, trail: AuditTrail, pseudonym: Callable[[str], str]) -> None:
        self.trail = trail
        self.pseudonym = pseudonym
        self._stores: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    @staticmethod
    def _caller(event: Any) -> tuple[str, str]:
        requestor = event.assoc.requestor
        return str(requestor.ae_title).strip(), str(requestor.address)

    def stored(self, event: Any, ok: bool) -> None:
        if not self.trail.enabled:
            return
        request = event.request
        with self._lock:
            entry = self._stores.setdefault(event.assoc, {"classes": Counter(), "instances": [], "refused": 0})
            if ok:
                entry["classes"][str(request.AffectedSOPClassUID or "")] += 1
                entry["instances"].append(self.pseudonym(str(request.AffectedSOPInstanceUID or "")))
            else:
                entry["refused"] += 1

    def closed(self, event: Any) -> None:
        with self._lock:
            entry = self._stores.pop(event.assoc, None)
        if entry is None:
            return
        user, address = self._caller(event)
        classes = entry["classes"]
        sop_class = classes.most_common(1)[0][0] if classes else ""
        stored, refused = len(entry["instances"]), entry["refused"]
        self.trail.record(Event(
            "store", "success" if not refused else ("failure" if stored else "serious"), user, address,
            instances=tuple(entry["instances"]), sop_class=sop_class,
            detail=f"{stored} stored, {refused} refused"))

    def queried(self, event: Any, found: int) -> None:
        if not self.trail.enabled:
            return
        user, address = self._caller(event)
        self.trail.record(Event("query", user=user, address=address,
                                sop_class=str(event.request.AffectedSOPClassUID or ""),
                                query_keys=query_keys(event.identifier), detail=f"{found} matches"))

    def refused(self, event: Any, kind: str, detail: str) -> None:
        """A C-FIND (``kind`` "query") or C-GET/C-MOVE ("retrieve") the node refused; ``detail``
        says why in the node's words (never a value of the identifier)."""
        if not self.trail.enabled:
            return
        user, address = self._caller(event)
        self.trail.record(Event(kind, "failure", user, address, sop_class=str(event.request.AffectedSOPClassUID or ""),
                                query_keys=query_keys(event.identifier) if kind == "query" else (),
                                detail=detail))

    def retrieved(self, event: Any, found: Sequence[Any], destination: tuple[str, int] | None) -> None:
        if not self.trail.enabled:
            return
        user, address = self._caller(event)
        move = destination is not None
        sop_classes = Counter(str(instance.sop_class_uid) for instance in found)
        self.trail.record(Event(
            "retrieve", user=user, address=address,
            peer=str(event.move_destination or "").strip() if move else "",
            peer_address=destination[0] if destination is not None else "",
            instances=uids([instance.sop_instance_uid for instance in found]),
            sop_class=sop_classes.most_common(1)[0][0] if sop_classes else "",
            detail=f"{'C-MOVE' if move else 'C-GET'}, {len(found)} instance(s)"))
