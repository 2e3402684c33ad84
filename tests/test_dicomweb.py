"""DICOMweb on a real ``stegonode serve``, driven by a real DICOMweb client nobody here wrote
(``dicomweb-client``): QIDO-RS searches, WADO-RS retrievals (study, series, instance, metadata,
frames, rendered), STOW-RS stores and refusals, the bearer token, and the audit trail."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, generate_uid

from stegonode.dicom.pixels import read_pixels

from nodes import PATIENT, NodeProcess, free_port, orthanc_rest, plain_orthanc, storescu, write_series

dicomweb_client = pytest.importorskip("dicomweb_client", reason="dicomweb-client missing: scripts/setup.sh --test")

TOKEN = "test-token-0123456789abcdefghijklmnop"
SERIES = 3
OTHER_PATIENT = {"PatientName": "Panza^Sancho", "PatientID": "PID-20411"}
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def _shared(name: str) -> Path:
    for folder in (REALDATA, Path("/work/shared/realdata")):
        if (folder / name).is_file():
            return folder / name
    pytest.fail(f"realdata/{name} missing")


class Web:
    """A node with its console, DICOMweb on the console's port, and an audit file."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.audit = directory / "audit.xml"
        self.node = NodeProcess(directory, tables={
            "web": {"enabled": True, "port": self.port, "login": "token"},
            "dicomweb": {"token": TOKEN},
            "audit": {"file": str(self.audit)},
            "handlers.segment": {"segmenter": "classical"},
        })
        self.url = f"http://127.0.0.1:{self.port}/dicomweb"

    def client(self, token: str = TOKEN) -> dicomweb_client.DICOMwebClient:
        return dicomweb_client.DICOMwebClient(self.url, headers={"Authorization": f"Bearer {token}"})

    def audit_messages(self, expected_kind: str, count: int, timeout: float = 30) -> list[ElementTree.Element]:
        """The audit file's messages, once ``count`` of them have EventID ``expected_kind``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.audit.read_text().splitlines() if self.audit.exists() else []
            messages = [ElementTree.fromstring(line.encode()) for line in lines]
            if sum(m.find("EventIdentification/EventID").get("csd-code") == expected_kind for m in messages) >= count:
                return messages
            time.sleep(0.1)
        raise AssertionError(f"fewer than {count} audit messages {expected_kind}")


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dicomweb")
    running = Web(directory)
    running.node.start()
    ct = write_series(directory / "series", SERIES)
    multiframe = pydicom.dcmread(get_testdata_file("eCT_Supplemental.dcm"))
    for keyword, value in {**PATIENT, **OTHER_PATIENT}.items():
        setattr(multiframe, keyword, value)
    multiframe.save_as(directory / "multiframe.dcm")
    result = storescu(running.node.port, [*ct, directory / "multiframe.dcm"])
    assert result.returncode == 0, result.stdout + result.stderr
    running.node.wait_idle(SERIES + 1)
    running.originals = {pydicom.dcmread(p).SOPInstanceUID: p for p in ct}
    yield running
    running.node.stop()
    log = running.node.log.read_text()
    assert "Traceback" not in log
    for value in [*PATIENT.values(), *OTHER_PATIENT.values()]:
        assert value not in log
        assert value not in running.audit.read_text()


def _ct_study(client) -> dict:
    (study,) = [s for s in client.search_for_studies(search_filters={"ModalitiesInStudy": "CT"})
                if int(s["00201208"]["Value"][0]) == SERIES]
    return study


def test_qido_searches_studies_series_and_instances(web):
    client = web.client()
    studies = client.search_for_studies()
    assert len(studies) == 2
    for study in studies:  # the protected studies: pseudonyms, no identifying value
        text = json.dumps(study)
        assert not any(value in text for value in PATIENT.values())
        assert study["00100020"]["Value"][0].startswith("SN")
    study = _ct_study(client)
    uid = study["0020000D"]["Value"][0]
    assert study["00081190"]["Value"][0] == f"{web.url}/studies/{uid}"
    (series,) = client.search_for_series(uid)
    assert series["00080060"]["Value"] == ["CT"] and series["00201209"]["Value"] == [SERIES]
    instances = client.search_for_instances(uid, series["0020000E"]["Value"][0])
    assert len(instances) == SERIES
    # wildcard, date range, limit/offset, includefield, fuzzy person-name matching
    assert len(client.search_for_studies(search_filters={"PatientID": "SN*"})) == 2
    assert client.search_for_studies(search_filters={"PatientID": PATIENT["PatientID"]}) == []
    assert len(client.search_for_studies(limit=1)) == 1
    assert len(client.search_for_studies(limit=1, offset=1)) == 1
    assert client.search_for_studies(limit=1)[0] != client.search_for_studies(limit=1, offset=1)[0]
    assert client.search_for_studies(search_filters={"StudyDate": "19000101-19000102"}) == []
    dated = [s for s in studies if "Value" in s.get("00080020", {})]
    for s in dated:
        day = s["00080020"]["Value"][0]
        assert s in client.search_for_studies(search_filters={"StudyDate": f"{day}-{day}"})
    with_description = client.search_for_series(uid, fields=["SeriesDescription", "00200011"])
    assert "0008103E" in with_description[0] and "00200011" in with_description[0]
    name = study["00100010"]["Value"][0]["Alphabetic"]
    word = name.split("^")[1]  # SN^<pseudonym>
    assert client.search_for_studies(search_filters={"PatientName": word.lower()}) == []
    fuzzy = client.search_for_studies(search_filters={"PatientName": word.lower()[:3]}, fuzzymatching=True)
    assert [s["0020000D"] for s in fuzzy] == [study["0020000D"]]


def test_wado_retrieves_study_series_instance_as_stored_or_decompressed(web):
    client = web.client()
    study = _ct_study(client)
    uid = study["0020000D"]["Value"][0]
    stored = client.retrieve_study(uid, media_types=(("application/dicom", "*"),))
    assert len(stored) == SERIES
    assert {ds.file_meta.TransferSyntaxUID for ds in stored} == {JPEGLSLossless}  # as stored
    series_uid = stored[0].SeriesInstanceUID
    decompressed = client.retrieve_series(uid, series_uid)  # the default: Explicit VR Little Endian
    assert {ds.file_meta.TransferSyntaxUID for ds in decompressed} == {ExplicitVRLittleEndian}
    one = client.retrieve_instance(uid, series_uid, stored[0].SOPInstanceUID)
    same = next(ds for ds in decompressed if ds.SOPInstanceUID == one.SOPInstanceUID)
    assert np.array_equal(read_pixels(one), read_pixels(same))
    as_stored = next(ds for ds in stored if ds.SOPInstanceUID == one.SOPInstanceUID)
    assert np.array_equal(read_pixels(as_stored), read_pixels(one))  # lossless both ways
    for ds in stored:
        assert ds.PatientIdentityRemoved == "YES" and ds.PatientName != PATIENT["PatientName"]
        assert ds.SOPInstanceUID not in web.originals


def test_wado_metadata_frames_and_rendered(web):
    client = web.client()
    study = _ct_study(client)
    uid = study["0020000D"]["Value"][0]
    metadata = client.retrieve_series_metadata(uid, client.search_for_series(uid)[0]["0020000E"]["Value"][0])
    assert len(metadata) == SERIES
    first = pydicom.Dataset.from_json(metadata[0], lambda uri: b"")
    assert first.Rows == 512 and "BulkDataURI" in metadata[0]["7FE00010"]
    series_uid, instance = first.SeriesInstanceUID, first.SOPInstanceUID
    whole = client.retrieve_instance(uid, series_uid, instance)
    pixels = read_pixels(whole)[0]
    (native,) = client.retrieve_instance_frames(uid, series_uid, instance, [1])
    assert np.array_equal(np.frombuffer(native, pixels.dtype.newbyteorder("<")).reshape(pixels.shape), pixels)
    (encoded,) = client.retrieve_instance_frames(uid, series_uid, instance, [1],
                                                 media_types=(("image/jls", JPEGLSLossless),))
    assert encoded[:2] == b"\xff\xd8" and len(encoded) < len(native)  # a JPEG-LS codestream
    picture = client.retrieve_instance_rendered(uid, series_uid, instance, media_types=("image/png",))
    image = np.asarray(Image.open(io.BytesIO(picture)))
    assert image.shape == pixels.shape and image.std() > 10  # windowed, not blank
    jpeg = client.retrieve_instance_frames_rendered(uid, series_uid, instance, [1], media_types=("image/jpeg",))
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"


def test_wado_multiframe_frames(web):
    client = web.client()
    (study,) = [s for s in client.search_for_studies() if int(s["00201208"]["Value"][0]) == 1]
    uid = study["0020000D"]["Value"][0]
    (instance,) = client.search_for_instances(uid)
    series_uid, sop_uid = instance["0020000E"]["Value"][0], instance["00080018"]["Value"][0]
    whole = read_pixels(client.retrieve_instance(uid, series_uid, sop_uid))
    assert whole.shape[0] == 2
    frames = client.retrieve_instance_frames(uid, series_uid, sop_uid, [2, 1])
    for got, number in zip(frames, (2, 1), strict=True):
        want = whole[number - 1]
        assert np.array_equal(np.frombuffer(got, want.dtype.newbyteorder("<")).reshape(want.shape), want)
    second = client.retrieve_instance_frames_rendered(uid, series_uid, sop_uid, [2], media_types=("image/png",))
    assert np.asarray(Image.open(io.BytesIO(second))).std() > 10


def test_stow_stores_protected_and_fetch_reveals_it_exactly(web, tmp_path):
    (path,) = write_series(tmp_path / "stow", 1)
    original = pydicom.dcmread(path)
    answer = web.client().store_instances([original])
    (stored,) = answer.ReferencedSOPSequence
    assert "FailedSOPSequence" not in answer
    new_uid = stored.ReferencedSOPInstanceUID
    assert new_uid != original.SOPInstanceUID and new_uid in stored.RetrieveURL
    web.node.wait_idle(SERIES + 2)
    protected = web.client().retrieve_instance(*stored.RetrieveURL.split("/studies/")[1].split("/")[::2])
    assert protected.PatientIdentityRemoved == "YES" and protected.PatientName != PATIENT["PatientName"]
    out = tmp_path / "fetched"
    result = web.node.fetch_all(out)
    assert result.returncode == 0, result.stdout + result.stderr
    (revealed,) = [pydicom.dcmread(p) for p in out.rglob("*.dcm") if pydicom.dcmread(p).SOPInstanceUID
                   == original.SOPInstanceUID]
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyInstanceUID"):
        assert revealed.data_element(keyword).value == original.data_element(keyword).value, keyword


def test_stow_refuses_burned_in_annotation_with_its_reason(web):
    ds = pydicom.dcmread(_shared("us_deid_1.dcm"))
    assert ds.BurnedInAnnotation == "YES"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    with pytest.raises(Exception) as refused:
        web.client().store_instances([ds])
    response = refused.value.response  # requests.HTTPError: 409 Conflict, every instance refused
    assert response.status_code == 409
    answer = pydicom.Dataset.from_json(response.json())
    (failed,) = answer.FailedSOPSequence
    assert failed.ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert failed.FailureReason == 0xC000
    assert failed[0x00000902].value.startswith("BurnedInAnnotation YES: identity may be burned")
    assert "BurnedInAnnotation YES" in response.headers["Warning"]


def test_stow_of_another_study_is_refused(web, tmp_path):
    (path,) = write_series(tmp_path / "other", 1)
    with pytest.raises(Exception) as refused:
        web.client().store_instances([pydicom.dcmread(path)], study_instance_uid=generate_uid())
    answer = pydicom.Dataset.from_json(refused.value.response.json())
    assert answer.FailedSOPSequence[0].FailureReason == 0xA900


def _status(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_bearer_token_is_required(web):
    assert _status(f"{web.url}/studies", {}) == 401
    assert _status(f"{web.url}/studies", {"Authorization": "Bearer wrong-token-0123456789abcdef"}) == 401
    assert _status(f"{web.url}/studies", {"Authorization": f"Bearer {TOKEN}"}) == 200
    assert _status(f"{web.url}/studies", {"Accept": "application/dicom+xml",
                                          "Authorization": f"Bearer {TOKEN}"}) == 406
    assert _status(f"{web.url}/studies/1.2.3/series/4.5.6/instances/7.8.9",
                   {"Authorization": f"Bearer {TOKEN}"}) == 404


def _answer(url: str, body: bytes | None = None, content_type: str = "") -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {TOKEN}", **({"Content-Type": content_type} if content_type else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_bad_requests_get_a_reason(web):
    assert _answer(f"{web.url}/studies?limit=-1") == (400, "400: limit='-1': a whole number from 0 to 100000\n")
    status, text = _answer(f"{web.url}/studies?NoSuchKey=1")
    assert status == 400 and "not a DICOM attribute keyword" in text
    status, text = _answer(f"{web.url}/studies", b"--x\r\n\r\nnot dicom\r\n--x--", "multipart/related; boundary=x")
    answer = pydicom.Dataset.from_json(json.loads(text))
    assert status == 409 and answer.FailedSOPSequence[0].FailureReason == 0xC000
    assert "not a DICOM file" in answer.FailedSOPSequence[0][0x00000902].value
    status, text = _answer(f"{web.url}/studies", b"{}", "application/dicom+json")
    assert status == 415 and "multipart/related" in text
    study = _ct_study(web.client())["0020000D"]["Value"][0]
    (instance,) = web.client().search_for_instances(study, limit=1)
    path = f"{web.url}/studies/{study}/series/{instance['0020000E']['Value'][0]}/instances/" \
           f"{instance['00080018']['Value'][0]}"
    status, text = _answer(f"{path}/frames/7")
    assert status == 404 and "frames 1 to 1" in text
    status, text = _answer(f"{path}/frames/x")
    assert status == 400 and "frame numbers" in text


def test_every_query_retrieval_and_store_is_audited(web, tmp_path):
    client = web.client()
    refused = pydicom.dcmread(_shared("us_deid_1.dcm"))
    refused.SOPInstanceUID = generate_uid()
    refused.file_meta.MediaStorageSOPInstanceUID = refused.SOPInstanceUID
    with pytest.raises(requests.exceptions.HTTPError):
        client.store_instances([refused])
    study = _ct_study(client)
    uid = study["0020000D"]["Value"][0]
    client.retrieve_study_metadata(uid)
    messages = web.audit_messages("110104", 1)
    queries = [m for m in messages if m.find("EventIdentification/EventID").get("csd-code") == "110112"]
    assert queries
    query = queries[-1]
    requestor = next(p for p in query.findall("ActiveParticipant") if p.get("UserIsRequestor") == "true")
    assert requestor.get("UserID") == "dicomweb token" and requestor.get("NetworkAccessPointID") == "127.0.0.1"
    assert "QIDO-RS" in query.find("EventIdentification/EventOutcomeDescription").text
    transfers = [m for m in messages if m.find("EventIdentification/EventID").get("csd-code") == "110104"]
    metadata = [m for m in transfers if "WADO-RS metadata" in m.find("EventIdentification/EventOutcomeDescription").text]
    assert metadata and metadata[-1].find("EventIdentification").get("EventActionCode") == "R"
    objects = [o.get("ParticipantObjectID") for o in metadata[-1].findall("ParticipantObjectIdentification")]
    assert uid in objects
    stores = [m for m in transfers if m.find("EventIdentification").get("EventActionCode") == "C"
              and "STOW-RS" in m.find("EventIdentification/EventOutcomeDescription").text]
    refusals = [m for m in stores if m.find("EventIdentification").get("EventOutcomeIndicator") != "0"]
    assert refusals  # the Burned In Annotation store
    rows = web.node.query("SELECT kind, user, detail FROM audit_events WHERE detail LIKE '%-RS%'")
    assert {"query", "retrieve", "store"} <= {row[0] for row in rows}
    assert all(row[1] == "dicomweb token" for row in rows)


def test_orthanc_dicomweb_client_lists_and_retrieves_a_study(web, tmp_path):
    process, port = plain_orthanc(tmp_path / "orthanc", {
        "stegonode": {"Url": f"{web.url}/", "HttpHeaders": {"Authorization": f"Bearer {TOKEN}"}}})
    try:
        listed = orthanc_rest(port, "/dicom-web/servers/stegonode/get", {"Uri": "/studies"})
        assert len(listed) >= 2
        study = _ct_study(web.client())["0020000D"]["Value"][0]
        assert study in {s["0020000D"]["Value"][0] for s in listed}
        orthanc_rest(port, "/dicom-web/servers/stegonode/retrieve", {"Resources": [{"Study": study}]})
        (stored,) = orthanc_rest(port, "/studies")
        tags = orthanc_rest(port, f"/studies/{stored}")
        assert tags["MainDicomTags"]["StudyInstanceUID"] == study
        assert len(orthanc_rest(port, f"/studies/{stored}/instances")) == SERIES
        assert tags["PatientMainDicomTags"]["PatientName"] != PATIENT["PatientName"]
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_short_token_is_refused_at_start(tmp_path):
    from stegonode.errors import ConfigError
    from stegonode.node import config as node_config

    path = tmp_path / "node.toml"
    path.write_text('[dicomweb]\ntoken = "short"\n')
    with pytest.raises(ConfigError, match="dicomweb.token: at least 24 characters"):
        node_config.load(path)
