"""The audit trail: a real syslog receiver on loopback gets one DICOM audit message (PS3.15 A.5)
per audited event of a scripted session with a real node, DCMTK peers and the console; a burst
of failed logins ends in a lock that takes effect and expires."""

from __future__ import annotations

import base64
import http.cookiejar
import re
import socketserver
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest

from stegonode.node import audit

from nodes import PATIENT, NodeProcess, free_port, scu, storescu, study_keys, write_series

# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG
FRAME = re.compile(rb"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) \xef\xbb\xbf(.*)$", re.S)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$")
EVENT_IDS = {  # PS3.15 A.5.3 (DCM codes)
    "110100": "Application Activity", "110103": "DICOM Instances Accessed",
    "110104": "DICOM Instances Transferred", "110106": "Export", "110112": "Query",
    "110113": "Security Alert", "110114": "User Authentication",
}
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass
class Message:
    priority: int
    xml: ElementTree.Element
    raw: bytes

    @property
    def event_id(self) -> str:
        return self.xml.find("EventIdentification/EventID").get("csd-code")

    @property
    def event_type(self) -> str | None:
        element = self.xml.find("EventIdentification/EventTypeCode")
        return None if element is None else element.get("csd-code")

    @property
    def outcome(self) -> str:
        return self.xml.find("EventIdentification").get("EventOutcomeIndicator")

    @property
    def action(self) -> str:
        return self.xml.find("EventIdentification").get("EventActionCode")


def parse_frame(data: bytes) -> Message:
    """One RFC 5424 syslog message with a DICOM audit message, checked against PS3.15 A.5.1."""
    match = FRAME.match(data)
    assert match, data[:120]
    priority = int(match.group(1))
    assert priority // 8 == 10 and TIMESTAMP.match(match.group(2).decode())
    assert match.group(6) == b"DICOM+RFC3881"
    root = ElementTree.fromstring(match.group(8))
    assert root.tag == "AuditMessage"
    identification = root.find("EventIdentification")
    assert identification is not None and identification.get("EventActionCode") in "CRUDE"
    assert TIMESTAMP.match(identification.get("EventDateTime"))
    assert identification.get("EventOutcomeIndicator") in ("0", "4", "8", "12")
    event_id = identification.find("EventID")
    assert event_id.get("codeSystemName") == "DCM" and EVENT_IDS[event_id.get("csd-code")] == event_id.get(
        "originalText")
    participants = root.findall("ActiveParticipant")
    assert participants and all(p.get("UserID") and p.get("UserIsRequestor") in ("true", "false") for p in participants)
    source = root.find("AuditSourceIdentification")
    assert source is not None and source.get("AuditSourceID") and source.find("AuditSourceTypeCode") is not None
    for element in root.findall("ParticipantObjectIdentification"):
        assert element.get("ParticipantObjectID") and element.get("ParticipantObjectTypeCode") in "1234"
        assert element.find("ParticipantObjectIDTypeCode") is not None
    order = [child.tag for child in root]
    assert order[0] == "EventIdentification" and order.index("AuditSourceIdentification") > max(
        i for i, tag in enumerate(order) if tag == "ActiveParticipant")
    return Message(priority, root, data)


class Receiver:
    """A syslog audit repository on loopback: UDP datagrams, or TCP with octet counting."""

    def __init__(self, transport: str, tls: ssl.SSLContext | None = None) -> None:
        self.messages: list[Message] = []
        self.condition = threading.Condition()
        receiver = self

        class Datagram(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                receiver._add(self.request[0])

        class Stream(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while True:
                    length = b""
                    while not length.endswith(b" "):
                        byte = self.rfile.read(1)
                        if not byte:
                            return
                        length += byte
                    receiver._add(self.rfile.read(int(length)))

        class TLSServer(socketserver.ThreadingTCPServer):
            def get_request(self):
                sock, address = super().get_request()
                assert tls is not None
                return tls.wrap_socket(sock, server_side=True), address

        if transport == "udp":
            self.server: socketserver.BaseServer = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Datagram)
        else:
            server_class = TLSServer if transport == "tls" else socketserver.ThreadingTCPServer
            self.server = server_class(("127.0.0.1", 0), Stream)
            self.server.daemon_threads = True
        self.url = f"{transport}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _add(self, data: bytes) -> None:
        message = parse_frame(data)
        with self.condition:
            self.messages.append(message)
            self.condition.notify_all()

    def wait_for(self, predicate, timeout: float = 60) -> list[Message]:
        """Wait until ``predicate(messages)`` holds; the messages then."""
        with self.condition:
            assert self.condition.wait_for(lambda: predicate(self.messages), timeout), [
                (m.event_id, m.event_type, m.outcome) for m in self.messages]
            return list(self.messages)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def of(messages: list[Message], event_id: str, event_type: str | None = None, outcome: str | None = None,
       action: str | None = None) -> list[Message]:
    return [m for m in messages if m.event_id == event_id and (event_type is None or m.event_type == event_type)
            and (outcome is None or m.outcome == outcome) and (action is None or m.action == action)]


def _tls_server(tmp_path: Path) -> ssl.SSLContext:
    """A repository certificate for 127.0.0.1 (self-signed: the client trusts it as its CA)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "audit repository")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    (tmp_path / "repository.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "repository.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "repository.pem", tmp_path / "repository.key")
    return context


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_audit_trail_sends_rfc5424_frames(transport, tmp_path):
    receiver = Receiver(transport, _tls_server(tmp_path) if transport == "tls" else None)
    trail = audit.AuditTrail("STEGONODE", receiver.url, str(tmp_path / "audit.log"),
                             str(tmp_path / "repository.pem") if transport == "tls" else "")
    try:
        trail.record(audit.Event("start", user="test"))
        trail.record(audit.Event("query", user="PEER", address="127.0.0.1", sop_class="1.2.840.10008.5.1.4.1.2.2.1",
                                 query_keys=("PatientID", "StudyInstanceUID"), detail="0 matches"))
        trail.record(audit.Event("retrieve", user="PEER", address="127.0.0.1", peer="DEST", peer_address="10.0.0.2",
                                 instances=("2.25.1", "2.25.2"), sop_class="1.2.840.10008.5.1.4.1.1.2"))
        messages = receiver.wait_for(lambda m: len(m) == 3)
    finally:
        trail.close()
        receiver.close()
    start, query, retrieve = sorted(messages, key=lambda m: m.event_id)[0], *[
        m for m in messages if m.event_id in ("110112", "110104")]
    assert (start.event_id, start.event_type) == ("110100", "110120")
    query_object = query.xml.find("ParticipantObjectIdentification/ParticipantObjectQuery")
    assert base64.b64decode(query_object.text) == b"PatientID,StudyInstanceUID"
    roles = {p.get("UserID"): p.find("RoleIDCode").get("csd-code") for p in retrieve.xml.findall("ActiveParticipant")
             if p.find("RoleIDCode") is not None}
    assert roles == {"STEGONODE": "110153", "DEST": "110152"}
    assert len((tmp_path / "audit.log").read_bytes().splitlines()) == 3


def test_the_index_keeps_audit_records_on_both_backends(new_database, tmp_path):
    from stegonode.node.index import Index

    index = Index(new_database() or f"sqlite:///{tmp_path}/index.sqlite")
    trail = audit.AuditTrail("STEGONODE")
    trail.add_sink(lambda event: index.record_audit(audit.index_record(event)))
    try:
        trail.record(audit.Event("login", "failure", "console", "10.0.0.7", detail="wrong password"))
        trail.record(audit.Event("retrieve", user="PEER", address="127.0.0.1", peer="DEST",
                                 instances=("2.25.1", "2.25.2"), detail="C-MOVE, 2 instance(s)"))
        trail.flush()
        newest, oldest = index.audit_events()
        assert (newest["kind"], newest["objects"], newest["detail"]) == (
            "retrieve", "2.25.1 2.25.2", "C-MOVE, 2 instance(s) to DEST")
        assert (oldest["kind"], oldest["outcome"], oldest["address"]) == ("login", "failure", "10.0.0.7")
        assert [e["kind"] for e in index.audit_events(outcome="failure")] == ["login"]
        assert index.audit_events(kind="login", address="10.0.0.8") == []
    finally:
        trail.close()
        index.close()


def test_bad_repository_is_a_config_error(tmp_path):
    from stegonode.errors import ConfigError
    from stegonode.node import config as node_config

    config = tmp_path / "node.toml"
    config.write_text('[audit]\nrepository = "http://example.org"\n')
    with pytest.raises(ConfigError, match="audit.repository"):
        node_config.load(config)


class Browser:
    """A cookie-keeping HTTP client for the console's forms (CSRF token from each page)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.url + path, timeout=60) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def post(self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]] | None = None,
             form_page: str | None = None) -> tuple[int, str]:
        _, page = self.get(form_page or path)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token, page[:500]
        fields = {**fields, "csrf_token": token.group(1)}
        boundary = uuid.uuid4().hex
        body = b""
        for name, value in fields.items():
            body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, (filename, data) in (files or {}).items():
            body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with self.opener.open(request, timeout=120) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> Iterator[tuple[NodeProcess, Receiver, str]]:
    receiver = Receiver("udp")
    move_port = free_port()
    web_port = free_port()
    node = NodeProcess(
        tmp_path_factory.mktemp("audited"), peers=[{"ae_title": "MOVESCU", "host": "127.0.0.1", "port": move_port}],
        tables={"web": {"enabled": True, "port": web_port, "login": "token", "login_delay_seconds": 0.01,
                        "login_lock_after": 10, "login_lock_seconds": 2.0},
                "handlers.segment": {"segmenter": "classical"},
                "audit": {"repository": receiver.url, "file": "audit.log"}})
    node.start()
    deadline = time.monotonic() + 60
    token = None
    while token is None and time.monotonic() < deadline:
        found = re.search(r"web console login token: (\S+)", node.log.read_text())
        token = found.group(1) if found else time.sleep(0.05)
    assert token
    yield node, receiver, f"http://127.0.0.1:{web_port}", token, move_port
    node.stop()
    receiver.close()


def test_a_scripted_session_is_audited_message_by_message(audited, tmp_path):
    node, receiver, url, token, move_port = audited
    start = receiver.wait_for(lambda m: of(m, "110100", "110120"))
    assert len(of(start, "110113", "110131")) == 1  # configuration loaded
    (series,) = [write_series(tmp_path / "series", 1)]
    assert storescu(node.port, series).returncode == 0
    node.wait_idle(1)
    stored = receiver.wait_for(lambda m: of(m, "110104", action="C"))
    (store,) = of(stored, "110104", action="C")
    instances = store.xml.findall(".//SOPClass/Instance")
    assert len(instances) == 1 and UID.match(instances[0].get("UID"))
    (study,) = {row[0] for row in node.query('SELECT "StudyInstanceUID" FROM instances')}
    by_key = node.status()["stored_by_key"]  # node.keys's recipient: its pixel key id and certificate id
    assert len(by_key) == 2 and set(by_key.values()) == {1}

    assert scu("findscu", node.port, *study_keys(study)).returncode == 0
    receiver.wait_for(lambda m: of(m, "110112"))
    got = tmp_path / "got"
    got.mkdir()
    assert scu("getscu", node.port, "-od", str(got), *study_keys(study)).returncode == 0
    moved = tmp_path / "moved"
    moved.mkdir()
    result = scu("movescu", node.port, "-aet", "MOVESCU", "-aem", "MOVESCU", "--port", str(move_port),
                 "-od", str(moved), *study_keys(study), timeout=120)
    assert result.returncode == 0, result.stderr
    transfers = receiver.wait_for(lambda m: len(of(m, "110104", action="R")) == 2)
    get, move = of(transfers, "110104", action="R")
    for message in (get, move):
        (instance,) = message.xml.findall(".//SOPClass/Instance")
        assert instance.get("UID") in {p.name.removeprefix("CT.") for p in (*got.iterdir(), *moved.iterdir())}
    move_roles = {p.get("UserID"): p.find("RoleIDCode") for p in move.xml.findall("ActiveParticipant")}
    assert move_roles["MOVESCU"].get("csd-code") == "110152"
    scu("movescu", node.port, "-aem", "NOWHERE", *study_keys(study))  # refused: an unknown destination
    (refused,) = of(receiver.wait_for(lambda m: of(m, "110104", action="R", outcome="4")), "110104", outcome="4")
    assert "unknown destination NOWHERE" in refused.xml.find("EventIdentification/EventOutcomeDescription").text

    console = Browser(url)
    assert console.post("/login", {"secret": "not the token"})[0] == 401
    assert console.post("/login", {"secret": token})[0] == 200
    logins = receiver.wait_for(lambda m: of(m, "110114", "110122", "0"))
    assert len(of(logins, "110114", "110122", "4")) == 1 and len(of(logins, "110114", "110122", "0")) == 1

    stored_uid = store.xml.find(".//SOPClass/Instance").get("UID")
    status, _ = console.get(f"/instances/{stored_uid}.dcm")
    assert status == 200
    receiver.wait_for(lambda m: of(m, "110106"))
    protected = (node.data / "stored").rglob("*.dcm")
    data = next(protected).read_bytes()
    status, page = console.post("/reveal", {}, {"files": ("x.dcm", data), "keys": ("peer.keys", node.peer_keys.read_bytes())})
    assert status == 200 and PATIENT["PatientID"] in page
    (reveal,) = of(receiver.wait_for(lambda m: of(m, "110103", action="R")), "110103", action="R")
    assert reveal.outcome == "0"

    # the console sends the study to a peer that is not listening now: audited as a failed transfer
    status, page = console.post(f"/studies/{study}/send", {"peer": "MOVESCU"}, form_page=f"/studies/{study}")
    assert status == 200
    sends = receiver.wait_for(lambda m: of(m, "110104", action="R", outcome="8"))
    (send,) = of(sends, "110104", action="R", outcome="8")
    roles = {p.get("UserID"): p.find("RoleIDCode") for p in send.xml.findall("ActiveParticipant")}
    assert roles["MOVESCU"].get("csd-code") == "110152" and "console" in roles
    assert "0 sent, 1 failed" in send.xml.find("EventIdentification/EventOutcomeDescription").text
    # and deletes it
    status, page = console.post("/delete", {"level": "study", "uid": study}, form_page=f"/delete?level=study&uid={study}")
    assert status == 200 and "Deleted 1 stored object(s)" in page
    (deleted,) = of(receiver.wait_for(lambda m: of(m, "110103", action="D")), "110103", action="D")
    assert deleted.outcome == "0" and deleted.xml.find(".//SOPClass/Instance").get("UID") == stored_uid
    assert node.query('SELECT count(*) FROM instances') == [(0,)]

    status, page = console.get("/audit?kind=retrieve&outcome=success")
    assert status == 200 and page.count("<tr><td data-label=\"Time\">") == 2 and "C-MOVE" in page and "C-GET" in page
    status, page = console.get("/audit?kind=login&outcome=failure")
    assert status == 200 and page.count("<tr><td data-label=\"Time\">") == 1 and "wrong token" in page

    everything = b"".join(m.raw for m in receiver.messages) + (node.directory / "audit.log").read_bytes()
    for value in PATIENT.values():
        assert value.encode() not in everything


def test_a_burst_of_failed_logins_locks_and_the_lock_expires(audited):
    node, receiver, url, token, _ = audited
    attacker = Browser(url)
    statuses = [attacker.post("/login", {"secret": f"guess {n}"})[0] for n in range(20)]
    assert statuses[0] == 401 and statuses[-1] == 429 and set(statuses) <= {401, 429}
    messages = receiver.wait_for(lambda m: of(m, "110113", "110137", "8"))
    assert len(of(messages, "110113", "110137", "8")) == 1  # one lock
    assert "console login locked for 127.0.0.1" in node.log.read_text()
    status, page = attacker.post("/login", {"secret": token})
    assert status == 429 and "locked" in page  # the lock takes effect: even the token is refused
    deadline = time.monotonic() + 30
    while status != 200 and time.monotonic() < deadline:
        threading.Event().wait(0.25)
        status, page = attacker.post("/login", {"secret": token})
    assert status == 200  # ... and it expires
    messages = receiver.wait_for(lambda m: of(m, "110113", "110137", "0") and len(of(m, "110114", "110122", "0")) >= 2)
    assert len(of(messages, "110113", "110137", "0")) == 1  # the lock's end


def test_stop_is_audited(audited):
    node, receiver, *_ = audited
    node.stop()
    receiver.wait_for(lambda m: of(m, "110100", "110121"))


def test_the_throttle_delay_doubles_then_locks_and_expires():
    from stegonode.web.throttle import LoginThrottle

    now = [1000.0]
    throttle = LoginThrottle(delay=1.0, lock_after=5, lock_seconds=60.0, clock=lambda: now[0])
    assert throttle.failed("a") == (1, False) and throttle.before("a").refused is None  # one typo: no wait
    waits = []
    for failures in (2, 3, 4):
        assert throttle.failed("a") == (failures, False)
        verdict = throttle.before("a")
        waits.append(verdict.wait_seconds)
        assert verdict.refused == "wait" and throttle.before("b").refused is None  # other addresses unaffected
        now[0] += verdict.wait_seconds
    assert waits == [1, 2, 4]
    assert throttle.failed("a") == (5, True)
    assert throttle.before("a").refused == "locked" and throttle.before("a").wait_seconds == 60
    now[0] += 59.5
    assert throttle.before("a").refused == "locked"
    now[0] += 1
    assert throttle.before("a").lock_ended and throttle.before("a").refused is None
    throttle.failed("c")
    throttle.succeeded("c")
    assert throttle.failed("c") == (1, False)  # a success cleared the count
