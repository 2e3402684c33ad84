"""Stored objects in a lossless compressed transfer syntax, and retrieval that transcodes.

Real parts: pydicom-data images, the shipped pipeline, DCMTK's dcmdjpls/dcmdrle/dciodvfy, a
node process, DCMTK's storescp as C-MOVE destination and getscu as C-GET requestor, both
accepting only uncompressed objects.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import parse_basic_offsets
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, RLELossless
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage

from stegonode.dicom.dicomfile import dicom_bytes
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import ConfigError, RefusedError, UnsupportedImageError
from stegonode.handlers.compression import DEFAULT_STORAGE, STORAGE_SYNTAXES, store_pixels
from stegonode.handlers.pipeline import configured_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.node import config as node_config

from images import dciodvfy_errors, dcmtk, image_path
from nodes import DCMTK_ENV, PATIENT, NodeProcess, free_port, scu, study_keys, write_series

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import memory  # noqa: E402  (benchmarks/memory.py: the measurement the figures in the docs come from)

DECODERS = {JPEGLSLossless: "dcmdjpls", RLELossless: "dcmdrle"}  # DCMTK's (no JPEG 2000 decoder)
INSTANCES = 4


@pytest.fixture(scope="module")
def protected(node_keys):
    """693_UNCR protected by the default pipeline, uncompressed: the data set and its pixels."""
    pipeline = configured_pipeline(node_config.load(None), node_keys)
    pipeline.transfer_syntax = ExplicitVRLittleEndian
    ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
    pixels = protect_object(ds, pipeline).instance.pixels
    return ds, pixels


def test_default_is_a_lossless_compressed_syntax_and_node_toml_checks_the_choice(tmp_path):
    assert node_config.load(None)["storage"]["transfer_syntax"] == DEFAULT_STORAGE
    assert STORAGE_SYNTAXES[DEFAULT_STORAGE].is_compressed
    path = tmp_path / "node.toml"
    path.write_text('[storage]\ntransfer_syntax = "jpeg-baseline"\n')
    with pytest.raises(ConfigError, match="storage.transfer_syntax"):
        node_config.load(path)


@pytest.mark.parametrize("name", list(STORAGE_SYNTAXES))
def test_each_syntax_stores_exactly_the_protected_pixels(protected, tmp_path, name):
    ds, pixels = copy.deepcopy(protected[0]), protected[1]
    syntax = STORAGE_SYNTAXES[name]
    assert store_pixels(ds, pixels, syntax) == syntax
    path = tmp_path / "stored.dcm"
    path.write_bytes(dicom_bytes(ds))
    stored = pydicom.dcmread(path)
    assert stored.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(read_pixels(stored), pixels)
    uncompressed = tmp_path / "uncompressed.dcm"
    store_pixels(ds, pixels)
    uncompressed.write_bytes(dicom_bytes(ds))
    assert dciodvfy_errors(path) <= dciodvfy_errors(uncompressed)
    if syntax in DECODERS:  # DCMTK decodes it to the same pixels
        decoded = tmp_path / "decoded.dcm"
        result = subprocess.run([dcmtk(DECODERS[syntax]), str(path), str(decoded)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert np.array_equal(read_pixels(pydicom.dcmread(decoded)), pixels)


def test_multi_frame_objects_get_a_basic_offset_table():
    ds = pydicom.dcmread(image_path("emri_small.dcm"))  # 10 frames
    pixels = read_pixels(ds).copy()
    assert store_pixels(ds, pixels, JPEGLSLossless) == JPEGLSLossless
    stored = pydicom.dcmread(pydicom.filebase.DicomBytesIO(dicom_bytes(ds)))
    offsets = parse_basic_offsets(stored.PixelData)
    assert len(offsets) == len(pixels) == 10 and offsets[0] == 0 and offsets == sorted(offsets)
    assert np.array_equal(read_pixels(stored), pixels)


def test_pixels_an_encoder_cannot_keep_exactly_are_stored_uncompressed(protected):
    """Never lossy: values beyond Bits Stored cannot go into a 12-bit JPEG-LS stream."""
    ds, pixels = copy.deepcopy(protected[0]), protected[1].copy()
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    pixels = pixels.astype(np.uint16)
    pixels[0, 0, 0] = 0xFFFF
    assert store_pixels(ds, pixels, JPEGLSLossless) == ExplicitVRLittleEndian
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(np.frombuffer(ds.PixelData, "<u2").reshape(pixels.shape), pixels)


def test_pipeline_stores_in_the_configured_syntax_and_encrypted_pixels_uncompressed(node_keys):
    config = node_config.load(None)
    plain = pydicom.dcmread(image_path("693_UNCR.dcm"))
    encrypted = copy.deepcopy(plain)
    protect_object(plain, configured_pipeline(config, node_keys))
    protect_object(encrypted, configured_pipeline(config, node_keys, cipher="aes-gcm"))
    assert plain.file_meta.TransferSyntaxUID == STORAGE_SYNTAXES[DEFAULT_STORAGE]
    assert encrypted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


# -- the node: stored compressed, served to peers that accept only uncompressed ----------------


@pytest.fixture(scope="module")
def storescp_explicit(tmp_path_factory):
    """DCMTK storescp accepting Explicit VR Little Endian only (its +xe network preference)."""
    folder = tmp_path_factory.mktemp("storescp")
    port = free_port()
    process = subprocess.Popen(
        [dcmtk("storescp"), "+xe", "-aet", "EXPLICIT", "-od", str(folder), str(port)], env=DCMTK_ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while scu("echoscu", port).returncode != 0:  # wait until it listens
        assert time.monotonic() < deadline and process.poll() is None, "storescp did not start"
        time.sleep(0.1)
    yield folder, port
    process.terminate()
    process.wait()


@pytest.fixture(scope="module")
def node(tmp_path_factory, storescp_explicit):
    node = NodeProcess(tmp_path_factory.mktemp("node"), max_object_mb=1,
                       peers=[{"ae_title": "EXPLICIT", "host": "127.0.0.1", "port": storescp_explicit[1]}]).start()
    paths = write_series(tmp_path_factory.mktemp("series"), INSTANCES)
    sent = scu("storescu", node.port, files=paths, timeout=120)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    node.wait_idle(INSTANCES)
    yield node
    node.stop()


def _study(node: NodeProcess) -> str:
    (uid,) = {row[0] for row in node.query('SELECT "StudyInstanceUID" FROM instances')}
    return uid


def _stored_pixels(node: NodeProcess) -> dict[str, np.ndarray]:
    stored = {}
    for path in (node.data / "stored").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == STORAGE_SYNTAXES[DEFAULT_STORAGE]
        stored[ds.SOPInstanceUID] = read_pixels(ds)
    assert len(stored) == INSTANCES
    return stored


def _assert_uncompressed_copies_reveal(node: NodeProcess, folder, stored: dict[str, np.ndarray]) -> None:
    files = sorted(folder.iterdir())
    assert len(files) == INSTANCES
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert np.array_equal(read_pixels(ds), stored[ds.SOPInstanceUID])
    result = node.run("reveal", *map(str, files), "--keys", str(node.peer_keys), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    for line in result.stdout.splitlines():
        outcome = json.loads(line)
        assert outcome["ok"], outcome
        for keyword, value in PATIENT.items():
            assert outcome["attributes"][keyword] == value


def test_move_to_a_storescp_accepting_only_explicit_vr_gets_every_object_decompressed(node, storescp_explicit):
    folder, _ = storescp_explicit
    result = scu("movescu", node.port, "-aem", "EXPLICIT", *study_keys(_study(node)), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_uncompressed_copies_reveal(node, folder, _stored_pixels(node))


def test_getscu_proposing_only_uncompressed_gets_every_object_decompressed(node, tmp_path):
    result = scu("getscu", node.port, "+xe", "-od", str(tmp_path), *study_keys(_study(node)), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    _assert_uncompressed_copies_reveal(node, tmp_path, _stored_pixels(node))


def test_fetch_takes_the_stored_objects_as_stored_and_reveals_them(node, tmp_path):
    out = tmp_path / "fetched"
    result = node.run("fetch", "--node", f"STEGONODE@127.0.0.1:{node.port}", "--all",
                      "--keys", str(node.peer_keys), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    revealed = list(out.rglob("*.dcm"))
    assert len(revealed) == INSTANCES
    for path in revealed:
        ds = pydicom.dcmread(path)
        assert ds.PatientID == PATIENT["PatientID"]
        assert ds.file_meta.TransferSyntaxUID == STORAGE_SYNTAXES[DEFAULT_STORAGE]


# -- bounded memory: objects over node.max_object_mb are refused before decoding -------------


def test_protecting_a_multi_frame_object_holds_its_pixels_at_most_four_times():
    """A 40-frame 512 x 512 CT object (20 MiB of pixels) protected as a worker protects it, in a
    fresh process (benchmarks/memory.py): the peak RSS over a warm worker's stays under 4 x the
    decoded pixels, and once the worker hands memory back the RSS is within 16 MiB of where it was."""
    figures = memory.measure(frames=40, side=512)
    assert figures["decoded_mib"] == 20
    assert figures["peak_mib"] - figures["base_mib"] <= 4 * figures["decoded_mib"], figures
    assert figures["stored_mib"] > 0
    assert figures["after_mib"] <= figures["base_mib"] + 16, figures


def test_pipeline_refuses_pixels_over_the_limit_before_decoding(node_keys, tmp_path):
    path = tmp_path / "node.toml"
    path.write_text("[node]\nmax_object_mb = 1\n")
    pipeline = configured_pipeline(node_config.load(path), node_keys)
    ds = pydicom.dcmread(image_path("MR2_J2KR.dcm"))  # 0.6 MB as a file, 2 MiB of pixels decoded
    with pytest.raises(UnsupportedImageError, match="2.0 MiB of pixels decoded, over the limit of 1.0 MiB"):
        protect_object(ds, pipeline)
    assert ds._pixel_array is None  # refused from the header: nothing was decoded
    with pytest.raises(RefusedError, match="over the node's limit of 1.0 MiB"):
        pipeline.check_size(image_path("MR2_UNCR.dcm").stat().st_size)


def test_protect_command_refuses_a_file_over_the_limit_with_a_reason(node, tmp_path):
    config = tmp_path / "node.toml"
    config.write_text("[node]\nmax_object_mb = 1\n")
    result = node.run("protect", str(image_path("MR2_UNCR.dcm")), "--keys", str(node.data / "keys" / "node.keys"),
                      "--out", str(tmp_path / "out"), "--config", str(config))
    assert result.returncode == 1
    assert "2.0 MiB: over the node's limit of 1.0 MiB (node.max_object_mb)" in result.stdout, result.stdout
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("name, status, reason", [
    ("MR2_UNCR.dcm", 0xA700, "over the node's limit of 1.0 MiB"),  # 2 MiB as received
    ("MR2_J2KR.dcm", 0xA900, "over the limit of 1.0 MiB"),  # 0.6 MB received, 2 MiB decoded
])
def test_node_refuses_objects_over_the_limit_with_a_reason(node, name, status, reason):
    ds = pydicom.dcmread(image_path(name))
    ae = AE(ae_title="BIGSCU")
    ae.add_requested_context(MRImageStorage, [ds.file_meta.TransferSyntaxUID])
    assoc = ae.associate("127.0.0.1", node.port, ae_title="STEGONODE")
    assert assoc.is_established
    try:
        answer = assoc.send_c_store(ds)
    finally:
        assoc.release()
    assert answer.Status == status and reason in answer.ErrorComment
    assert node.status()["received"] == INSTANCES  # nothing of it kept
