"""Stored objects in a lossless compressed transfer syntax, and retrieval that transcodes.

Real parts: pydicom-data images, the shipped pipeline, DCMTK's dcmdjpls/dcmdrle/dciodvfy, a
node process, DCMTK's storescp as C-MOVE destination and getscu as C-GET requestor, both
accepting only uncompressed objects.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_charset_files
from pydicom.encaps import parse_basic_offsets
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import MRImageStorage

from stegonode.cli import main as cli_main
from stegonode.codecs import keys as keyfiles
from stegonode.dicom.deflated import deflated_body
from stegonode.dicom.dicomfile import dicom_bytes, read_dicom
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import ConfigError, RefusedError, UnsupportedImageError
from stegonode.handlers.compression import DEFAULT_STORAGE, STORAGE_SYNTAXES, store_pixels
from stegonode.handlers.pipeline import configured_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.node import config as node_config
from stegonode.node import peer as peer_module
from stegonode.node.peer import NodeAddress, Peer, Selection
from stegonode.node.query import Instance
from stegonode.node.retrieve import move_contexts

from images import dciodvfy_errors, dcmtk, image_path
from nodes import (
    DCMTK_ENV,
    ORTHANC,
    ORTHANC_DICOMWEB,
    PATIENT,
    NodeProcess,
    free_port,
    plain_orthanc,
    scu,
    study_keys,
    write_series,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import memory  # noqa: E402  (benchmarks/memory.py: the measurement the figures in the docs come from)

DECODERS = {JPEGLSLossless: "dcmdjpls", RLELossless: "dcmdrle"}  # DCMTK's (no JPEG 2000 decoder)
INSTANCES = 4
LIMIT_LOSSLESS = 1.3  # a losslessly compressed source is stored in at most 1.3 x its own size
TOKEN = "test-token-0123456789abcdefghijklmnop"  # DICOMweb's bearer token


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


def deflated_source(name: str) -> bytes:
    """pydicom-data's ``name`` with the test patient, as a Deflated Explicit VR Little Endian file."""
    return deflated_source_of(pydicom.dcmread(image_path(name)))


def deflated_source_of(ds: pydicom.Dataset, patient: bool = True) -> bytes:
    """``ds`` (native pixels) as a Deflated Explicit VR Little Endian file, as pydicom writes it."""
    if patient:
        for keyword, value in PATIENT.items():
            setattr(ds, keyword, value)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _original_header(ds: pydicom.Dataset) -> dict:
    """What reveal restores: every element but group lengths."""
    return {element.tag: element for element in ds if element.tag.element != 0}


def test_a_deflated_source_is_stored_deflated_when_deflate_codes_its_pixels_smaller(node_keys, peer_keys, tmp_path):
    """image_dfl: an almost constant 512 x 512 pattern that deflate codes in 4 KB and JPEG-LS in
    15 KB. Stored deflated within 1.3 x of what arrived; pydicom and DCMTK inflate it to the
    pixels protect produced, and reveal restores the original header exactly."""
    source = deflated_source("image_dfl.dcm")
    protected = protect_object(source, configured_pipeline(node_config.load(None), node_keys))
    assert protected.dataset.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert len(protected.data) <= LIMIT_LOSSLESS * len(source)
    path, inflated = tmp_path / "stored.dcm", tmp_path / "inflated.dcm"
    path.write_bytes(protected.data)
    stored = pydicom.dcmread(path)
    assert stored.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert np.array_equal(read_pixels(stored), protected.instance.pixels)
    result = subprocess.run([dcmtk("dcmconv"), "+te", str(path), str(inflated)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(read_pixels(pydicom.dcmread(inflated)), protected.instance.pixels)
    revealed = reveal(read_dicom(protected.data), peer_keys).dataset
    expected, got = _original_header(pydicom.dcmread(DicomBytesIO(source))), _original_header(revealed)
    assert sorted(got) == sorted(expected)
    for tag, element in expected.items():
        assert got[tag] == element, tag


def test_a_deflated_source_is_stored_in_the_configured_syntax_when_that_codes_its_pixels_smaller(node_keys):
    """A CT slice received deflated: JPEG-LS codes its pixels smaller than deflate does."""
    source = deflated_source("693_UNCR.dcm")
    protected = protect_object(source, configured_pipeline(node_config.load(None), node_keys))
    assert protected.dataset.file_meta.TransferSyntaxUID == STORAGE_SYNTAXES[DEFAULT_STORAGE]
    assert len(protected.data) < len(source)
    assert np.array_equal(read_pixels(pydicom.dcmread(DicomBytesIO(protected.data))), protected.instance.pixels)


def test_an_object_without_pixels_received_deflated_is_stored_deflated(node_keys, peer_keys):
    """The header carrier alone (an SR): kept deflated, and reveal restores its header exactly."""
    source = deflated_source("test-SR.dcm")
    protected = protect_object(source, configured_pipeline(node_config.load(None), node_keys))
    assert protected.dataset.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    revealed = reveal(read_dicom(protected.data), peer_keys).dataset
    expected, got = _original_header(pydicom.dcmread(DicomBytesIO(source))), _original_header(revealed)
    assert sorted(got) == sorted(expected)
    for tag, element in expected.items():
        assert got[tag] == element, tag


@pytest.mark.parametrize("name", ["image_dfl.dcm", "chrH31.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "emri_small.dcm"])
def test_the_deflated_stream_inflates_to_the_data_set_byte_for_byte(name):
    """One raw deflate stream, blocks ended where the bytes change kind: it inflates to what
    pydicom writes for the data set (character sets, overlays, multi-frame), and reads back."""
    path = get_charset_files(name)[0] if name.startswith("chr") else image_path(name)
    ds = pydicom.dcmread(DicomBytesIO(deflated_source_of(pydicom.dcmread(path), patient=False)))
    encoded = DicomBytesIO()
    encoded.is_implicit_VR, encoded.is_little_endian = False, True
    write_dataset(encoded, ds)
    assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(deflated_body(ds)) == encoded.getvalue()
    assert pydicom.dcmread(DicomBytesIO(dicom_bytes(ds))) == ds


def test_move_proposes_each_stored_syntax_deflated_included_and_uncompressed():
    found = [Instance("a", MRImageStorage, "1.2.3", DeflatedExplicitVRLittleEndian),
             Instance("b", MRImageStorage, "1.2.4", JPEGLSLossless), Instance("c", MRImageStorage, "1.2.5")]
    proposed = sorted(tuple(context.transfer_syntax) for context in move_contexts(found))
    assert proposed == sorted([(DeflatedExplicitVRLittleEndian,), (JPEGLSLossless,),
                               (ExplicitVRLittleEndian, ImplicitVRLittleEndian)])


def test_move_proposes_at_most_128_contexts_uncompressed_first():
    """100 SOP classes stored JPEG-LS: every class keeps its uncompressed context, the stored
    syntax goes in as far as room remains (pynetdicom refuses more than 128)."""
    found = [Instance(str(n), f"1.2.826.0.1.3680043.10.1{n:03d}", f"1.2.3.{n}", JPEGLSLossless) for n in range(100)]
    contexts = move_contexts(found)
    assert len(contexts) == 128
    uncompressed = [c.abstract_syntax for c in contexts if c.transfer_syntax == [ExplicitVRLittleEndian, ImplicitVRLittleEndian]]
    assert sorted(uncompressed) == sorted(i.sop_class_uid for i in found)


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
    result = node.fetch_all(out)
    assert result.returncode == 0, result.stdout + result.stderr
    revealed = list(out.rglob("*.dcm"))
    assert len(revealed) == INSTANCES
    for path in revealed:
        ds = pydicom.dcmread(path)
        assert ds.PatientID == PATIENT["PatientID"]
        assert ds.file_meta.TransferSyntaxUID == STORAGE_SYNTAXES[DEFAULT_STORAGE]


@pytest.fixture(scope="module")
def deflated_node(tmp_path_factory):
    """A node that received image_dfl deflated (storescu -xd): the node and the file sent."""
    folder = tmp_path_factory.mktemp("deflated")
    node = NodeProcess(folder / "node", tables={"web": {"enabled": True, "port": free_port(), "login": "token"},
                                                "dicomweb": {"token": TOKEN}}).start()
    source = folder / "image_dfl.dcm"
    source.write_bytes(deflated_source("image_dfl.dcm"))
    sent = scu("storescu", node.port, "-xd", files=[source], timeout=120)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    node.wait_idle(1)
    yield node, source
    node.stop()


def _stored_deflated(node: NodeProcess, source: Path) -> pydicom.Dataset:
    (path,) = (node.data / "stored").glob("*.dcm")
    assert path.stat().st_size <= LIMIT_LOSSLESS * source.stat().st_size
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    return ds


def test_getscu_proposing_only_uncompressed_gets_a_deflated_object_inflated(deflated_node, tmp_path):
    node, source = deflated_node
    stored = _stored_deflated(node, source)
    result = scu("getscu", node.port, "+xe", "-od", str(tmp_path), *study_keys(_study(node)), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = tmp_path.iterdir()
    got = pydicom.dcmread(path)
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert np.array_equal(read_pixels(got), read_pixels(stored))
    revealed = node.run("reveal", str(path), "--keys", str(node.peer_keys), "--json")
    assert revealed.returncode == 0, revealed.stdout + revealed.stderr
    outcome = json.loads(revealed.stdout)
    assert outcome["ok"] and all(outcome["attributes"][k] == v for k, v in PATIENT.items()), outcome


def test_fetch_takes_a_deflated_object_as_stored_and_reveals_it(deflated_node, tmp_path):
    node, source = deflated_node
    stored = _stored_deflated(node, source)
    out = tmp_path / "fetched"
    result = node.fetch_all(out)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = out.rglob("*.dcm")
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert ds.PatientID == PATIENT["PatientID"]
    assert np.array_equal(read_pixels(ds), read_pixels(stored))


def test_wado_sends_a_deflated_object_as_stored_or_inflated(deflated_node):
    dicomweb_client = pytest.importorskip("dicomweb_client", reason="dicomweb-client missing: scripts/setup.sh --test")
    node, source = deflated_node
    stored = _stored_deflated(node, source)
    client = dicomweb_client.DICOMwebClient(f"http://127.0.0.1:{node.tables['web']['port']}/dicomweb",
                                            headers={"Authorization": f"Bearer {TOKEN}"})
    (as_stored,) = client.retrieve_study(_study(node), media_types=(("application/dicom", "*"),))
    (inflated,) = client.retrieve_study(_study(node))  # the default: Explicit VR Little Endian
    assert as_stored.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert inflated.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    for ds in (as_stored, inflated):
        assert np.array_equal(read_pixels(ds), read_pixels(stored))


def test_orthanc_decodes_a_stored_deflated_object(deflated_node, tmp_path):
    """Orthanc (Debian's, plain) takes the stored file: a preview, and the exact stored values."""
    if not (Path(ORTHANC).exists() and ORTHANC_DICOMWEB.exists()):
        pytest.skip("Orthanc missing: scripts/setup.sh --test installs it")
    node, source = deflated_node
    stored = _stored_deflated(node, source)
    (path,) = (node.data / "stored").glob("*.dcm")
    process, port = plain_orthanc(tmp_path / "orthanc")
    try:
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(urllib.request.Request(f"{url}/instances", path.read_bytes()), timeout=60) as answer:
            instance = json.loads(answer.read())["ID"]
        with urllib.request.urlopen(f"{url}/instances/{instance}/preview", timeout=60) as answer:
            assert answer.read().startswith(b"\x89PNG")
        with urllib.request.urlopen(f"{url}/instances/{instance}/frames/0/numpy?rescale=0", timeout=60) as answer:
            decoded = np.load(io.BytesIO(answer.read()))
        pixels = read_pixels(stored)[0]
        assert np.array_equal(decoded.reshape(pixels.shape), pixels)
    finally:
        process.terminate()
        process.wait()


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


@pytest.mark.parametrize("name", ["693_UNCR.dcm", "693_J2KR.dcm"])
def test_the_cover_pixels_are_gone_when_the_stego_pixels_are_stored(name, node_keys, monkeypatch):
    """Embedding replaces the cover pixels; the pipeline must not hold them until the stego
    pixels are encoded (they once did, through the check of unchanged pixels: 3.85 x instead of
    3.56 x the decoded pixels at the peak of a 200 MiB object). Native and compressed sources."""
    import gc
    import weakref

    from stegonode.handlers import pipeline as pipeline_module

    covers: list = []
    cover_pixels = pipeline_module.cover_pixels

    def tracked(ds):
        pixels = cover_pixels(ds)
        covers.append(weakref.ref(pixels))
        return pixels

    alive: list[bool] = []

    def stored(ds, pixels, *args, **kwargs):
        gc.collect()
        alive.append(covers[0]() is not None)
        return store_pixels(ds, pixels, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "cover_pixels", tracked)
    monkeypatch.setattr(pipeline_module, "store_pixels", stored)
    pipeline = configured_pipeline(node_config.load(None), node_keys)
    protect_object(pydicom.dcmread(image_path(name)), pipeline)
    assert alive == [False]  # stored once (the pixel carrier wrote them), the cover gone by then


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


# -- fetch: a study of more SOP classes than one association's contexts hold -----------------

IMAGE_CLASSES = sorted({UID(c.abstract_syntax) for c in StoragePresentationContexts
                        if UID(c.abstract_syntax).name.endswith("Image Storage")
                        and "Video" not in UID(c.abstract_syntax).name and not UID(c.abstract_syntax).is_retired})[:32]


def write_many_classes(folder: Path) -> list[Path]:
    """One real CT slice (693_UNCR, cut to 24 x 24: the header carrier alone) as 32 instances of
    32 image storage SOP classes, two classes to a series: more than fit one association at the
    five contexts per SOP class fetch used to propose."""
    folder.mkdir(parents=True, exist_ok=True)
    source = pydicom.dcmread(image_path("693_UNCR.dcm"))
    pixels = read_pixels(source)[0, :24, :24]
    study = generate_uid()
    series = [generate_uid() for _ in range(len(IMAGE_CLASSES) // 2)]
    paths = []
    for number, sop_class in enumerate(IMAGE_CLASSES):
        ds = copy.deepcopy(source)
        ds.Rows = ds.Columns = 24
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        for keyword, value in PATIENT.items():
            setattr(ds, keyword, value)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series[number // 2]
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = number + 1
        paths.append(folder / f"{number:02d}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths


@pytest.fixture(scope="module")
def classes_node(tmp_path_factory):
    """A node holding one study of 32 SOP classes: the node and the files sent."""
    folder = tmp_path_factory.mktemp("classes")
    move_port = free_port()
    node = NodeProcess(folder / "node", peers=[{"ae_title": "MOVEPEER", "host": "127.0.0.1", "port": move_port}]).start()
    paths = write_many_classes(folder / "sent")
    for batch in range(0, len(paths), 8):  # storescu too proposes at most 128 contexts
        sent = scu("storescu", node.port, "-R", files=paths[batch:batch + 8], timeout=120)
        assert sent.returncode == 0, sent.stdout + sent.stderr
    node.wait_idle(len(paths))
    yield node, paths, move_port
    node.stop()


def _assert_revealed_exactly(out: Path, sent: list[Path]) -> None:
    revealed = {}
    for path in out.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        revealed[ds.SOPInstanceUID] = ds
    originals = [pydicom.dcmread(path) for path in sent]
    assert sorted(revealed) == sorted(ds.SOPInstanceUID for ds in originals)
    for original in originals:
        ds = revealed[original.SOPInstanceUID]
        for keyword in (*PATIENT, "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID", "PixelData"):
            assert ds[keyword].value == original[keyword].value, keyword


def test_fetch_retrieves_every_sop_class_of_a_study_larger_than_one_association(classes_node, tmp_path):
    node, sent, _ = classes_node
    out = tmp_path / "fetched"
    result = node.fetch_all(out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(sent)}/{len(sent)} instances revealed" in result.stdout
    _assert_revealed_exactly(out, sent)


@pytest.mark.parametrize("move", [False, True], ids=["c-get", "c-move"])
def test_fetch_splits_what_one_association_cannot_hold(classes_node, tmp_path, peer_keys, monkeypatch, move):
    """Seven storage contexts to an association: the 32 SOP classes in five groups, whole series
    at SERIES level and the split ones at IMAGE level, by C-GET and by C-MOVE."""
    node, sent, move_port = classes_node
    monkeypatch.setattr(peer_module, "STORAGE_CONTEXTS", 7)
    peer = Peer(NodeAddress("STEGONODE", "127.0.0.1", node.port), keyfiles.load_peer_keys(node.peer_keys))
    groups = peer_module.plan("study", peer.find_instances(_study(node)))
    assert len(groups) == 5 and all(sum(map(len, g.contexts.values())) <= 7 for g in groups)
    assert {i.QueryRetrieveLevel for g in groups for i in g.identifiers} == {"SERIES", "IMAGE"}
    (result,) = peer.fetch(Selection(), tmp_path, ("MOVEPEER", move_port) if move else None)
    assert result.not_retrieved == [] and len(result.revealed) == result.expected == len(sent)
    _assert_revealed_exactly(tmp_path, sent)


def test_fetch_counts_what_did_not_arrive_and_exits_non_zero(classes_node, tmp_path, monkeypatch, capsys):
    """Only the first association's SOP classes retrieved (as fetch did before): the rest is
    counted, named in summary.json, and the exit status is 1."""
    node, sent, _ = classes_node
    plan = peer_module.plan
    monkeypatch.setattr(peer_module, "STORAGE_CONTEXTS", 7)
    monkeypatch.setattr(peer_module, "plan", lambda study, listed: plan(study, listed)[:1])
    code = cli_main(["fetch", "--node", f"STEGONODE@127.0.0.1:{node.port}", "--all",
                     "--keys", str(node.peer_keys), "--out", str(tmp_path)])
    assert code == 1
    (study,) = json.loads((tmp_path / "summary.json").read_text())["studies"]
    assert len(study["not_retrieved"]) == len(sent) - 7 and study["instances_revealed"] == 7
    line = capsys.readouterr().out
    assert f"7/{len(sent)} instances revealed" in line and f", {len(sent) - 7} not retrieved" in line


# -- the header carrier alone: compressed pixels stored exactly as received --------------------

# Compressed sources the default pipeline protects with the header carrier alone: colour and
# grayscale without room in the background (decoded for the attempt), palette colour (never decoded).
KEPT = {"SC_rgb_jpeg_dcmtk.dcm": "dcmdjpeg", "JPGExtended.dcm": "dcmdjpeg", "OBXXXX1A_rle_2frame.dcm": "dcmdrle",
        "emri_small_jpeg_ls_lossless.dcm": "dcmdjpls", "MR_small_jp2klossless.dcm": ""}
# ... whose stream carries a comment (OpenJPEG's name): kept without it (tests/test_codestream.py)
COMMENTED = {"MR_small_jp2klossless.dcm"}


@pytest.mark.parametrize("name", list(KEPT))
def test_header_carrier_only_keeps_the_received_pixel_data_and_syntax(name, node_keys, peer_keys, tmp_path):
    source = pydicom.dcmread(image_path(name))
    protected = protect_object(copy.deepcopy(source), configured_pipeline(node_config.load(None), node_keys))
    assert protected.report["carriers"] == "header"
    stored = tmp_path / "stored.dcm"
    stored.write_bytes(protected.data)
    ds = pydicom.dcmread(stored)
    assert ds.file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
    if name in COMMENTED:  # the received stream less its comment: the same pixels
        assert len(ds.PixelData) < len(source.PixelData) and b"\xff\x64" not in ds.PixelData[:200]
        assert np.array_equal(ds.pixel_array, source.pixel_array)
    else:
        assert ds.PixelData == source.PixelData  # the received bytes: nothing decoded, nothing re-encoded
    assert ds.PhotometricInterpretation == source.PhotometricInterpretation
    revealed = reveal(ds, peer_keys).dataset
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SOPInstanceUID"):
        assert revealed[keyword].value == source[keyword].value, keyword
    assert revealed.PixelData == ds.PixelData
    decompressed_before = copy.deepcopy(ds)  # what was stored before: the pixels decoded
    decompressed_before.decompress(generate_instance_uid=False)
    before = tmp_path / "before.dcm"
    decompressed_before.save_as(before, enforce_file_format=True)
    # dciodvfy finds nothing the source itself or the decoded copy stored before did not have
    # (SC_rgb_jpeg_dcmtk says YBR_FULL for its JPEG Baseline stream, as received)
    assert dciodvfy_errors(stored) <= dciodvfy_errors(before) | dciodvfy_errors(Path(image_path(name)))
    if KEPT[name]:  # DCMTK decodes what is stored to what pydicom decodes
        decoded = tmp_path / "decoded.dcm"
        result = subprocess.run([dcmtk(KEPT[name]), str(stored), str(decoded)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert pydicom.dcmread(decoded).pixel_array.shape == source.pixel_array.shape


@pytest.fixture(scope="module")
def kept_node(tmp_path_factory):
    """A node that received a JPEG Baseline colour image and a JPEG Extended grayscale image,
    both protected with the header carrier alone: the node and the sources by SOP Instance UID."""
    folder = tmp_path_factory.mktemp("kept")
    node = NodeProcess(folder / "node", tables={"web": {"enabled": True, "port": free_port(), "login": "token"},
                                                "dicomweb": {"token": TOKEN}}).start()
    sources = {}
    for name in ("SC_rgb_jpeg_dcmtk.dcm", "JPGExtended.dcm"):
        ds = pydicom.dcmread(image_path(name))
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.543.28"  # one study
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / name, enforce_file_format=True)
        sources[ds.SOPInstanceUID] = ds
    for name, lossy in (("SC_rgb_jpeg_dcmtk.dcm", "-xy"), ("JPGExtended.dcm", "-xx")):  # JPEG 8 and 12 bit
        sent = scu("storescu", node.port, "-R", lossy, files=[folder / name], timeout=120)
        assert sent.returncode == 0, sent.stdout + sent.stderr
    node.wait_idle(2)
    yield node, sources
    node.stop()


def test_kept_objects_reach_peers_as_stored_or_decoded(kept_node, tmp_path):
    """getscu accepting only uncompressed gets them decoded (YCbCr JPEG as RGB), reveal works;
    fetch takes them as stored and reveals the original pixel data byte for byte; WADO-RS
    sends them decoded by default."""
    node, sources = kept_node
    stored = {pydicom.dcmread(p).file_meta.TransferSyntaxUID for p in (node.data / "stored").glob("*.dcm")}
    assert stored == {s.file_meta.TransferSyntaxUID for s in sources.values()}
    got = tmp_path / "got"
    got.mkdir()
    result = scu("getscu", node.port, "+xe", "-od", str(got), *study_keys(_study(node)), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    revealed = node.run("reveal", *map(str, got.iterdir()), "--keys", str(node.peer_keys), "--json")
    assert revealed.returncode == 0, revealed.stdout + revealed.stderr
    for path in got.iterdir():
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.PhotometricInterpretation in ("RGB", "MONOCHROME2")
        source = next(s for s in sources.values() if s.Rows == ds.Rows)
        assert np.array_equal(ds.pixel_array, source.pixel_array)  # what a viewer of the source shows
    out = tmp_path / "fetched"
    result = node.fetch_all(out)
    assert result.returncode == 0, result.stdout + result.stderr
    fetched = {ds.SOPInstanceUID: ds for ds in map(pydicom.dcmread, out.rglob("*.dcm"))}
    assert sorted(fetched) == sorted(sources)
    for uid, source in sources.items():
        assert fetched[uid].file_meta.TransferSyntaxUID == source.file_meta.TransferSyntaxUID
        assert fetched[uid].PixelData == source.PixelData and fetched[uid].PatientName == source.PatientName
    dicomweb_client = pytest.importorskip("dicomweb_client", reason="dicomweb-client missing: scripts/setup.sh --test")
    client = dicomweb_client.DICOMwebClient(f"http://127.0.0.1:{node.tables['web']['port']}/dicomweb",
                                            headers={"Authorization": f"Bearer {TOKEN}"})
    for ds in client.retrieve_study(_study(node)):  # the default: Explicit VR Little Endian
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        source = next(s for s in sources.values() if s.Rows == ds.Rows)
        assert np.array_equal(ds.pixel_array, source.pixel_array)
