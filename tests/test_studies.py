"""Whole studies: every object a modality sends is protected, every reference still resolves.

The studies of ../shared/studies (real objects from public projects that reference each other:
CT, CR, colour US, SEG, RTSTRUCT, RTPLAN, TID 1500 SRs, an X-Ray Radiation Dose SR) are sent
with DCMTK's storescu to a real ``stegonode serve``, once for the module; the tests read what it
stored and what ``stegonode fetch`` gives back.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import highdicom
import matplotlib
import numpy as np
import pydicom
import pytest
from pydicom import Dataset

from stegonode.codecs import keys as keyfiles
from stegonode.dicom import colour
from stegonode.dicom.pseudonyms import Pseudonymizer
from stegonode.dicom.references import identities, uid_elements
from stegonode.handlers.admission import pixel_carrier_obstacle
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.protection import read_protection
from stegonode.handlers.reveal import usable_in
from stegonode.node import config as node_config

from images import dciodvfy_errors, image_path
from nodes import NodeProcess, acknowledged, storescu

STUDIES = Path(__file__).resolve().parents[2] / "shared" / "studies"
if not STUDIES.is_dir():
    STUDIES = Path("/work/shared/studies")
REFERENCES = STUDIES / "references.json"
pytestmark = pytest.mark.skipif(not REFERENCES.exists(), reason="../shared/studies not present")
# pydicom-data's colour images, sent with the studies: RGB, YBR_FULL, YBR_FULL_422 (JPEG: stored
# decoded, as RGB), palette. (Native YBR_FULL_422 shares its SOP Instance UID with the YBR_FULL
# one: tests/test_colour.py protects it.)
COLOUR = ("SC_rgb.dcm", "SC_ybr_full_uncompressed.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm",
          "OBXXXX1A.dcm", "US1_UNCR.dcm")
IDENTITY = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID")


@dataclass
class Sent:
    """The node after the studies were sent, and what the test needs to read it."""

    node: NodeProcess
    originals: dict[str, Dataset]  # "study/file" -> the original
    stored: dict[str, Dataset]  # "study/file" -> the stored, protected object
    stored_paths: dict[str, Path]
    fetched: dict[str, Dataset]  # original SOP Instance UID -> what fetch restored
    sent_log: str


def study_files() -> dict[str, Path]:
    files = {f"{path.parent.name}/{path.name}": path for path in sorted(STUDIES.glob("*/*.dcm"))}
    files.update({f"colour/{name}": image_path(name) for name in COLOUR})
    return files


@pytest.fixture(scope="module")
def sent(tmp_path_factory) -> Sent:
    work = tmp_path_factory.mktemp("studies")
    files = study_files()
    node = NodeProcess(work / "node").start()
    try:
        # -R: propose the SOP classes of the files (storescu's default list lacks SEG and RT);
        # the JPEG one as it is (-xy)
        jpeg = [path for path in files.values() if "+eb+" in path.name]
        result = storescu(node.port, [path for path in files.values() if path not in jpeg], "-R")
        assert result.returncode == 0, result.stdout + result.stderr
        as_jpeg = storescu(node.port, jpeg, "-R", "-xy")
        assert as_jpeg.returncode == 0 and "-> JPEG Baseline" in as_jpeg.stderr, as_jpeg.stderr
        node.wait_idle(len(files))
        out = work / "fetched"
        fetch = node.fetch_all(out)
        assert fetch.returncode == 0, fetch.stdout + fetch.stderr
    finally:
        node.stop()
    pseudonyms = Pseudonymizer(keyfiles.load_node_keys(node.data / "keys" / "node.keys").pseudonym_key)
    originals = {key: pydicom.dcmread(path) for key, path in files.items()}
    paths = {key: node.data / "stored" / f"{pseudonyms.uid(ds.SOPInstanceUID)}.dcm" for key, ds in originals.items()}
    fetched = [pydicom.dcmread(path) for path in out.rglob("*.dcm")]
    return Sent(node, originals, {key: pydicom.dcmread(path) for key, path in paths.items() if path.exists()},
                paths, {ds.SOPInstanceUID: ds for ds in fetched}, result.stdout + result.stderr + as_jpeg.stderr)


def test_every_object_is_acknowledged_stored_and_protected(sent):
    assert len(acknowledged(sent.sent_log)) == len(sent.originals), sent.sent_log
    assert sorted(sent.stored) == sorted(sent.originals)
    counts = sent.node.status()
    assert counts["processed"] == len(sent.originals) and counts["quarantined"] == 0
    for key, ds in sent.stored.items():
        protection = read_protection(ds)
        assert "header" in protection.carriers, key
        assert ds.PatientIdentityRemoved == "YES" and ds.PatientID.startswith("SN"), key
        original = sent.originals[key]
        if original.get("PatientName"):
            assert str(ds.PatientName) != str(original.PatientName), key
    # the CT slices large enough carry the identity in their pixels too; the rest in the header
    assert read_protection(sent.stored["dcmqi_ct3_liver_seg/CT_01.dcm"]).carriers == ["pixels", "header"]
    for key in ("dcmqi_ct3_liver_seg/SEG_liver.dcm", "dicompyler_breast_rt/RTSTRUCT.dcm",
                "dicompyler_breast_rt/RTPLAN.dcm", "pyskindose_rdsr/RDSR_siemens_axiom.dcm",
                "colour/OBXXXX1A.dcm"):
        assert read_protection(sent.stored[key]).carriers == ["header"], key
    # colour ultrasound with a black background: the pixel carrier writes its luminance
    for key in ("pydicom_us_rgb/US_rgb.dcm", "colour/US1_UNCR.dcm"):
        assert read_protection(sent.stored[key]).carriers == ["pixels", "header"], key


def _at(ds: Dataset, path: str) -> str:
    """The value at an attribute path of references.json (``A[0].B[3].C``)."""
    value: object = ds
    for part in path.split("."):
        match = re.fullmatch(r"(\w+)\[(\d+)\]", part)
        value = value[match[1]].value[int(match[2])] if match else value[part].value  # type: ignore[index]
    return str(value)


def test_each_listed_reference_names_the_protected_object(sent):
    """references.json: every reference that resolved among the originals names, in the stored
    object, the stored object it named, under its new UID."""
    checked = 0
    for key, entries in json.loads(REFERENCES.read_text()).items():
        study = key.split("/")[0]
        for path, uid, target in entries:
            if target is None:
                continue
            original_target = sent.originals[f"{study}/{target}"]
            (keyword,) = {k for k in IDENTITY if str(original_target.get(k, "")) == uid}
            assert _at(sent.stored[key], path) == str(sent.stored[f"{study}/{target}"].get(keyword)), (key, path)
            checked += 1
    assert checked == 100


def test_every_uid_at_every_depth_is_remapped_and_references_resolve(sent):
    """Every UID-valued element of every stored object, at every depth: no original UID left,
    and each one that named an object of the original study names that object's protected
    version (the keyed mapping is the same whichever object arrived first)."""
    original_uids = {element.uid for ds in sent.originals.values() for element in uid_elements(ds)
                     if not element.well_known}
    stored_files = b"".join(path.read_bytes() for path in sent.stored_paths.values())
    for uid in original_uids:
        assert uid.encode() not in stored_files
    resolved = 0
    for key, stored in sent.stored.items():
        study = key.split("/")[0]
        known_before = identities(ds for k, ds in sent.originals.items() if k.startswith(study + "/"))
        known_after = identities(ds for k, ds in sent.stored.items() if k.startswith(study + "/"))
        before = {element.path: element for element in uid_elements(sent.originals[key])}
        for element in uid_elements(stored):
            assert element.well_known or element.uid.startswith("2.25."), (key, element.path)
            original = before.get(element.path)
            if original is not None and element.is_reference and original.uid in known_before:
                assert element.uid in known_after, (key, element.path)
                resolved += 1
    assert resolved >= 100


def test_highdicom_reads_each_protected_seg_and_its_sources_resolve(sent):
    segs = {key: ds for key, ds in sent.stored.items() if ds.Modality == "SEG"}
    assert len(segs) == 6
    for key, ds in segs.items():
        seg = highdicom.seg.Segmentation.from_dataset(ds)
        study = key.split("/")[0]
        stored_sops = {d.SOPInstanceUID for k, d in sent.stored.items() if k.startswith(study + "/")}
        sources = seg.get_source_image_uids()
        assert sources and all(sop in stored_sops for _, _, sop in sources), key
        assert np.array_equal(ds.pixel_array, sent.originals[key].pixel_array), key  # masks never written in


def comparable(ds: Dataset, pixel_carrier: bool) -> dict:
    """The elements fetch must restore: all (private and bulk data included: the header carrier
    holds them), except group lengths and trailing padding (pydicom drops them) and the stego
    pixels of an image the pixel codec wrote into."""
    return {element.tag: element for element in ds if element.tag.element != 0 and element.tag != 0xFFFCFFFC
            and not (pixel_carrier and element.keyword == "PixelData")}


def test_fetch_restores_every_original_header_exactly(sent):
    assert sorted(sent.fetched) == sorted(ds.SOPInstanceUID for ds in sent.originals.values())
    for key, original in sent.originals.items():
        pixel_carrier = pixel_carrier_obstacle(original) is None  # the pixel path ran
        restored = sent.fetched[original.SOPInstanceUID]
        expected, got = comparable(original, pixel_carrier), comparable(restored, pixel_carrier)
        if original.file_meta.TransferSyntaxUID.is_compressed and read_protection(sent.stored[key]).has_pixels:
            # written in: stored decoded, as RGB (the header carrier alone keeps the received bytes)
            for keyword in ("PixelData", "PhotometricInterpretation", "PlanarConfiguration"):
                expected.pop(pydicom.tag.Tag(keyword), None), got.pop(pydicom.tag.Tag(keyword), None)
        assert sorted(got) == sorted(expected), key
        for tag, element in expected.items():
            assert got[tag] == element, (key, tag)  # sequences compared item by item, every depth


def test_colour_images_are_stored_in_their_colour_model_changed_only_in_the_usable_background(sent):
    keys = [key for key in sent.originals if key.startswith("colour/")] + ["pydicom_us_rgb/US_rgb.dcm"]
    for key in keys:
        original, stored = sent.originals[key], sent.stored[key]
        protection = read_protection(stored)
        if original.file_meta.TransferSyntaxUID.is_compressed and protection.has_pixels:  # decoded as a viewer shows it
            assert original.PhotometricInterpretation == "YBR_FULL_422", key
            assert stored.PhotometricInterpretation == "RGB" and stored.PlanarConfiguration == 0, key
            assert np.array_equal(colour.samples(stored), colour.samples(_decoded(original))), key
            continue
        assert stored.PhotometricInterpretation == original.PhotometricInterpretation, key
        assert stored.get("PlanarConfiguration") == original.get("PlanarConfiguration"), key
        if not protection.has_pixels and original.file_meta.TransferSyntaxUID.is_compressed:
            assert stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID, key
            assert stored.PixelData == original.PixelData, key  # the very bytes, as received
            continue
        if not protection.has_pixels:  # the very samples
            assert np.array_equal(stored.pixel_array, original.pixel_array), key
            continue
        before, after = colour.samples(original), colour.samples(stored)
        changed = (before != after).any(axis=-1)
        usable = usable_in(stored, colour.carrier_pixels(stored), protection)
        assert changed.any() and not (changed & ~usable).any(), key
        assert "PatientName" not in stored or str(stored.PatientName).startswith("SN^"), key


def _decoded(ds: Dataset) -> Dataset:
    decoded = pydicom.dcmread(ds.filename)
    decoded.decompress()
    return decoded


def _errors(path: Path) -> set[str]:
    """dciodvfy's errors, UIDs masked (a message naming a UID names the new one after)."""
    return {re.sub(r"\b[0-9]+(\.[0-9]+){2,}\b", "UID", line) for line in dciodvfy_errors(path)}


def test_dciodvfy_finds_no_error_the_original_did_not_have(sent):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dicom3tools not installed")
    for key, original in study_files().items():
        new = _errors(sent.stored_paths[key]) - _errors(original)
        assert not new, (key, new)


# -- policy refusals: one per reason, over the network and on the command line ----------------

VIDEO_PHOTOGRAPHIC = "1.2.840.10008.5.1.4.1.1.77.1.4.1"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


@pytest.fixture(scope="module")
def refused_inputs(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """One real object per refusal reason, and the reason's words."""
    folder = tmp_path_factory.mktemp("refused")
    video = pydicom.dcmread(image_path("SC_rgb.dcm"))  # a colour frame, labelled as video
    video.SOPClassUID = video.file_meta.MediaStorageSOPClassUID = VIDEO_PHOTOGRAPHIC
    video.save_as(folder / "video.dcm", enforce_file_format=True)
    pdf = pydicom.dcmread(STUDIES / "pyskindose_rdsr" / "RDSR_siemens_axiom.dcm")  # its patient module
    for element in [e for e in pdf if e.tag.group not in (0x0008, 0x0010, 0x0020)]:
        del pdf[element.tag]
    pdf.SOPClassUID = pdf.file_meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    pdf.Modality, pdf.MIMETypeOfEncapsulatedDocument = "DOC", "application/pdf"
    pdf.EncapsulatedDocument = Path(matplotlib.get_data_path(), "images", "hand.pdf").read_bytes()
    pdf.save_as(folder / "document.dcm", enforce_file_format=True)
    burned = pydicom.dcmread(image_path("CT_small.dcm"))
    burned.BurnedInAnnotation = "YES"
    burned.save_as(folder / "burned_in.dcm", enforce_file_format=True)
    return {"video": (folder / "video.dcm", "video: frames may show"),
            "document": (folder / "document.dcm", "Encapsulated PDF Storage: document text"),
            "burned_in": (folder / "burned_in.dcm", "BurnedInAnnotation YES"),
            "header_off": (STUDIES / "pyskindose_rdsr" / "RDSR_siemens_axiom.dcm", "header carrier off")}


def _comment(storescu_debug: str) -> str:
    lines = [line for line in storescu_debug.splitlines() if "ErrorComment" in line]
    return lines[0].split("[", 1)[1].rsplit("]", 1)[0] if lines else ""


@pytest.mark.parametrize("reason", ["video", "document", "burned_in", "header_off"])
def test_each_refusal_reason_over_the_network_and_on_the_command_line(reason, refused_inputs, tmp_path):
    path, words = refused_inputs[reason]
    tables = {"pipeline": {"carriers": ["pixels"]}} if reason == "header_off" else {}
    node = NodeProcess(tmp_path / "node", workers=1, tables=tables).start()
    try:
        result = storescu(node.port, [path], "-R", "-d")
        status = "0x0122" if reason == "header_off" else "0xc000"
        assert f"DIMSE Status                  : {status}" in result.stderr, result.stderr[-2000:]
        assert words in _comment(result.stderr), _comment(result.stderr)
        assert not list((node.data / "inbox").iterdir())
        protect = node.run("protect", str(path), "--out", str(tmp_path / "out"), "--config",
                           str(node.config), "--keys", str(node.data / "keys" / "node.keys"))
    finally:
        node.stop()
    assert protect.returncode == 1
    assert protect.stdout.startswith("FAIL") and words in protect.stdout, protect.stdout
    assert not (tmp_path / "out" / path.name).exists()


@pytest.mark.parametrize("name", ["eCT_Supplemental.dcm"])
def test_enhanced_multiframe_functional_groups_are_deidentified_and_restored(name, pipeline, peer_keys):
    """Enhanced CT/MR: the per-frame and shared functional groups hold UIDs and date-times;
    de-identified like the rest (keyed UIDs, dummy date-times), restored exactly by reveal."""
    original = pydicom.dcmread(image_path(name))
    ds = pydicom.dcmread(image_path(name))
    instance = protect_object(ds, pipeline).instance
    assert instance.protection is not None and "header" in instance.protection.carriers
    groups = [element for element in uid_elements(original) if "FunctionalGroupsSequence" in element.path]
    after = {element.path: element.uid for element in uid_elements(ds)}
    changed = [element for element in groups if not element.well_known]
    for element in changed:
        assert after[element.path] != element.uid and after[element.path].startswith("2.25."), element.path
    frames = original.PerFrameFunctionalGroupsSequence
    dated = [i for i, item in enumerate(frames)
             if "FrameContentSequence" in item and item.FrameContentSequence[0].get("FrameAcquisitionDateTime")]
    assert changed or dated, "the functional groups hold instance UIDs or date-times"
    for index in dated:
        content = ds.PerFrameFunctionalGroupsSequence[index].FrameContentSequence[0]
        assert content.FrameAcquisitionDateTime != frames[index].FrameContentSequence[0].FrameAcquisitionDateTime
    restored = reveal_dataset(ds, peer_keys)
    pixel_path = pixel_carrier_obstacle(original) is None
    assert comparable(restored, pixel_path) == comparable(original, pixel_path)


def reveal_dataset(ds: Dataset, peer_keys) -> Dataset:
    from stegonode.handlers.reveal import reveal

    return reveal(pydicom.dcmread(_saved(ds)), peer_keys).dataset


def _saved(ds: Dataset):
    import io

    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("reason, key", [("video", "allow_video"), ("document", "allow_encapsulated_documents"),
                                         ("burned_in", "allow_burned_in_annotation")])
def test_each_policy_refusal_is_allowed_by_its_key(reason, key, refused_inputs, node_keys, peer_keys):
    """Allowed in node.toml, the object is protected: video and documents with the header
    carrier alone, stored as sent; revealed exactly."""
    config = node_config.defaults()
    config["handlers"]["deidentify"][key] = True
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)
    path, _ = refused_inputs[reason]
    original = pydicom.dcmread(path)
    ds = pydicom.dcmread(path)
    instance = protect_object(ds, pipeline).instance
    assert instance.protection is not None and "header" in instance.protection.carriers
    if reason != "burned_in":
        assert instance.protection.carriers == ["header"]
    assert ds.PatientIdentityRemoved == "YES"
    pixel_path = pixel_carrier_obstacle(original) is None
    assert comparable(reveal_dataset(ds, peer_keys), pixel_path) == comparable(original, pixel_path)


def test_a_modality_the_policy_sets_to_none_is_refused_over_the_network_and_on_the_command_line(tmp_path):
    """handlers.segment.other_modalities = "none": images of the other modalities are refused.
    Over the network the segmenter decides after the answer: the object is quarantined with its
    reason; on the command line protect fails with it. (A colour ultrasound: the pixel carrier
    would write its luminance, the policy says no.)"""
    path, words = image_path("US1_UNCR.dcm"), 'modality US is not pixel-protected (handlers.segment.other_modalities = "none")'
    node = NodeProcess(tmp_path / "node", workers=1, tables={"handlers.segment": {"other_modalities": "none"}}).start()
    try:
        result = storescu(node.port, [path], "-R")
        assert result.returncode == 0 and len(acknowledged(result.stdout + result.stderr)) == 1, result.stderr
        counts = node.wait_idle(1)
        assert counts["quarantined"] == 1 and counts["processed"] == 0, counts
        status = node.run("status", "--config", str(node.config))
        assert words in status.stdout, status.stdout
        assert not list((node.data / "stored").glob("*.dcm"))
        protect = node.run("protect", str(path), "--out", str(tmp_path / "out"), "--config",
                           str(node.config), "--keys", str(node.data / "keys" / "node.keys"))
    finally:
        node.stop()
    assert protect.returncode == 1
    assert protect.stdout.startswith("FAIL") and words in protect.stdout, protect.stdout
    assert not (tmp_path / "out" / path.name).exists()
