"""stegonode inside Orthanc: a real Orthanc (Debian's, with orthanc-python) on loopback ports,
configured by ``stegonode orthanc-config``, fed by DCMTK's storescu and movescu."""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import JPEGLSLossless

from stegonode.codecs import keys as keyfiles
from stegonode.dicom.pixels import read_pixels
from stegonode.dicom.pseudonyms import Pseudonymizer
from stegonode.dicom.references import identities, resolve
from stegonode.handlers.admission import pixel_carrier_obstacle
from stegonode.handlers.protection import already_protected
from stegonode.handlers.reveal import reveal

from nodes import (
    DCMTK_ENV,
    PATIENT,
    NodeProcess,
    OrthancProcess,
    acknowledged,
    scu,
    write_series,
)
from test_studies import comparable, study_files

pytestmark = pytest.mark.skipif(
    shutil.which("Orthanc") is None or not Path("/usr/share/orthanc/plugins/libOrthancPython.so").exists(),
    reason="Debian's orthanc and orthanc-python are not installed (scripts/setup.sh --test installs them)",
)
SERIES = 50


def send(orthanc: OrthancProcess, files, *options: str) -> subprocess.CompletedProcess:
    return scu("storescu", orthanc.port, "-v", *options, files=files, timeout=600)


def identifying(files: list[Path]) -> set[bytes]:
    """Every identifying value of the sent series: the patient's and each original UID."""
    values = {value.encode() for value in PATIENT.values()}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        values |= {str(uid).encode() for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)}
    return values


def leaks(blob: bytes, values: set[bytes]) -> list[bytes]:
    return [value for value in values if value in blob]


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("orthanc-keys")
    keyfiles.generate(directory)
    return directory


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory, keys):
    """Orthanc with the plugin, holding the 50-instance CT series sent by storescu."""
    work = tmp_path_factory.mktemp("orthanc")
    server = OrthancProcess(work / "server", keys=str(keys / "node.keys"),
                            peers=[{"ae_title": "STEGOPEER", "host": "127.0.0.1", "port": 11113}])
    server.options = ["--dicomweb"]  # Debian's DICOMweb plugin beside stegonode's
    server.start()
    server.series = write_series(work / "series", SERIES)
    try:
        server.sent = send(server, server.series)
        yield server
    finally:
        server.stop()


def test_orthanc_config_is_loopback_and_wired(orthanc):
    document = json.loads((orthanc.data / "orthanc.json").read_text())
    assert document["RemoteAccessAllowed"] is False
    assert document["StorageDirectory"].startswith(str(orthanc.data))
    assert document["PythonScript"] == str(orthanc.data / "stegonode_plugin.py")
    assert document["DicomPort"] == orthanc.port and document["DicomAet"] == "ORTHANC"
    assert document["DicomModalities"] == {"STEGOPEER": ["STEGOPEER", "127.0.0.1", 11113]}
    # The plugin runs this checkout's code (PYTHONPATH is passed on through the config).
    import stegonode.node

    code = Path(stegonode.node.__file__).parent
    assert f"code: {code}" in orthanc.log.read_text()


def test_plugin_pins_numeric_threads_to_one(orthanc):
    """Set in the launcher before numpy and ONNX Runtime load; read back from the loaded
    Mask R-CNN session (ONNX Runtime's default, 0, would start a thread per core)."""
    assert ("numeric threads: ONNX Runtime intra-op 1, inter-op 1; OMP_NUM_THREADS 1; "
            "OPENBLAS_NUM_THREADS 1; MKL_NUM_THREADS 1") in orthanc.log.read_text()


def test_series_is_stored_protected_and_revealed(orthanc, keys, tmp_path):
    assert len(acknowledged(orthanc.sent.stdout + orthanc.sent.stderr)) == SERIES, orthanc.sent.stderr
    instances = orthanc.json("/instances")
    assert len(instances) == SERIES
    for instance in instances:
        ds = pydicom.dcmread(io.BytesIO(orthanc.rest(f"/instances/{instance}/file")))
        assert already_protected(ds)

    out = tmp_path / "revealed"
    fetch = orthanc.run("fetch", "--node", f"ORTHANC@127.0.0.1:{orthanc.port}", "--all",
                        "--keys", str(keys / "peer.keys"), "--out", str(out))
    assert fetch.returncode == 0, fetch.stdout + fetch.stderr
    revealed = [pydicom.dcmread(path) for path in out.glob("*/*.dcm")]
    assert len(revealed) == SERIES
    originals = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in orthanc.series}
    assert {ds.SOPInstanceUID for ds in revealed} == originals
    for ds in revealed:
        assert {keyword: str(ds.get(keyword)) for keyword in PATIENT} == PATIENT


def test_orthanc_dicomweb_serves_the_protected_series(orthanc):
    """`orthanc-config --dicomweb`: Orthanc's own DICOMweb (Debian's plugin) answers a real
    DICOMweb client with the protected objects stegonode stored."""
    dicomweb_client = pytest.importorskip("dicomweb_client", reason="dicomweb-client missing: scripts/setup.sh --test")
    client = dicomweb_client.DICOMwebClient(f"http://127.0.0.1:{orthanc.http_port}/dicom-web")
    (study,) = client.search_for_studies()
    uid = study["0020000D"]["Value"][0]
    assert study["00100010"]["Value"][0]["Alphabetic"] != PATIENT["PatientName"]
    (series,) = client.search_for_series(uid)
    first = client.retrieve_series(uid, series["0020000E"]["Value"][0])[0]
    assert already_protected(first)
    values = identifying(orthanc.series)
    assert not leaks(json.dumps(study).encode(), values)


def test_nothing_identifying_in_storage_index_or_rest(orthanc):
    values = identifying(orthanc.series)
    for path in orthanc.data.rglob("*"):  # storage area, index database (and its journal)
        if path.is_file() and path.suffix not in (".json", ".py") and "keys" not in path.parts:
            assert not leaks(path.read_bytes(), values), path
    answers = [orthanc.rest("/patients?expand"), orthanc.rest("/studies?expand"),
               orthanc.rest("/series?expand"),
               orthanc.rest("/tools/find", {"Level": "Instance", "Query": {}, "Expand": True})]
    for instance in orthanc.json("/instances"):
        answers += [orthanc.rest(f"/instances/{instance}/file"),
                    orthanc.rest(f"/instances/{instance}/simplified-tags"),
                    orthanc.rest(f"/instances/{instance}/metadata?expand")]
    for answer in answers:
        assert not leaks(answer, values)
    assert not leaks(orthanc.log.read_bytes(), values)


def test_refusals_answer_failure_while_a_clean_transfer_completes(orthanc, tmp_path, bad_inputs):
    before = len(orthanc.json("/instances"))
    clean = write_series(tmp_path / "clean", 6)
    results = {}
    transfer = threading.Thread(target=lambda: results.update(clean=send(orthanc, clean)))
    transfer.start()
    results["plan"] = send(orthanc, [bad_inputs["rtplan"]], "-R")
    results["image"] = send(orthanc, [bad_inputs["undecodable"]], "-xv")  # JPEG 2000 as it is
    results["no_pixels"] = send(orthanc, [bad_inputs["no_pixels"]], "-R")
    transfer.join()

    # no pixels to write in: protected with the header carrier alone
    assert "Received Store Response (Success)" in results["plan"].stderr
    assert "Received Store Response (Error: CannotUnderstand)" in results["image"].stderr
    assert "Received Store Response (Success)" in results["no_pixels"].stderr
    assert len(acknowledged(results["clean"].stderr)) == len(clean), results["clean"].stderr
    assert len(orthanc.json("/instances")) == before + len(clean) + 2
    log = orthanc.log.read_text()
    assert "with status 0xC000: pixel data does not decode" in log


def test_cmove_orthanc_to_node_and_node_to_orthanc(tmp_path, keys):
    """movescu moves a protected study from Orthanc to the node; after Orthanc deleted it,
    Orthanc's REST API moves it back from the node. Each side keeps the other's stego objects
    as they are (protecting them again would overwrite the sealed identity)."""
    node = NodeProcess(tmp_path / "node", keys=str(keys / "node.keys"))
    orthanc = OrthancProcess(tmp_path / "orthanc", keys=str(keys / "node.keys"), peers=[
        {"ae_title": "STEGONODE", "host": "127.0.0.1", "port": node.port},
        {"ae_title": "STEGOPEER", "host": "127.0.0.1", "port": 11113},
    ])
    node.peers = [{"ae_title": "ORTHANC", "host": "127.0.0.1", "port": orthanc.port}]
    node.start()
    try:
        orthanc.start()
        series = write_series(tmp_path / "series", 20)
        assert len(acknowledged(send(orthanc, series).stderr)) == 20
        (study,) = orthanc.json("/studies")
        uid = orthanc.json(f"/studies/{study}")["MainDicomTags"]["StudyInstanceUID"]
        in_orthanc = {ds.SOPInstanceUID: ds for ds in (
            pydicom.dcmread(io.BytesIO(orthanc.rest(f"/instances/{i}/file"))) for i in orthanc.json("/instances"))}

        # Orthanc -> node: Orthanc's C-MOVE SCP sends to its modality STEGONODE.
        move = subprocess.run(
            ["/usr/bin/movescu", "-v", "-S", "-aet", "STEGOPEER", "-aec", "ORTHANC", "-aem", "STEGONODE",
             "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}", "127.0.0.1", str(orthanc.port)],
            capture_output=True, text=True, env=DCMTK_ENV, timeout=300)
        assert "Received Final Move Response (Success)" in move.stderr, move.stderr
        node.wait_idle(20, timeout=120)
        on_node = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, (node.data / "stored").glob("*.dcm"))}
        assert on_node.keys() == in_orthanc.keys()
        values = identifying(series)
        for sop_uid, ds in on_node.items():
            assert already_protected(ds) and ds == in_orthanc[sop_uid]
            assert not leaks((node.data / "stored" / f"{sop_uid}.dcm").read_bytes(), values)

        # Node -> Orthanc: Orthanc's C-MOVE SCU asks the node (STEGONODE) to send to ORTHANC.
        orthanc.rest(f"/studies/{study}", method="DELETE")
        assert orthanc.json("/instances") == []
        orthanc.rest("/modalities/STEGONODE/move", {
            "Level": "Study", "Resources": [{"StudyInstanceUID": uid}], "TargetAet": "ORTHANC"})
        back = [pydicom.dcmread(io.BytesIO(orthanc.rest(f"/instances/{i}/file"))) for i in orthanc.json("/instances")]
        assert len(back) == 20
        assert all(already_protected(ds) and ds == on_node[ds.SOPInstanceUID] for ds in back)
    finally:
        orthanc.stop()
        node.stop()


def test_plugin_that_cannot_start_refuses_everything(tmp_path, keys):
    """A plugin without its key file must not let Orthanc store anything unprotected."""
    shutil.copy(keys / "node.keys", tmp_path / "node.keys")
    orthanc = OrthancProcess(tmp_path / "orthanc", keys=str(tmp_path / "node.keys"))
    orthanc.configure()
    (tmp_path / "node.keys").unlink()  # after orthanc-config, which checks that it exists
    orthanc.start()
    try:
        sent = send(orthanc, write_series(tmp_path / "series", 2))
        assert "Received Store Response (Refused: OutOfResources)" in sent.stderr
        assert acknowledged(sent.stderr) == []
        assert orthanc.json("/instances") == []
        assert "the plugin did not start, every instance is refused: KeyFileError" in orthanc.log.read_text()
    finally:
        orthanc.stop()


def test_stored_compressed_objects_decode_in_orthanc_to_the_protected_pixels(orthanc):
    """The plugin stores the protected objects in node.toml's [storage] transfer syntax (JPEG-LS
    Lossless by default); Orthanc decodes them: a preview, and the exact stored values."""
    for instance in orthanc.json("/instances")[:3]:
        ds = pydicom.dcmread(io.BytesIO(orthanc.rest(f"/instances/{instance}/file")))
        assert ds.file_meta.TransferSyntaxUID == JPEGLSLossless
        assert orthanc.rest(f"/instances/{instance}/preview").startswith(b"\x89PNG")
        decoded = np.load(io.BytesIO(orthanc.rest(f"/instances/{instance}/frames/0/numpy?rescale=0")))
        stored = read_pixels(ds)[0]
        # Orthanc leaves the bits above Bits Stored as the decoder gave them (no sign extension)
        bits = (1 << int(ds.BitsStored)) - 1
        assert np.array_equal(decoded.reshape(stored.shape).astype(np.int64) & bits, stored.astype(np.int64) & bits)


def test_whole_studies_are_stored_protected_with_references_resolved(orthanc, keys):
    """The studies of ../shared/studies through the plugin: SR, RT, SEG and colour objects are
    stored protected, each reference resolves as it did among the originals, and reveal
    restores every original header exactly."""
    files = {key: path for key, path in study_files().items() if "+eb+" not in path.name}  # JPEG aside
    result = send(orthanc, list(files.values()), "-R")
    assert len(acknowledged(result.stdout + result.stderr)) == len(files), result.stderr
    pseudonyms = Pseudonymizer(keyfiles.load_node_keys(keys / "node.keys").pseudonym_key)
    peer = keyfiles.load_peer_keys(keys / "peer.keys")
    originals = {key: pydicom.dcmread(path) for key, path in files.items()}
    wanted = {pseudonyms.uid(ds.SOPInstanceUID): key for key, ds in originals.items()}
    stored = {}
    for instance in orthanc.json("/instances"):
        ds = pydicom.dcmread(io.BytesIO(orthanc.rest(f"/instances/{instance}/file")))
        if ds.SOPInstanceUID in wanted:
            stored[wanted[ds.SOPInstanceUID]] = ds
    assert sorted(stored) == sorted(originals)
    for key, ds in stored.items():
        assert already_protected(ds), key
        study = key.split("/")[0] + "/"
        before = resolve(originals[key], identities(d for k, d in originals.items() if k.startswith(study)))
        after = resolve(ds, identities(d for k, d in stored.items() if k.startswith(study)))
        assert (len(after.resolved), after.total) == (len(before.resolved), before.total), key
        pixel_path = pixel_carrier_obstacle(originals[key]) is None
        restored = reveal(copy.deepcopy(ds), peer).dataset
        assert comparable(restored, pixel_path) == comparable(originals[key], pixel_path), key
