"""``stegonode fetch``: the peer side. Find studies on a node, retrieve them, reveal every instance.

Retrieval is C-GET by default (no inbound port); with ``--move-to`` a temporary Storage SCP
of the peer's own receives a C-MOVE (the node must list that AE title in its [[peers]]).

An association holds at most 128 presentation contexts, and a C-GET sends only objects whose
SOP class and transfer syntax the requestor proposed. Fetch therefore first lists the study's
instances (C-FIND at IMAGE level: SOP class and Available Transfer Syntax UID), proposes for
each SOP class its stored syntaxes and uncompressed, and when the classes do not fit one
association splits the retrieval: one association per group of SOP classes, retrieving whole
series at SERIES level and the group's instances of mixed series at IMAGE level (the same
requests go by C-MOVE with ``--move-to``). Whatever still did not arrive is counted per study
(``not_retrieved``), never passed over in silence. Re-identified files go to ``OUT/<study>/<instance>.dcm``, named by the node's
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

from .dicomnet import c_store_request, set_nodelay, wake_reactors
from .segwriter import is_segmentation

_ADDRESS = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>[^:]+):(?P<port>\d{1,5})$")
MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1..255
STORAGE_CONTEXTS = MAX_CONTEXTS - 1  # one is the Query/Retrieve model's
UIDS_PER_REQUEST = 1000  # SOP Instance UIDs in one IMAGE-level identifier
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
    not_retrieved: list[str] = field(default_factory=list)  # instances the node listed but did not send
    carriers: dict[str, str] = field(default_factory=dict)  # instance -> carrier that delivered

    def carrier_counts(self) -> dict[str, int]:
        return dict(Counter(self.carriers.values()))


@dataclass(frozen=True)
class Listed:
    """One instance of a study as the node lists it (C-FIND at IMAGE level)."""

    series: str
    instance: str
    sop_class: UID
    syntax: UID | None  # as stored (Available Transfer Syntax UID), None when not answered


@dataclass(frozen=True)
class Group:
    """What one association retrieves: SOP classes with the transfer syntaxes proposed for each
    (a context per list), and the identifiers of the C-GET (or C-MOVE) requests."""

    contexts: dict[UID, list[list[UID]]]
    identifiers: list[Dataset]


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
            listed = self.find_instances(result.study)
            result.expected = max(result.expected, len(listed))
            with tempfile.TemporaryDirectory(prefix="stegonode-fetch-") as received:
                self._retrieve(result.study, listed, Path(received), move_to)
                arrived = {path.stem for path in Path(received).iterdir()}
                result.not_retrieved = sorted({i.instance for i in listed} - arrived)
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
        return self._find(identifier)

    def _find(self, identifier: Dataset) -> list[Dataset]:
        """Every match of one study-root C-FIND."""
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = self._associate(ae)
        try:
            matches = []
            for status, found in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
                _check_status(status, "C-FIND")
                if found is not None:
                    matches.append(found)
            return matches
        finally:
            assoc.release()

    def find_instances(self, study: str) -> list[Listed]:
        """Every instance of ``study`` the node lists, with its SOP class and stored syntax."""
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "IMAGE"
        identifier.StudyInstanceUID = study
        identifier.SeriesInstanceUID = ""
        identifier.SOPInstanceUID = ""
        identifier.SOPClassUID = ""
        identifier.AvailableTransferSyntaxUID = ""
        listed = []
        for found in self._find(identifier):
            if found.get("SOPInstanceUID") and found.get("SOPClassUID"):
                syntax = UID(str(found.get("AvailableTransferSyntaxUID") or ""))
                listed.append(Listed(str(found.get("SeriesInstanceUID") or ""), str(found.SOPInstanceUID),
                                     UID(str(found.SOPClassUID)), syntax if syntax.is_valid else None))
        return listed

    def _ae(self) -> AE:
        wake_reactors()  # no response taken by a reactor (pynetdicom #875), none left waiting
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

    def _retrieve(self, study: str, listed: list[Listed], into: Path, move_to: tuple[str, int] | None) -> None:
        handlers = [(evt.EVT_C_STORE, lambda event: _keep(event, into))]
        for group in plan(study, listed):
            if move_to is None:
                self._get(group, handlers)
            else:
                self._move(group, handlers, move_to)

    def _get(self, group: Group, handlers: list) -> None:
        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for sop_class, contexts in group.contexts.items():
            for syntaxes in contexts:
                ae.add_requested_context(sop_class, syntaxes)
        roles = [build_role(sop_class, scp_role=True) for sop_class in group.contexts]
        assoc = self._associate(ae, ext_neg=roles, evt_handlers=handlers)
        try:
            for identifier in group.identifiers:
                for status, _ in assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet):
                    _check_status(status, "C-GET")
        finally:
            assoc.release()

    def _move(self, group: Group, handlers: list, move_to: tuple[str, int]) -> None:
        ae_title, port = move_to
        receiver = AE(ae_title=ae_title)
        receiver.maximum_pdu_size = 0
        for sop_class, contexts in group.contexts.items():
            receiver.add_supported_context(sop_class, [s for syntaxes in contexts for s in syntaxes])
        server = receiver.start_server(
            ("0.0.0.0", port), block=False, evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay), *handlers]
        )
        assert server is not None, "start_server(block=False) returns the server"
        try:
            ae = self._ae()
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
            assoc = self._associate(ae)
            try:
                for identifier in group.identifiers:
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


def contexts_for(listed: list[Listed]) -> dict[UID, list[list[UID]]]:
    """Per SOP class, the contexts to propose: each stored compressed or Deflated syntax alone
    (the node sends such objects as stored, and reveal gives back exactly what arrived), then
    Explicit and Implicit VR Little Endian. A class whose stored syntaxes the node did not
    answer gets the node's lossless stored syntaxes and Deflated."""
    stored: dict[UID, dict[UID, None]] = {}
    for item in listed:
        syntaxes = stored.setdefault(item.sop_class, {})
        if item.syntax is None:
            syntaxes.update(dict.fromkeys(s for (s,) in FETCH_SYNTAXES[:-1]))
        elif item.syntax.is_compressed or item.syntax.is_deflated:
            syntaxes[item.syntax] = None
    return {sop_class: [[syntax] for syntax in syntaxes] + [UNCOMPRESSED] for sop_class, syntaxes in stored.items()}


def plan(study: str, listed: list[Listed]) -> list[Group]:
    """The associations that retrieve every ``listed`` instance of ``study``: SOP classes packed
    into groups whose contexts fit one association; the whole study in one C-GET when they all
    fit, else per group its whole series (SERIES level) and its part of mixed series (IMAGE)."""
    contexts = contexts_for(listed)
    groups: list[dict[UID, list[list[UID]]]] = []
    used = STORAGE_CONTEXTS
    for sop_class, proposed in contexts.items():
        proposed = proposed[-STORAGE_CONTEXTS:]  # never more than one association holds
        if used + len(proposed) > STORAGE_CONTEXTS:
            groups.append({})
            used = 0
        groups[-1][sop_class] = proposed
        used += len(proposed)
    if len(groups) <= 1:
        return [Group(groups[0] if groups else {}, [_identifier("STUDY", study)])]
    classes_of: dict[str, set[UID]] = {}
    for item in listed:
        classes_of.setdefault(item.series, set()).add(item.sop_class)
    return [Group(group, _identifiers(study, listed, set(group), classes_of)) for group in groups]


def _identifiers(study: str, listed: list[Listed], classes: set[UID],
                 classes_of: dict[str, set[UID]]) -> list[Dataset]:
    whole = sorted(series for series, held in classes_of.items() if held <= classes)
    identifiers = [_identifier("SERIES", study, whole)] if whole else []
    for series in sorted(set(classes_of) - set(whole)):
        uids = [i.instance for i in listed if i.series == series and i.sop_class in classes]
        for start in range(0, len(uids), UIDS_PER_REQUEST):
            identifiers.append(_identifier("IMAGE", study, [series], uids[start:start + UIDS_PER_REQUEST]))
    return identifiers


def _identifier(level: str, study: str, series: list[str] | None = None,
                instances: list[str] | None = None) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    identifier.StudyInstanceUID = study
    if series is not None:
        identifier.SeriesInstanceUID = series
    if instances is not None:
        identifier.SOPInstanceUID = instances
    return identifier


def _keep(event: evt.Event, into: Path) -> int:
    """C-STORE sub-operation on the peer: keep the bytes as received, named by the node's UID."""
    uid = UID(c_store_request(event).AffectedSOPInstanceUID or "")
    if not uid.is_valid:
        return 0xA900
    (into / f"{uid}.dcm").write_bytes(event.encoded_dataset(include_meta=True))
    return 0x0000


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
                "not_retrieved": r.not_retrieved,
                "directory": str(out / r.study),
            }
            for r in results
        ],
    }
    (out / "summary.json").write_text(json.dumps(document, indent=2) + "\n")
