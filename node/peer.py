"""``stegonode fetch``: the peer side. Find studies on a node, retrieve them, reveal every instance.

Retrieval is C-GET by default (one association, no inbound port); with ``--move-to`` a
temporary Storage SCP of the peer's own receives a C-MOVE (the node must list that AE title in
its [[peers]]). Re-identified files go to ``OUT/<study>/<instance>.dcm``, named by the node's
pseudonymous UIDs, with ``OUT/summary.json`` beside them. The node's segmentations of the
kept-intact region (``seg = true``) are saved beside them, re-identified like them (their
references, study and patient those of the revealed files) when every instance they reference
was revealed, else as received.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from stegonode.codecs.keys import PeerKeys
from stegonode.dicom.dicomfile import read_dicom
from stegonode.errors import InputError, NetworkError, StegonodeError
from stegonode.handlers import dicomseg
from stegonode.handlers.compression import STORAGE_SYNTAXES
from stegonode.handlers.reveal import reveal

from .dicomnet import c_store_request, set_nodelay
from .segwriter import is_segmentation

_ADDRESS = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>[^:]+):(?P<port>\d{1,5})$")
MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1..255
# What fetch takes: the node's lossless stored transfer syntaxes and Deflated (objects received
# so), each in a context of its own (the node sends such objects as stored), and uncompressed
# (everything else, decompressed).
UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
FETCH_SYNTAXES = [[syntax] for syntax in STORAGE_SYNTAXES.values() if syntax.is_compressed] \
    + [[DeflatedExplicitVRLittleEndian], UNCOMPRESSED]


@dataclass(frozen=True)
class NodeAddress:
    """``AET@HOST:PORT``."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> NodeAddress:
        match = _ADDRESS.match(text)
        if match is None:
            raise InputError(f"--node {text!r}: write it as AET@HOST:PORT, e.g. STEGONODE@127.0.0.1:11112")
        return cls(match["ae"], match["host"], int(match["port"]))


@dataclass
class StudyResult:
    """What one study's fetch gave: counts and the reason for each instance that failed."""

    study: str
    patient: str
    expected: int
    revealed: list[str] = field(default_factory=list)
    segmentations: list[str] = field(default_factory=list)  # the node's SEGs, saved as they are
    failed: dict[str, str] = field(default_factory=dict)
    carriers: dict[str, str] = field(default_factory=dict)  # instance -> carrier that delivered

    def carrier_counts(self) -> dict[str, int]:
        return dict(Counter(self.carriers.values()))


@dataclass(frozen=True)
class Selection:
    """Which studies: all of them, one Study Instance UID, or one (pseudonymous) Patient ID."""

    study: str = ""
    patient: str = ""


class Peer:
    """An SCU that retrieves protected objects from a node and reveals them."""

    def __init__(self, node: NodeAddress, keys: PeerKeys, ae_title: str = "STEGOPEER") -> None:
        self.node = node
        self.keys = keys
        self.ae_title = ae_title

    def fetch(
        self,
        selection: Selection,
        out: Path,
        move_to: tuple[str, int] | None = None,
        progress: Callable[[int], None] = lambda n: None,
        on_study: Callable[[StudyResult], None] = lambda r: None,
    ) -> list[StudyResult]:
        """Retrieve and reveal every selected study into ``out``; return one result per study."""
        studies = self.find_studies(selection)
        results = []
        for study in studies:
            result = StudyResult(
                study=str(study.StudyInstanceUID),
                patient=str(study.get("PatientID", "")),
                expected=int(study.get("NumberOfStudyRelatedInstances") or 0),
            )
            sop_classes = [UID(uid) for uid in _values(study.get("SOPClassesInStudy"))]
            with tempfile.TemporaryDirectory(prefix="stegonode-fetch-") as received:
                self._retrieve(result.study, sop_classes, Path(received), move_to)
                self._reveal_all(Path(received), out / result.study, result, progress)
            results.append(result)
            on_study(result)
        _write_summary(out, self.node, results)
        return results

    def find_studies(self, selection: Selection) -> list[Dataset]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = selection.study or ""
        identifier.PatientID = selection.patient or ""
        identifier.NumberOfStudyRelatedInstances = None
        identifier.SOPClassesInStudy = None
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = self._associate(ae)
        try:
            studies = []
            for status, found in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
                _check_status(status, "C-FIND")
                if found is not None:
                    studies.append(found)
            return studies
        finally:
            assoc.release()

    def _ae(self) -> AE:
        ae = AE(ae_title=self.ae_title)
        ae.maximum_pdu_size = 0
        return ae

    def _associate(self, ae: AE, **kwargs) -> Association:
        handlers = [(evt.EVT_CONN_OPEN, set_nodelay), *kwargs.pop("evt_handlers", [])]
        assoc = ae.associate(
            self.node.host, self.node.port, ae_title=self.node.ae_title,
            evt_handlers=handlers, **kwargs,
        )
        if not assoc.is_established:
            raise NetworkError(
                f"no association with {self.node.ae_title}@{self.node.host}:{self.node.port} "
                f"({'rejected: is this peer allowed?' if assoc.is_rejected else 'no answer'})"
            )
        return assoc

    def _retrieve(
        self, study: str, sop_classes: list[UID], into: Path, move_to: tuple[str, int] | None
    ) -> None:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = study
        handlers = [(evt.EVT_C_STORE, lambda event: _keep(event, into))]
        if move_to is None:
            self._get(identifier, sop_classes[: (MAX_CONTEXTS - 1) // len(FETCH_SYNTAXES)], handlers)
        else:
            self._move(identifier, sop_classes, handlers, move_to)

    def _get(self, identifier: Dataset, sop_classes: list[UID], handlers: list) -> None:
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for sop_class in sop_classes:
            for syntaxes in FETCH_SYNTAXES:
                ae.add_requested_context(sop_class, syntaxes)
        roles = [build_role(sop_class, scp_role=True) for sop_class in sop_classes]
        assoc = self._associate(ae, ext_neg=roles, evt_handlers=handlers)
        try:
            for status, _ in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet):
                _check_status(status, "C-GET")
        finally:
            assoc.release()

    def _move(self, identifier: Dataset, sop_classes: list[UID], handlers: list,
              move_to: tuple[str, int]) -> None:
        ae_title, port = move_to
        receiver = AE(ae_title=ae_title)
        receiver.maximum_pdu_size = 0
        for sop_class in sop_classes:
            receiver.add_supported_context(sop_class, [s for syntaxes in FETCH_SYNTAXES for s in syntaxes])
        server = receiver.start_server(
            ("0.0.0.0", port), block=False, evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay), *handlers]
        )
        assert server is not None, "start_server(block=False) returns the server"
        try:
            ae = self._ae()
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
            assoc = self._associate(ae)
            try:
                for status, _ in assoc.send_c_move(
                    identifier, ae_title, StudyRootQueryRetrieveInformationModelMove
                ):
                    _check_status(status, "C-MOVE")
            finally:
                assoc.release()
        finally:
            server.shutdown()

    def _reveal_all(self, received: Path, out: Path, result: StudyResult,
                    progress: Callable[[int], None]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        originals: dict[str, Dataset] = {}  # node's SOP Instance UID -> identity of the revealed copy
        segmentations = []
        for path in sorted(received.iterdir()):
            if is_segmentation(path):
                segmentations.append(path)
                continue
            try:
                revealed = reveal(read_dicom(path), self.keys)
                revealed.dataset.save_as(out / path.name, enforce_file_format=True)
                result.revealed.append(path.stem)
                originals[path.stem] = dicomseg.identity(revealed.dataset)
                result.carriers[path.stem] = revealed.carrier if revealed.complete else f"{revealed.carrier} (core)"
            except StegonodeError as exc:
                result.failed[path.stem] = str(exc)
            progress(1)
        for path in segmentations:  # re-identified to match the revealed files, where all were revealed
            try:
                dicomseg.reidentified(read_dicom(path), originals).save_as(out / path.name, enforce_file_format=True)
            except InputError:
                shutil.copyfile(path, out / path.name)
            result.segmentations.append(path.stem)


def _keep(event: evt.Event, into: Path) -> int:
    """C-STORE sub-operation on the peer: keep the bytes as received, named by the node's UID."""
    uid = UID(c_store_request(event).AffectedSOPInstanceUID or "")
    if not uid.is_valid:
        return 0xA900
    (into / f"{uid}.dcm").write_bytes(event.encoded_dataset(include_meta=True))
    return 0x0000


def _values(value) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in value] if not isinstance(value, str) else [value]


def _check_status(status: Dataset, service: str) -> None:
    if "Status" not in status:
        raise NetworkError(f"{service}: the node sent no response (association dropped or timed out)")
    code = int(status.Status)
    # Success, pending, and "some sub-operations failed" (those instances count as missing).
    if code in (0x0000, 0xFF00, 0xFF01, 0xB000):
        return
    comment = status.get("ErrorComment", "")
    raise NetworkError(f"{service} failed with status 0x{code:04X}{': ' + comment if comment else ''}")


def _write_summary(out: Path, node: NodeAddress, results: list[StudyResult]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "node": f"{node.ae_title}@{node.host}:{node.port}",
        "studies": [
            {
                "study_instance_uid": r.study,
                "patient_id": r.patient,
                "instances_expected": r.expected,
                "instances_revealed": len(r.revealed),
                "segmentations": r.segmentations,
                "delivered_by": r.carriers,
                "carriers": r.carrier_counts(),
                "failed": r.failed,
                "directory": str(out / r.study),
            }
            for r in results
        ],
    }
    (out / "summary.json").write_text(json.dumps(document, indent=2) + "\n")
