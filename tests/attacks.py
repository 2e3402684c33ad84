"""Network attacks that hold resources rather than send bad bytes (issue 24): shared by
tests/test_lockout.py and benchmarks/fuzz.py.

Each attack runs in bounded batches from loopback addresses (127.0.0.0/8 only) and stops by
itself; each returns one answer per input for the campaign's counts, and the longest time a
legitimate probe waited beyond the node's own timeout (a lock-out).
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pydicom
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

import hostile
from images import image_path


def connect(port: int, source: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def address(number: int, block: int = 10) -> str:
    """A distinct loopback address per number: 127.<block + n // 250>.<...>.<1 + n % 250>."""
    return f"127.{block + number // 62500}.{(number // 250) % 250}.{1 + number % 250}"


def read_pdu_type(sock: socket.socket, timeout: float = 10) -> int | None:
    """The type of the next PDU the node sends (its whole PDU read), None if it closed."""
    sock.settimeout(timeout)
    header = b""
    while len(header) < 6:
        chunk = sock.recv(6 - len(header))
        if not chunk:
            return None
        header += chunk
    kind, length = header[0], struct.unpack(">I", header[2:])[0]
    while length:
        chunk = sock.recv(min(length, 65536))
        if not chunk:
            return None
        length -= len(chunk)
    return kind


def raw_association(port: int, source: str, calling: str) -> tuple[socket.socket, int | None]:
    """An association requested over a raw socket: (socket, 2 accepted / 3 rejected / None)."""
    sock = connect(port, source)
    sock.sendall(hostile.associate_rq(calling=calling))
    return sock, read_pdu_type(sock)


def closed_by_node(sock: socket.socket, timeout: float) -> bool:
    """Whether the node closes ``sock`` within ``timeout`` (whatever it sends first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def echo(port: int, source: str = "127.0.0.1", calling: str = "PROBE") -> bool:
    """One C-ECHO: True if the association was accepted and the echo answered Success."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", port, ae_title="STEGONODE", bind_address=(source, 0))
    if not assoc.is_established:
        return False
    try:
        return getattr(assoc.send_c_echo(), "Status", None) == 0
    finally:
        assoc.release()


def seconds_until_echo(port: int, limit: float, source: str = "127.0.0.1") -> float:
    """Seconds until a C-ECHO is answered, retrying every 0.2 s; AssertionError past ``limit``."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if echo(port, source):
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"no C-ECHO answered within {limit} s")


@contextmanager
def trickling(sockets: list[socket.socket], every: float) -> Iterator[None]:
    """Send one byte on each socket every ``every`` seconds until the block ends; then close them."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            for sock in sockets:
                try:
                    sock.send(b"\x00")
                except OSError:
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        for sock in sockets:
            sock.close()


# -- the campaign's families: (answers, longest lock-out beyond the timeout in seconds) ---------

Outcome = tuple[list[str], float]


def _probe(port: int, timeout: float, allowance: float = 5.0) -> float:
    """How long past ``timeout`` a legitimate C-ECHO waited (0 when within it)."""
    try:
        waited = seconds_until_echo(port, timeout + allowance + 30)
    except AssertionError:
        return float("inf")
    return max(0.0, waited - timeout)


def slow_association_requests(port: int, count: int, acse_timeout: float, batch: int = 200) -> Outcome:
    """A-ASSOCIATE-RQs sent one byte a second, ``batch`` addresses at a time."""
    answers, worst, request = [], 0.0, hostile.associate_rq(calling="SLOWRQ")
    for first in range(0, count, batch):
        sockets = [connect(port, address(first + n)) for n in range(min(batch, count - first))]
        for sock in sockets:
            sock.send(request[:1])
        with trickling(list(sockets), every=1.0):
            worst = max(worst, _probe(port, acse_timeout))
            answers += ["closed at the ACSE timeout" if closed_by_node(s, acse_timeout + 5) else "still open"
                        for s in sockets]
    return answers, worst


def half_sent_requests(port: int, count: int, acse_timeout: float, batch: int = 300) -> Outcome:
    """Ten bytes of an A-ASSOCIATE-RQ, then silence, from ``batch`` addresses at a time."""
    answers, worst, request = [], 0.0, hostile.associate_rq(calling="HALF")
    for first in range(0, count, batch):
        sockets = [connect(port, address(first + n, block=20)) for n in range(min(batch, count - first))]
        for sock in sockets:
            sock.send(request[:10])
        worst = max(worst, _probe(port, acse_timeout))
        answers += ["closed at the ACSE timeout" if closed_by_node(s, acse_timeout + 5) else "still open"
                    for s in sockets]
        for sock in sockets:
            sock.close()
    return answers, worst


def trickled_pdus(port: int, count: int, idle_timeout: float, slots: int = 16) -> Outcome:
    """Established associations trickling a P-DATA-TF PDU, ``slots`` at a time (every slot)."""
    answers, worst = [], 0.0
    for first in range(0, count, slots):
        sockets = []
        for n in range(min(slots, count - first)):
            sock, answer = raw_association(port, address(first + n, block=30), f"TRICKLE{n}")
            if answer != 0x02:
                answers.append("association refused")
                sock.close()
                continue
            sock.sendall(struct.pack(">BxI", 0x04, 1000) + b"\x00")
            sockets.append(sock)
        with trickling(list(sockets), every=0.5):
            worst = max(worst, _probe(port, idle_timeout))
            answers += ["cut off at the idle timeout" if closed_by_node(s, idle_timeout + 5) else "still open"
                        for s in sockets]
    return answers, worst


def idle_floods(port: int, count: int, per_flood: int = 16) -> Outcome:
    """``per_flood`` idle associations from one address, then a C-ECHO from another address."""
    answers, worst = [], 0.0
    for first in range(0, count, per_flood):
        source = address(first // per_flood, block=40)
        held = [raw_association(port, source, "IDLE") for _ in range(min(per_flood, count - first))]
        start = time.monotonic()
        answered = echo(port, source=address(first // per_flood, block=41), calling="OTHER")
        worst = max(worst, 0.0 if answered else float("inf"), time.monotonic() - start - 5.0)
        answers += ["accepted" if answer == 0x02 else "refused (per-address limit)" for _, answer in held]
        for sock, _ in held:
            sock.close()
    return answers, max(worst, 0.0)


def same_uid_races(port: int, count: int, seed: int = 24) -> list[str]:
    """Two copies of each of ``count`` SOP Instance UIDs, the newer (128 x 128) 0.1-0.5 s after
    the older (512 x 512, slower to protect); returns the original UIDs."""
    rng = random.Random(seed)
    ae = AE(ae_title="RACER")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    series, uids = generate_uid(), []
    older_source, newer_source = pydicom.dcmread(image_path("693_UNCR.dcm")), pydicom.dcmread(image_path("CT_small.dcm"))
    newer_source.SOPClassUID = older_source.SOPClassUID
    for _ in range(count):
        uid = generate_uid()
        uids.append(uid)
        for ds, pause in ((older_source, rng.uniform(0.1, 0.5)), (newer_source, 0.0)):
            ds.SOPInstanceUID, ds.SeriesInstanceUID = uid, series
            assoc = ae.associate("127.0.0.1", port, ae_title="STEGONODE")
            if assoc.is_established:
                assoc.send_c_store(ds)
                assoc.release()
            time.sleep(pause)
    return uids


def oversize_attribute(rng: random.Random) -> pydicom.Dataset:
    """A real CT with one identifying attribute 65,536 to 100,000 characters long (sent as UN)."""
    ds = pydicom.dcmread(image_path("CT_small.dcm"))
    keyword = rng.choice(["PatientName", "PatientID", "PatientAddress", "OtherPatientIDs",
                          "StudyDescription", "InstitutionName", "ReferringPhysicianName"])
    length = rng.randint(65_536, 100_000)
    value = "^".join(["Canary"] * (length // 7)) if keyword.endswith("Name") else "C" * length
    setattr(ds, keyword, value)
    ds.SOPInstanceUID = generate_uid()
    return ds
