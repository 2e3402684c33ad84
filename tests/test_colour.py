"""Colour images and the pixel carrier (stegonode.handlers.colour): the codec writes luminance
(RGB: the reversible colour transform's; YBR: the Y samples) in achromatic pixels only; the
stored object keeps its Photometric Interpretation and Planar Configuration, is lossless, and
reveal restores the header exactly; outside the usable background every sample is the original's.

Real colour images of pydicom-data: US1_UNCR (RGB ultrasound, a black background) in its own
colour model, colour-by-plane, and converted to YBR_FULL and YBR_FULL_422 (pydicom's colour conversion; 4:2:2 by
averaging each pair's chroma), the colour bars of SC_rgb / SC_ybr_full (too little achromatic
background: the header carrier alone), and a palette image (never written in).
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pydicom
import pytest
from pydicom import Dataset
from pydicom.pixels import convert_color_space

from stegonode.dicom.colour import carrier_pixels, chromatic, samples
from stegonode.errors import InputError
from stegonode.handlers.admission import pixel_carrier_obstacle
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.protection import read_protection
from stegonode.handlers.reveal import reveal, usable_in
from stegonode.node import config as node_config

from images import image_path


def _saved(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def _ybr(model: str) -> Dataset:
    """US1_UNCR's pixels in YBR_FULL, or YBR_FULL_422 (chroma of each pair averaged), native."""
    ds = pydicom.dcmread(image_path("US1_UNCR.dcm"))
    ybr = convert_color_space(ds.pixel_array, "RGB", "YBR_FULL")
    if model == "YBR_FULL_422":
        rows, columns = ybr.shape[:2]
        chroma = ybr[..., 1:].reshape(rows, columns // 2, 2, 2).astype(np.uint16).mean(axis=2).round()
        pairs = np.concatenate([ybr[..., 0].reshape(rows, columns // 2, 2), chroma.astype(np.uint8)], axis=-1)
        ds.PixelData = pairs.tobytes()
    else:
        ds.PixelData = ybr.tobytes()
    ds.PhotometricInterpretation = model
    return _saved(ds)


def _planar() -> Dataset:
    """US1_UNCR stored colour-by-plane (Planar Configuration 1)."""
    ds = pydicom.dcmread(image_path("US1_UNCR.dcm"))
    ds.PixelData = np.ascontiguousarray(ds.pixel_array.transpose(2, 0, 1)).tobytes()
    ds.PlanarConfiguration = 1
    return _saved(ds)


def _original(name: str) -> Dataset:
    if name == "PLANAR":
        return _planar()
    return _ybr(name) if name.startswith("YBR") else pydicom.dcmread(image_path(name))


def _pipeline(node_keys, syntax: str = "explicit-vr-little-endian"):
    config = node_config.load(None)
    return build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys, transfer_syntax=syntax)


def _header(ds: Dataset) -> dict:
    return {e.tag: e for e in ds if e.tag.element != 0 and e.tag != 0xFFFCFFFC and e.keyword != "PixelData"}


@pytest.mark.parametrize("name, syntax", [
    ("US1_UNCR.dcm", "jpeg-ls-lossless"), ("US1_UNCR.dcm", "jpeg2000-lossless"), ("US1_UNCR.dcm", "rle-lossless"),
    ("YBR_FULL", "jpeg-ls-lossless"), ("YBR_FULL_422", "jpeg-ls-lossless"), ("PLANAR", "jpeg-ls-lossless"),
])
def test_colour_pixel_carrier_is_exact_outside_the_usable_background(name, syntax, node_keys, peer_keys):
    original = _original(name)
    ds = copy.deepcopy(original)
    instance = protect_object(ds, _pipeline(node_keys, syntax)).instance
    assert instance.protection is not None and instance.protection.carriers == ["pixels", "header"], \
        instance.report
    stored = _saved(ds)
    assert stored.PhotometricInterpretation == original.PhotometricInterpretation
    assert stored.get("PlanarConfiguration") == original.get("PlanarConfiguration")
    planar_or_422 = name == "YBR_FULL_422" or original.get("PlanarConfiguration") == 1
    assert stored.file_meta.TransferSyntaxUID.is_compressed == (not planar_or_422)
    before, after = samples(original), samples(stored)
    changed = (before != after).any(axis=-1)
    usable = usable_in(stored, carrier_pixels(stored), read_protection(stored))
    assert changed.any() and not (changed & ~usable).any()  # outside the usable background: the original
    assert not (changed & chromatic(original)).any()  # only achromatic pixels change ...
    assert np.array_equal(chromatic(original), chromatic(stored))  # ... and they stay achromatic
    if name.startswith("YBR"):
        assert np.array_equal(before[..., 1:], after[..., 1:])  # chroma never touched
        assert stored.PixelData[2::4] == original.PixelData[2::4] if name == "YBR_FULL_422" else True
    revealed = reveal(copy.deepcopy(stored), peer_keys)
    assert revealed.carrier == "pixels" and revealed.complete and revealed.confirmed_by == ("header",)
    assert _header(revealed.dataset) == _header(original)
    assert np.array_equal(samples(revealed.dataset), after)  # pixels as stored, in the same colour model


def test_the_pixel_carrier_alone_reveals_a_colour_image(node_keys, peer_keys):
    original = pydicom.dcmread(image_path("US1_UNCR.dcm"))
    ds = copy.deepcopy(original)
    protect_object(ds, _pipeline(node_keys, "jpeg-ls-lossless"))
    stored = _saved(ds)
    del stored.EncryptedAttributesSequence  # the header carrier stripped
    revealed = reveal(stored, peer_keys)
    assert revealed.carrier == "pixels" and revealed.confirmed_by == ()
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "SOPInstanceUID"):
        assert revealed.dataset[keyword].value == original[keyword].value, keyword


@pytest.mark.parametrize("name, why", [
    ("OBXXXX1A.dcm", "stored values are palette indices"),
    ("SC_rgb.dcm", ""), ("SC_ybr_full_uncompressed.dcm", ""), ("SC_ybr_full_422_uncompressed.dcm", ""),
])
def test_colour_images_without_room_get_the_header_carrier_with_their_pixels_as_received(
        name, why, node_keys, peer_keys):
    """Palette: never written in (the reason says why). Colour bars: written in where the
    background allows, here nowhere (too few achromatic background pixels): pixels as received."""
    original = pydicom.dcmread(image_path(name))
    obstacle = pixel_carrier_obstacle(original)
    assert (why in obstacle) if why else obstacle is None, obstacle
    ds = copy.deepcopy(original)
    instance = protect_object(ds, _pipeline(node_keys, "jpeg-ls-lossless")).instance
    assert instance.protection is not None and instance.protection.carriers == ["header"]
    stored = _saved(ds)
    assert stored.PhotometricInterpretation == original.PhotometricInterpretation
    assert np.array_equal(stored.pixel_array, original.pixel_array)
    revealed = reveal(stored, peer_keys)
    assert _header(revealed.dataset) == _header(original)


def test_colour_is_header_only_when_the_pipeline_encrypts_pixels(node_keys):
    config = node_config.load(None)
    order = [*config["pipeline"]["handlers"], "encrypt"]
    pipeline = build_pipeline(order, config["handlers"], node_keys)
    ds = pydicom.dcmread(image_path("US1_UNCR.dcm"))
    instance = protect_object(ds, pipeline).instance
    assert instance.protection is not None and instance.protection.carriers == ["header"]
    assert "pixel encryption" in instance.report["pixel_obstacle"]


def test_a_truncated_colour_image_is_refused(node_keys):
    """Three samples per pixel count: a third of an RGB image's bytes is a truncated file."""
    ds = pydicom.dcmread(image_path("US1_UNCR.dcm"))
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]
    with pytest.raises(InputError, match="truncated file: pixel data has 307200 of 921600 bytes"):
        protect_object(ds, _pipeline(node_keys))
