"""Safe on every real image: no anatomy changed, no dense CT pixel changed, identity revealed
exactly or the image refused with a one-line reason; one test per failure class seen on real
images from other scanners (../shared/realdata, and synthetic images of each class)."""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from stegonode.codecs import keys as keyfiles
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import ConfigError, RefusedError
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.node import config as node_config

from anatomy import REALDATA, anatomy_label, evaluate, realdata_images
from images import OTHER_MODALITIES, ROUND_TRIP, image_path
from nodes import STEGONODE, NodeProcess, storescu

MARGIN = node_config.DEFAULTS["handlers"]["segment"]["margin"]
FIXTURE = Path(__file__).parent / "data" / "protected_v1"
LOSSY_VARIANT = ("_J2KI", "_UNCI")  # labels are drawn on the lossless pixels of an acquisition
LABELLED_ROUND_TRIP = [name for name in ROUND_TRIP if not Path(name).stem.endswith(LOSSY_VARIANT)]
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} is absent")


def _expected_refusal(path: Path) -> str | None:
    """What the default policy refuses, read from the header as docs/command-line.md ("Input")
    states it: Burned In Annotation YES, video, an encapsulated document. With both carriers on
    (the default) nothing else is refused: a background too small still gets the header carrier."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    name = ds.SOPClassUID.name
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        return "BurnedInAnnotation YES"
    if "Video" in name or ds.file_meta.TransferSyntaxUID.name.startswith(("MPEG", "HEVC")):
        return "video"
    if name.startswith("Encapsulated"):
        return "encapsulated"
    return None


def _check(outcome, path: Path) -> None:
    """What a user relies on, for one image through protect and reveal: refused with a one-line
    reason when the policy says so, protected, unharmed and revealed exactly otherwise."""
    expected = _expected_refusal(path)
    if expected is not None:
        assert outcome.refused, f"protected, though the policy refuses it ({expected})"
        assert "\n" not in outcome.refused and expected in outcome.refused, outcome.refused
        return
    assert not outcome.refused, f"refused: {outcome.refused}"
    assert outcome.anatomy_changed == 0, f"{outcome.anatomy_changed} anatomy pixels changed"
    if outcome.densest_changed_hu is not None:
        assert outcome.densest_changed_hu <= -500, outcome.densest_changed_hu
    assert outcome.revealed, outcome.error or "revealed other values than the original's"


@needs_realdata
@pytest.mark.parametrize("name", [path.name for path in realdata_images()] or ["(none)"])
def test_real_images_are_safe_and_recoverable(name, pipeline, peer_keys):
    _check(evaluate(REALDATA / name, pipeline, peer_keys), REALDATA / name)


@pytest.mark.parametrize("name", OTHER_MODALITIES)
def test_other_modalities_are_safe_and_recoverable(name, pipeline, peer_keys):
    _check(evaluate(image_path(name), pipeline, peer_keys), image_path(name))


@pytest.mark.parametrize("name", LABELLED_ROUND_TRIP)
def test_round_trip_images_change_no_anatomy(name, protect_image):
    protected = protect_image(name)
    stego = read_pixels(protected.read())
    changed = stego != protected.cover_pixels
    label = anatomy_label(image_path(name), len(stego))
    assert not (changed & label).any(), f"{int((changed & label).sum())} anatomy pixels changed"


# -- synthetic images, one per failure class ---------------------------------------------------


def _dataset(pixels: np.ndarray, modality: str, **attributes) -> pydicom.Dataset:
    """A minimal, valid single- or multi-frame image of ``pixels`` (frames, rows, columns)."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4",
                      "XA": "1.2.840.10008.5.1.4.1.1.12.1"}[modality]
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = modality
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "ID-4711", "19600101"
    frames, rows, columns = pixels.shape
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    signed = pixels.dtype.kind == "i"
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(signed)
    if frames > 1:
        ds.NumberOfFrames = frames
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.tobytes()
    return ds


def _protect_and_reveal(ds: pydicom.Dataset, pipeline, peer_keys) -> tuple[np.ndarray, np.ndarray]:
    original = copy.deepcopy(ds)
    cover = read_pixels(ds).copy()
    protect_object(ds, pipeline)
    revealed = reveal(ds, peer_keys)
    assert str(revealed.attributes.PatientName) == str(original.PatientName)
    assert revealed.attributes.PatientID == original.PatientID
    return cover, read_pixels(ds)


def test_body_cut_by_the_border_keeps_its_border(pipeline, peer_keys):
    """An MR body running off the bottom edge: no pixel of it, or within the margin, changes."""
    rng = np.random.default_rng(1)
    rows, columns = np.mgrid[:320, :320]
    body = ((rows - 330) / 200.0) ** 2 + ((columns - 160) / 110.0) ** 2 <= 1  # cut by the bottom edge
    pixels = rng.normal(40, 8, (320, 320)).clip(0)
    pixels[body] = 900 + 150 * np.sin(rows[body] / 9.0) + rng.normal(0, 20, body.sum())
    ds = _dataset(pixels.astype(np.uint16)[None], "MR")
    cover, stego = _protect_and_reveal(ds, pipeline, peer_keys)
    kept = ndimage.binary_dilation(body, iterations=MARGIN)
    assert (stego != cover).any()
    assert not ((stego != cover)[0] & kept).any()


@pytest.mark.parametrize("shape", [(1, 512, 512), (2, 131, 217), (1, 70, 300), (1, 40, 40), (1, 20, 24)])
def test_border_rule_computed_on_strips_equals_the_whole_frame_filter(shape):
    """The border rule filters four strips, not the whole frame: the same pixels, whatever the size."""
    from stegonode.handlers import guard

    rng = np.random.default_rng(sum(shape))
    foreground = ndimage.gaussian_filter(rng.random(shape), (0, 6, 6)) > 0.52
    for reach in (1, 5, guard.BORDER_REACH):
        near = ndimage.maximum_filter(foreground, size=(1, 2 * reach + 1, 2 * reach + 1))
        band = np.ones(shape[1:], dtype=bool)
        band[reach:-reach, reach:-reach] = False
        assert np.array_equal(guard._border_anatomy(foreground, reach), near & band[None])


@pytest.mark.parametrize("size", [1, 2, 3, 64, 65, 119881, 119882])
def test_guard_median_equals_numpys(size):
    """The guard's levels come from its own median: bit for bit numpy's, on display values (HU in
    float32, many equal values) and on noise, odd and even counts."""
    from stegonode.handlers import guard

    rng = np.random.default_rng(size)
    hounsfield = (rng.integers(-1024, 3000, size) * np.float32(1.0) + np.float32(-1024.0)).astype(np.float32)
    for values in (hounsfield, rng.normal(0, 40, size).astype(np.float32), np.abs(hounsfield - np.float32(-990.5))):
        assert guard.median_of(values) == float(np.median(values))


def test_small_dense_object_in_ct_air_is_never_changed(pipeline, peer_keys):
    """A 2x2 skin marker at +300 HU in the air, far from the body: it and its margin stay."""
    rng = np.random.default_rng(2)
    rows, columns = np.mgrid[:512, :512]
    hu = rng.normal(-1000, 15, (512, 512))
    body = (rows - 256) ** 2 + (columns - 256) ** 2 <= 150 ** 2
    hu[body] = rng.normal(40, 15, body.sum())
    hu[60:62, 60:62] = 300  # under any component-size threshold
    stored = (hu + 1024).clip(0).astype(np.uint16)
    ds = _dataset(stored[None], "CT", RescaleSlope=1, RescaleIntercept=-1024)
    cover, stego = _protect_and_reveal(ds, pipeline, peer_keys)
    changed = (stego != cover)[0]
    assert changed.any()
    assert not changed[60 - MARGIN:62 + MARGIN, 60 - MARGIN:62 + MARGIN].any()
    assert not changed[(stored.astype(np.int32) - 1024) > -500].any()


def test_full_field_angiography_run_writes_only_in_the_collimator_black(pipeline, peer_keys):
    """XA: anatomy fills the collimated field, black corners outside; the padding segmenter
    decides (the network is not validated on XA) and only the exact black changes."""
    rng = np.random.default_rng(3)
    rows, columns = np.mgrid[:256, :256]
    field = np.abs(rows - 127.5) + np.abs(columns - 127.5) <= 200  # octagon: corners cut off
    frames = rng.integers(20, 230, (4, 256, 256)).astype(np.uint8)  # texture everywhere in the field
    frames[:, ~field] = 0
    ds = _dataset(frames, "XA")
    cover, stego = _protect_and_reveal(ds, pipeline, peer_keys)
    changed = stego != cover
    assert changed.any()
    kept = ndimage.binary_dilation(field, iterations=MARGIN)
    assert not (changed & kept[None]).any()


def test_modality_set_to_none_is_refused_with_the_key(node_keys):
    config = node_config.defaults()
    config["handlers"]["segment"]["other_modalities"] = "none"
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)
    frames = np.zeros((1, 128, 128), np.uint8)
    with pytest.raises(RefusedError, match="other_modalities"):
        protect_object(_dataset(frames, "XA"), pipeline)


def test_policy_values_are_validated(tmp_path):
    bad = tmp_path / "node.toml"
    bad.write_text('[handlers.segment]\nother_modalities = "network"\n')
    with pytest.raises(ConfigError, match="other_modalities"):
        node_config.load(bad)
    bad.write_text('[handlers.segment]\nvalidated_modalities = ["ct"]\n')
    with pytest.raises(ConfigError, match="validated_modalities"):
        node_config.load(bad)


def test_objects_protected_before_the_guard_still_reveal():
    keys = keyfiles.load_peer_keys(FIXTURE / "peer.keys")
    ds = pydicom.dcmread(gzip.open(FIXTURE / "ct_crop.dcm.gz"))
    expected = json.loads((FIXTURE / "expected.json").read_text())["attributes"]
    revealed = reveal(ds, keys).attributes
    assert str(revealed.PatientName) == expected["PatientName"]
    assert revealed.PatientID == expected["PatientID"]
    assert revealed.StudyInstanceUID == expected["StudyInstanceUID"]


# -- Burned In Annotation ------------------------------------------------------------------------


def _burned_in(tmp_path: Path) -> Path:
    ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
    ds.BurnedInAnnotation = "YES"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = tmp_path / "burned_in.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_burned_in_annotation_is_refused_on_the_command_line(tmp_path, key_dir):
    batch = tmp_path / "batch"
    batch.mkdir()
    _burned_in(batch)
    (batch / "plain.dcm").write_bytes(image_path("693_UNCR.dcm").read_bytes())
    result = subprocess.run([STEGONODE, "protect", str(batch), "--out", str(tmp_path / "out"),
                             "--keys", str(key_dir / "node.keys")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith(("OK", "FAIL"))]
    assert any(line.startswith("FAIL") and "burned_in.dcm: BurnedInAnnotation YES" in line for line in lines), lines
    assert any(line.startswith("OK") and "plain.dcm" in line for line in lines), lines
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "out" / "burned_in.dcm").exists()


def test_burned_in_annotation_is_refused_over_the_network(tmp_path):
    node = NodeProcess(tmp_path / "node").start()
    try:
        result = storescu(node.port, [_burned_in(tmp_path)], "-d")
        log = result.stdout + result.stderr
        assert "Received Store Response (Success)" not in log
        assert "BurnedInAnnotation YES" in log, log
        assert node.status()["received"] == 0
    finally:
        node.stop()


# -- through the node ----------------------------------------------------------------------------

# storescu's option that proposes a file's own compressed transfer syntax (it cannot decompress)
_PROPOSE = {"1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.50": "-xy",
            "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.5": "-xr"}


def _proposing(path: Path) -> list[str]:
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    return [_PROPOSE[syntax]] if syntax in _PROPOSE else []



@needs_realdata
def test_real_images_through_the_node_are_protected_or_refused_with_a_reason(tmp_path):
    """storescu sends every real image; each the policy does not refuse is acknowledged and stored
    protected (fetch reveals it exactly); the others are refused with a failure status, or
    quarantined with their reason."""
    node = NodeProcess(tmp_path / "node").start()
    try:
        logs = [storescu(node.port, [path], *_proposing(path), timeout=600) for path in realdata_images()]
        log = "".join(result.stdout + result.stderr for result in logs)
        accepted = log.count("Received Store Response (Success)")
        assert accepted + log.count("Received Store Response (Failed") + log.count(
            "Received Store Response (Error") == len(realdata_images()), log
        counts = node.wait_idle(accepted, timeout=900)
        assert counts["processed"] + counts["quarantined"] == accepted
        protectable = [path.name for path in realdata_images() if _expected_refusal(path) is None]
        assert counts["processed"] == len(protectable), (counts, protectable)
        for token, reason in node.query("SELECT token, reason FROM jobs WHERE state = 'quarantined'"):
            assert reason and "\n" not in reason and "Traceback" not in reason, (token, reason)
        out = tmp_path / "fetched"
        fetched = node.fetch_all(out)
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        originals = {pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID: path
                     for path in realdata_images()}
        revealed = sorted(out.glob("*/*.dcm"))
        assert len(revealed) == counts["processed"]
        for path in revealed:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            original = pydicom.dcmread(originals[ds.SOPInstanceUID], stop_before_pixels=True)
            for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID"):
                assert ds.get(keyword) == original.get(keyword), keyword
        assert "Traceback" not in node.log.read_text()
    finally:
        node.stop()
