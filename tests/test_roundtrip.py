"""Protect then reveal real images of every common kind (pydicom-data, pydicom test files)."""

from __future__ import annotations

import copy
import re

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID_dictionary, generate_uid
from scipy import ndimage

from stegonode.dicom.pixels import read_pixels
from stegonode.dicom.profile import SAFE_PRIVATE
from stegonode.errors import PayloadBindingError, PayloadIntegrityError
from stegonode.handlers.collect import described
from stegonode.handlers.deidentify import DUMMY
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.node import config as node_config

from images import OTHER_MODALITIES, REQUIRED, ROUND_TRIP, SMALL, image_path

MARGIN = node_config.DEFAULTS["handlers"]["segment"]["margin"]
# Carried only to restore the header (protect writes its own Derivation Description, and Clean
# Descriptors may keep the same words elsewhere, e.g. in Image Comments).
NOT_IDENTIFYING = {"SpecificCharacterSet", "ImageType", "DerivationDescription"}


def test_discovery_covers_the_named_round_trip_set():
    found = set(ROUND_TRIP) | set(OTHER_MODALITIES)
    assert set(REQUIRED) <= found, sorted(set(REQUIRED) - found)


def _leaf_strings(value) -> list[str]:
    """Strings of a described top-level value (PN parts split); in sequences, instance UIDs."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [s for item in value for s in _instance_uids(item)]
    if isinstance(value, list):
        return [s for v in value for s in _leaf_strings(v)]
    text = str(value)
    parts = [text, *text.replace("=", "^").split("^")]
    return [p for p in parts if len(p.strip()) >= 4 and set(p) - set("0.-: ")]  # zeros say nothing


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_reveal_returns_the_exact_original_attributes(name, protect_image, peer_keys):
    protected = protect_image(name)
    revealed = reveal(protected.read(), peer_keys)
    assert (revealed.carrier, revealed.confirmed_by) == ("pixels", ("header",))  # read from the pixels
    assert len(revealed.attributes) > 3
    for element in revealed.attributes:
        original = protected.original[element.tag]
        assert element.VR == original.VR, element.keyword
        assert element.value == original.value, element.keyword
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if protected.original.get(keyword):
            assert keyword in revealed.attributes, keyword


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_reidentified_file_restores_the_header(name, protect_image, peer_keys, tmp_path):
    protected = protect_image(name)
    revealed = reveal(protected.read(), peer_keys)
    revealed.dataset.save_as(tmp_path / name, enforce_file_format=True)
    restored = pydicom.dcmread(tmp_path / name)
    for element in revealed.attributes:
        if element.keyword != "SpecificCharacterSet":
            assert restored[element.tag].value == protected.original[element.tag].value, element.keyword
    assert restored.file_meta.MediaStorageSOPInstanceUID == protected.original.SOPInstanceUID
    assert "PatientIdentityRemoved" not in restored or protected.original.get("PatientIdentityRemoved")
    np.testing.assert_array_equal(read_pixels(restored), read_pixels(protected.read()))


def _instance_uids(item: dict) -> list[str]:
    found = []
    for value in item.values():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            found += [s for sub in value for s in _instance_uids(sub)]
        elif isinstance(value, str) and value.count(".") >= 2 and value not in UID_dictionary:
            found.append(value)
    return found


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_no_identifying_value_in_protected_bytes(name, protect_image, peer_keys):
    protected = protect_image(name)
    stego = protected.read()
    attributes = described(reveal(stego, peer_keys).attributes)
    # Values this node writes (its random-digit 2.25 UIDs, the hex key and weights fingerprints
    # in its private block, dummy dates like 19000101) may contain a short numeric value by
    # chance, which reveals nothing: cut them out first.
    data = re.sub(rb"2\.25\.\d+", b"", protected.path.read_bytes())
    # Kept dates are shifted by a random per-key offset: a short numeric value (an accession
    # "0010") can turn up inside one (200010..) by chance. Dates identify no one once shifted.
    data = re.sub(rb"(?:19|20)\d{6}", b"", data)
    data = re.sub(rb'(key_id|segmenter_version)": ?"[0-9a-f]+"', b"", data)
    for dummy in {str(v) for v in DUMMY.values() if len(str(v)) >= 4}:
        data = data.replace(dummy.encode(), b"")
    charset = stego.get("SpecificCharacterSet", "ISO_IR 6")
    encodings = {"utf-8", pydicom.charset.python_encoding.get(charset if isinstance(charset, str) else charset[0], "ascii")}
    for keyword, value in attributes.items():
        if keyword in NOT_IDENTIFYING:
            continue
        for text in _leaf_strings(value):
            for encoding in encodings:
                assert text.encode(encoding, "ignore") not in data, f"{keyword} value found in {name}"
    assert stego.PatientIdentityRemoved == "YES"
    assert stego.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert not [e for e in stego if e.tag.is_private and e.tag.group != 0x0011 and not _safe_private(stego, e.tag)]


def _safe_private(ds: pydicom.Dataset, tag) -> bool:
    """A private creator or element of PS3.15 Table E.3.10-1 (kept by Retain Safe Private)."""
    if tag.element < 0x0100:
        return str(ds[tag].value) in {creator for creator, _, _ in SAFE_PRIVATE}
    creator = str(ds[(tag.group, tag.element >> 8)].value)
    return (creator, tag.group, tag.element & 0xFF) in SAFE_PRIVATE


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_foreground_pixels_are_bit_identical(name, protect_image):
    protected = protect_image(name)
    stego = read_pixels(protected.read())
    margin = ndimage.maximum_filter(protected.cover_foreground, size=(1, 2 * MARGIN + 1, 2 * MARGIN + 1))
    assert margin.any()
    np.testing.assert_array_equal(stego[margin], protected.cover_pixels[margin])
    changed = stego != protected.cover_pixels
    assert changed.any(), "nothing was embedded"
    assert not (changed & ~protected.usable).any(), "a pixel outside the usable region changed"
    lo, hi = (0, (1 << protected.original.BitsStored) - 1)
    if protected.original.PixelRepresentation:
        lo, hi = -(1 << (protected.original.BitsStored - 1)), (1 << (protected.original.BitsStored - 1)) - 1
    assert stego.min() >= lo and stego.max() <= hi


@pytest.mark.parametrize("name", SMALL)
def test_small_images_round_trip_from_some_carrier(name, pipeline, peer_keys):
    """Never refused for capacity alone: what the pixels cannot carry, the header carrier does."""
    ds = pydicom.dcmread(image_path(name))
    original = copy.deepcopy(ds)
    instance = protect_object(ds, pipeline).instance
    assert "header" in instance.report["carriers"]
    revealed = reveal(ds, peer_keys)
    assert revealed.complete and revealed.attributes.PatientID == original.PatientID


def test_psnr_on_the_ct_with_the_full_identifying_set(protect_image):
    protected = protect_image("693_UNCR.dcm")
    cover = protected.cover_pixels.astype(np.float64)
    stego = read_pixels(protected.read()).astype(np.float64)
    mse = np.mean((stego - cover) ** 2)
    peak = (1 << protected.original.BitsStored) - 1
    psnr = 10 * np.log10(peak**2 / mse)
    assert psnr >= 80.0
    assert protected.report["psnr_db"] == pytest.approx(psnr)
    assert protected.report["psnr_65535_db"] == pytest.approx(10 * np.log10(65535**2 / mse))


@pytest.mark.parametrize("operation", [ndimage.binary_dilation, ndimage.binary_erosion])
@pytest.mark.parametrize("name", ["693_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "RG3_UNCR.dcm"])
def test_reveal_survives_a_mask_two_pixels_off(name, operation, protect_image, peer_keys):
    protected = protect_image(name)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    foreground = operation(protected.cover_foreground, structure=structure, iterations=2)
    assert (foreground != protected.cover_foreground).sum() > 100
    revealed = reveal(protected.read(), peer_keys, foreground=foreground)
    assert revealed.carrier == "pixels" and revealed.attributes.PatientID == protected.original.PatientID


def test_non_ascii_names_round_trip(pipeline, peer_keys, tmp_path):
    ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Müller^Zoë=山田^太郎"
    ds.InstitutionName = "Hôpital Saint-Éloi"
    protect_object(ds, pipeline)
    ds.save_as(tmp_path / "x.dcm", enforce_file_format=True)
    attributes = reveal(pydicom.dcmread(tmp_path / "x.dcm"), peer_keys).attributes
    assert str(attributes.PatientName) == "Müller^Zoë=山田^太郎"
    assert attributes.InstitutionName == "Hôpital Saint-Éloi"
    assert "Müller".encode() not in (tmp_path / "x.dcm").read_bytes()


def test_same_patient_and_study_map_to_the_same_pseudonyms(pipeline):
    first = pydicom.dcmread(image_path("693_UNCR.dcm"))
    second = pydicom.dcmread(image_path("693_J2KR.dcm"))
    assert first.PatientID == second.PatientID and first.StudyInstanceUID == second.StudyInstanceUID
    protect_object(first, pipeline)
    protect_object(second, pipeline)
    assert first.PatientID == second.PatientID != pydicom.dcmread(image_path("693_UNCR.dcm")).PatientID
    assert first.PatientName == second.PatientName
    assert first.StudyInstanceUID == second.StudyInstanceUID
    assert first.StudyInstanceUID.startswith("2.25.")


# Study and Series Instance UIDs are Type 1, yet real senders and secondary-capture tools leave
# them out (pydicom-data's SC_rgb_jls_lossy_sample.dcm has neither).
MISSING = {"study": ("StudyInstanceUID",), "series": ("SeriesInstanceUID",),
           "both": ("StudyInstanceUID", "SeriesInstanceUID")}


@pytest.fixture(scope="module")
def pipelines(node_keys):
    config = node_config.load(None)
    return lambda carriers: build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys,
                                           carriers=carriers)


def _without(name: str, keywords: tuple[str, ...]) -> pydicom.Dataset:
    ds = pydicom.dcmread(image_path(name))
    for keyword in keywords:
        del ds[keyword]
    return ds


@pytest.mark.parametrize("carriers", [("header",), ("pixels",), ("pixels", "header")])
@pytest.mark.parametrize("missing", list(MISSING))
def test_objects_without_study_or_series_uid_round_trip_exactly(missing, carriers, pipelines, peer_keys, tmp_path):
    """The stego object gets generated UIDs (Type 1; the seal is bound to them); reveal gives back
    the original header, without them."""
    original = _without("693_UNCR.dcm", MISSING[missing])
    ds = copy.deepcopy(original)
    report = protect_object(ds, pipelines(carriers)).instance.report
    assert report["carriers"] == "+".join(carriers)
    ds.save_as(tmp_path / "stego.dcm", enforce_file_format=True)
    stego = pydicom.dcmread(tmp_path / "stego.dcm")
    revealed = reveal(stego, peer_keys)
    assert (revealed.carrier, revealed.complete) == (carriers[0], True)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        assert stego.get(keyword, "").startswith("2.25.") and stego[keyword].value != original.get(keyword)
    revealed.dataset.save_as(tmp_path / "revealed.dcm", enforce_file_format=True)
    restored = pydicom.dcmread(tmp_path / "revealed.dcm")
    for keyword in MISSING[missing]:
        assert keyword not in restored, keyword  # reveal invents nothing the original lacked
    expected = _header(original)
    if carriers == ("pixels",):  # the pixel carrier has no room for private and bulk data
        expected = {tag: value for tag, value in expected.items() if not tag.is_private}
    assert _header(restored) == expected


def _header(ds: pydicom.Dataset) -> dict:
    """Tag -> value, less Pixel Data and the retired group lengths (writers drop them)."""
    return {element.tag: element.value for element in ds if element.tag != 0x7FE00010 and element.tag.element}


@pytest.mark.parametrize("missing", [None, *MISSING])
def test_encrypted_attributes_copied_onto_another_instance_fail(missing, pipelines, peer_keys):
    """The header carrier (with the protection block naming its MAC) of one object on an object of
    another series: authentication fails. Without Study and Series UIDs the other object differs
    only in its SOP Instance UID, as two such objects do, and still it fails."""
    header_only = pipelines(("header",))
    first, second = (_without("693_UNCR.dcm", MISSING.get(missing or "", ())) for _ in range(2))
    second.SOPInstanceUID = generate_uid()
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        if keyword in second:
            second[keyword].value = generate_uid()
    protect_object(first, header_only)
    protect_object(second, header_only)
    block = second.private_block(0x0011, "STEGONODE 1")
    block[0x01].value = first.private_block(0x0011, "STEGONODE 1")[0x01].value
    second.EncryptedAttributesSequence = first.EncryptedAttributesSequence
    with pytest.raises(PayloadIntegrityError, match="failed authentication"):
        reveal(second, peer_keys)


@pytest.mark.parametrize("missing", list(MISSING))
def test_pixel_payload_of_an_object_without_uids_is_bound_to_it(missing, pipelines, peer_keys):
    """The stego pixels of one such object under another's header identity do not open."""
    pixels_only = pipelines(("pixels",))
    moved, other = (_without("693_UNCR.dcm", MISSING[missing]) for _ in range(2))
    other.SOPInstanceUID = generate_uid()
    protect_object(moved, pixels_only)
    protect_object(other, pixels_only)
    assert moved.SOPInstanceUID != other.SOPInstanceUID
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        moved[keyword].value = other[keyword].value
    with pytest.raises(PayloadBindingError, match="bound to another instance"):
        reveal(moved, peer_keys)
