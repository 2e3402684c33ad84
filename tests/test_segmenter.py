"""The Mask R-CNN segmenter with its shipped weights: accuracy, determinism, reveal, CLI, training."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from scipy import ndimage

from stegonode import cli
from stegonode.dicom.display import CT_THRESHOLD_HU
from stegonode.dicom.pixels import read_pixels
from stegonode.errors import NotProtectedError
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.protection import read_protection, write_protection
from stegonode.handlers.reveal import reveal
from stegonode.models import foreground, maskrcnn, morphology
from stegonode.node import config as node_config
from stegonode.segmenters import classical as classical_module
from stegonode.segmenters import maskrcnn as maskrcnn_module
from stegonode.segmenters.classical import ClassicalSegmenter, large_components
from stegonode.segmenters.maskrcnn import MaskRCNNSegmenter
from stegonode.segmenters.padding import PaddingSegmenter
from stegonode.segmenters.registry import make_segmenter
from stegonode.training.maskrcnn_fit import Schedule, iou, ncc, train
from stegonode.training.phantoms import make_phantom
from stegonode.training.segdata import LABELS, phantom_example, real_example
from stegonode.training.segmenter import HELD_OUT_SEED

from images import image_path

HELD_OUT = [HELD_OUT_SEED + i for i in range(6)]  # two of each modality


@pytest.fixture(scope="module")
def maskrcnn_segmenter() -> MaskRCNNSegmenter:
    return make_segmenter("maskrcnn")


def test_shipped_weights_load_offline_and_are_small():
    assert maskrcnn.WEIGHTS.stat().st_size <= 25 * 2**20
    model, config = maskrcnn.load()
    assert not model.training and config.size > 0


def test_shipped_weights_segment_held_out_phantoms(maskrcnn_segmenter):
    examples = [phantom_example(seed) for seed in HELD_OUT]
    scores = []
    for example in examples:
        predicted = foreground.foreground_masks(maskrcnn_segmenter.model, example.image[None],
                                                edges=example.edges[None])[0]
        scores.append(iou(predicted, example.mask))
    assert np.mean(scores) >= 0.96 and min(scores) >= 0.95, scores


@pytest.mark.parametrize(("name", "least"), [
    ("693_UNCR", 0.97), ("explicit_VR-UN", 0.97),  # head holder, table: the network alone misses them
    ("MR-SIEMENS-DICOM-WithOverlays", 0.95),
    ("MR2_UNCR", 0.90), ("RG1_UNCR", 0.95), ("RG3_UNCR", 0.92),  # dark muscle, lung fields, soft tissue
])
def test_shipped_weights_segment_real_images(name, least, maskrcnn_segmenter):
    example = real_example(LABELS / f"{name}.png", image_path(f"{name}.dcm"))
    predicted = maskrcnn_segmenter.foreground(example.dataset, read_pixels(example.dataset))[0]
    assert iou(predicted, example.mask) >= least


def test_ct_foreground_keeps_all_matter(maskrcnn_segmenter):
    """On CT no object denser than -500 HU (body, table, head holder; specks of noise aside) is
    left to carry data."""
    ds = pydicom.dcmread(image_path("explicit_VR-UN.dcm"))
    pixels = read_pixels(ds)
    foreground = maskrcnn_segmenter.foreground(ds, pixels)[0]
    labels, _ = ndimage.label(pixels[0] * float(ds.RescaleSlope) + float(ds.RescaleIntercept) > CT_THRESHOLD_HU)
    sizes = np.bincount(labels.ravel())
    objects = (sizes >= 64)[labels] & (labels > 0)
    assert objects.sum() > 10_000 and not (objects & ~foreground).any()


@pytest.mark.parametrize("seed", range(6))
def test_fast_morphology_gives_scipys_masks(seed):
    rng = np.random.default_rng(seed)
    mask = ndimage.gaussian_filter(rng.random((131, 217)), 3) > 0.5  # blobs with holes, touching the border
    mask &= rng.random(mask.shape) > 0.01 * seed  # and pinholes
    radius = seed % 4 + 1
    square = np.ones((3, 3), bool)
    assert np.array_equal(morphology.fill_holes(mask), ndimage.binary_fill_holes(mask))
    inside = np.pad(mask, ((seed, 9), (3, seed + 1)))  # a body inside the frame: fill_holes' bounding box
    assert np.array_equal(morphology.fill_holes(inside), ndimage.binary_fill_holes(inside))
    assert np.array_equal(morphology.erode_square(mask, radius), ndimage.binary_erosion(mask, square, iterations=radius))
    assert np.array_equal(morphology.dilate_square(mask, radius), ndimage.binary_dilation(mask, square, iterations=radius))
    assert np.array_equal(morphology.close_cross(mask, radius), ndimage.binary_closing(mask, iterations=radius))
    frames = np.stack([mask, ~mask])  # frames: the last two axes only
    size = (1, 2 * radius + 1, 2 * radius + 1)
    assert np.array_equal(morphology.dilate_square(frames, radius), ndimage.maximum_filter(frames, size=size))
    assert np.array_equal(morphology.erode_square(frames, radius),
                          ndimage.minimum_filter(frames, size=size, mode="constant", cval=False))


@pytest.mark.parametrize("seed", range(6))
def test_filling_before_a_union_that_is_filled_changes_nothing(seed):
    """fill(fill(A) | B) == fill(A | B): what lets the CT path fill the snapped network mask
    once, after the union with the classical mask."""
    rng = np.random.default_rng(seed)
    a = ndimage.gaussian_filter(rng.random((120, 150)), 3) > 0.5
    b = ndimage.gaussian_filter(rng.random((120, 150)), 2) > 0.55
    a &= rng.random(a.shape) > 0.02 * seed  # pinholes
    assert not np.array_equal(morphology.fill_holes(a), a)  # A has holes to fill
    assert np.array_equal(morphology.fill_holes(morphology.fill_holes(a) | b), morphology.fill_holes(a | b))


@pytest.mark.parametrize("name", ["693_UNCR.dcm", "explicit_VR-UN.dcm", "CT_small.dcm"])
def test_ct_masks_equal_the_masks_filled_before_the_union(name, maskrcnn_segmenter):
    """The CT path unites the snapped network mask, unfilled, with the classical mask and fills
    the union: the same mask as filling the network's mask first (real CT slices)."""
    ds = pydicom.dcmread(image_path(name))
    pixels = read_pixels(ds)
    images, edges = maskrcnn_module.network_input(ds, pixels)
    filled_first = foreground.foreground_masks(maskrcnn_segmenter.model, images, edges)
    classical = np.stack([maskrcnn_segmenter.fallback.cleaned(dense) for dense in edges])
    expected = np.stack([morphology.fill_holes(frame) for frame in filled_first | classical])
    assert np.array_equal(maskrcnn_segmenter.segment(ds, pixels).mask, expected)


@pytest.mark.parametrize("seed", range(4))
def test_histogram_gives_numpys_counts_and_edges(seed):
    """Otsu's histogram (the guard's level, the classical threshold) counted on sorted values:
    numpy's counts and edges exactly, for noise, rescaled integers (CT in HU), a few levels, float64,
    and values on, just above and just below every edge."""
    rng = np.random.default_rng(seed)
    edges = np.histogram_bin_edges(np.array([-3.7, 95.1], np.float32), 256, range=(-3.7, 95.1))
    at_edges = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)]).astype(np.float32)
    cases = [
        rng.normal(0, 1, 4000).astype(np.float32),
        (rng.integers(-1024, 3000, 5000) * np.float32(0.5) - np.float32(1000.5)).astype(np.float32),
        rng.integers(0, 7, 999).astype(np.float32),
        rng.normal(-1000, 20, 3000),
        at_edges,
    ]
    for values in cases:
        lo, hi = float(values.min()), float(values.max())
        counts, bin_edges = classical_module.histogram(values, 256, lo, hi)
        expected_counts, expected_edges = np.histogram(values, bins=256, range=(lo, hi))
        assert np.array_equal(counts, expected_counts)
        assert np.array_equal(bin_edges, expected_edges) and bin_edges.dtype == expected_edges.dtype


@pytest.mark.parametrize("radius", [0, 3, 6, 7, 16])
def test_square_morphology_at_the_radii_in_use(radius):
    """Snapping (3), the margin (6), the guard's border reach (16), and radii between powers of two."""
    rng = np.random.default_rng(radius)
    mask = ndimage.gaussian_filter(rng.random((97, 140)), 2) > 0.55
    size = 2 * radius + 1
    assert np.array_equal(morphology.dilate_square(mask, radius), ndimage.maximum_filter(mask, size=size, mode="constant"))
    assert np.array_equal(morphology.erode_square(mask, radius), ndimage.minimum_filter(mask, size=size, mode="constant"))


def _shapes() -> dict[str, np.ndarray]:
    """Masks whose background is one component: inside the frame (the bounding box's ring), a
    frame-filling body with one hole (no ring: the component is a hole), no background at all;
    and a body beside a speck (one component under the size limit)."""
    rows, cols = np.mgrid[:96, :128]
    disc = (rows - 40) ** 2 + (cols - 60) ** 2 < 30 ** 2
    holed = np.ones((96, 128), bool)
    holed[30:50, 40:70] = False
    speck = disc.copy()
    speck[90:92, 120:122] = True
    return {"disc": disc, "frame with a hole": holed, "no background": np.ones((96, 128), bool),
            "disc and speck": speck, "empty": np.zeros((96, 128), bool)}


@pytest.mark.parametrize("name", list(_shapes()))
def test_fill_holes_and_component_removal_on_single_components(name):
    mask = _shapes()[name]
    assert np.array_equal(morphology.fill_holes(mask), ndimage.binary_fill_holes(mask))
    labels, _ = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())
    expected = (sizes >= 64)[labels] & (labels > 0)
    assert np.array_equal(large_components(mask, 64), expected)


def test_inference_is_deterministic_and_batch_independent(maskrcnn_segmenter):
    ds = pydicom.dcmread(image_path("eCT_Supplemental.dcm"))
    pixels = read_pixels(ds)
    first = maskrcnn_segmenter.foreground(ds, pixels)
    assert first.shape == pixels.shape and first.dtype == bool
    assert np.array_equal(first, maskrcnn_segmenter.foreground(ds, pixels))
    one_by_one = np.concatenate([maskrcnn_segmenter.foreground(ds, pixels[i:i + 1]) for i in range(len(pixels))])
    assert np.array_equal(first, one_by_one)


def test_classical_fallback_when_the_model_finds_nothing(monkeypatch, caplog):
    ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
    pixels = read_pixels(ds)
    monkeypatch.setattr(foreground, "foreground_masks",
                        lambda network, images, edges=None, fill=True: np.zeros(images.shape, bool))
    with caplog.at_level(logging.WARNING, logger=maskrcnn_module.__name__):
        mask = MaskRCNNSegmenter().foreground(ds, pixels)
    assert np.array_equal(mask, ClassicalSegmenter().foreground(ds, pixels))
    assert "found no foreground in frame 0" in caplog.text


def test_modality_the_network_was_not_validated_on_gets_the_padding_segmenter(pipeline):
    """The policy, not the network, decides: an NM image goes to the padding segmenter, a CT to
    Mask R-CNN (the default node.toml)."""
    policy = next(handler for handler in pipeline.handlers if handler.name == "segment").policy
    nm = pydicom.dcmread(image_path("JPEG2000_UNC.dcm"), stop_before_pixels=True)
    ct = pydicom.dcmread(image_path("693_UNCR.dcm"), stop_before_pixels=True)
    assert nm.Modality == "NM" and isinstance(policy.for_dataset(nm), PaddingSegmenter)
    assert isinstance(policy.for_dataset(ct), MaskRCNNSegmenter)


@pytest.fixture(scope="module")
def protected_693(node_keys):
    config = node_config.defaults()
    config["handlers"]["segment"]["segmenter"] = "maskrcnn"
    ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
    protect_object(ds, build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys))
    return ds


@pytest.mark.parametrize("name", ["693_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm"])
def test_reveal_with_maskrcnn_at_both_ends_and_stable_mask(name, node_keys, peer_keys, tmp_path):
    config = node_config.defaults()
    config["handlers"]["segment"]["segmenter"] = "maskrcnn"
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)
    original = pydicom.dcmread(image_path(name))
    ds = copy.deepcopy(original)
    cover_mask = protect_object(ds, pipeline).instance.foreground
    ds.save_as(tmp_path / name, enforce_file_format=True)
    stego = pydicom.dcmread(tmp_path / name)
    again = make_segmenter("maskrcnn").segment(stego, read_pixels(stego), read_protection(stego).segmenter_levels)
    assert ncc(cover_mask, again.mask) >= 0.999
    revealed = reveal(stego, peer_keys)
    assert revealed.attributes.PatientName == original.PatientName
    assert revealed.dataset.SOPInstanceUID == original.SOPInstanceUID


def test_protection_block_names_the_weights_and_reveal_warns_on_others(protected_693, peer_keys, caplog):
    """Which weights segmented the cover travels with the object, so a peer running other weights
    is told why a reveal may fail."""
    stego = copy.deepcopy(protected_693)
    protection = read_protection(stego)
    assert protection.segmenter_version == hashlib.sha256(maskrcnn.WEIGHTS.read_bytes()).hexdigest()[:16]
    with caplog.at_level(logging.WARNING, logger="stegonode.handlers.reveal"):
        reveal(stego, peer_keys)
    assert "segmenter version" not in caplog.text
    write_protection(stego, dataclasses.replace(protection, segmenter_version="0123456789abcdef"))
    with caplog.at_level(logging.WARNING, logger="stegonode.handlers.reveal"):
        reveal(stego, peer_keys)  # same weights in fact: the message is still there
    assert "protected with maskrcnn segmenter version 0123456789abcdef" in caplog.text


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "RG1_UNCR.dcm"])
def test_stego_is_thresholded_at_the_covers_classical_levels(name, node_keys, peer_keys, tmp_path):
    """Embedding shifts background tiles off the range floor, which moves a classical level
    computed afresh (on these NM and US images by 1.5 units: NCC 0.992 and 0.989, about 1000 and
    2900 boundary pixels lost). The cover's levels travel in the protection block; at them the
    stego mask is the cover's but for the odd faint background blob the embedding lifts over the
    level (about 80 pixels on the US image with some keys), MONOCHROME1 (RG1) included."""
    config = node_config.defaults()
    config["handlers"]["segment"]["segmenter"] = "classical"
    config["handlers"]["segment"]["other_modalities"] = "classical"  # NM and US, for this test
    ds = pydicom.dcmread(image_path(name))
    cover = protect_object(ds, build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)).instance
    ds.save_as(tmp_path / name, enforce_file_format=True)
    stego = pydicom.dcmread(tmp_path / name)
    levels = read_protection(stego).segmenter_levels
    assert levels == cover.foreground_levels and all(isinstance(level, float) for level in levels)
    again = ClassicalSegmenter().segment(stego, read_pixels(stego), levels)
    assert again.levels == levels and ncc(again.mask, cover.foreground) >= 0.999
    assert reveal(stego, peer_keys).attributes.PatientID == pydicom.dcmread(image_path(name)).PatientID


def test_malformed_segmenter_levels_are_refused(protected_693, peer_keys):
    stego = copy.deepcopy(protected_693)
    write_protection(stego, dataclasses.replace(read_protection(stego), segmenter_levels=["high"]))
    with pytest.raises(NotProtectedError, match="segmenter_levels"):
        reveal(stego, peer_keys)


def test_config_accepts_maskrcnn(tmp_path):
    toml = tmp_path / "node.toml"
    toml.write_text('[handlers.segment]\nsegmenter = "maskrcnn"\n')
    assert node_config.load(toml)["handlers"]["segment"]["segmenter"] == "maskrcnn"


def test_segment_cli_writes_masks_and_overlays(tmp_path, maskrcnn_segmenter):
    single, multi = image_path("693_UNCR.dcm"), image_path("eCT_Supplemental.dcm")
    assert cli.main(["segment", str(single), str(multi), "--out", str(tmp_path), "--segmenter", "maskrcnn"]) == 0
    for path, names in ((single, ["693_UNCR"]), (multi, ["eCT_Supplemental_f0", "eCT_Supplemental_f1"])):
        ds = pydicom.dcmread(path)
        expected = maskrcnn_segmenter.foreground(ds, read_pixels(ds))
        for frame, name in enumerate(names):
            written = np.asarray(Image.open(tmp_path / f"{name}.png"))
            assert written.shape == (ds.Rows, ds.Columns) and set(np.unique(written)) <= {0, 255}
            assert np.array_equal(written == 255, expected[frame])
            assert Image.open(tmp_path / f"{name}-overlay.png").size == (ds.Columns, ds.Rows)


def test_phantoms_are_reproducible_and_masked():
    a, b = make_phantom(7), make_phantom(7)
    assert np.array_equal(a.stored, b.stored) and np.array_equal(a.mask, b.mask)
    assert 0.02 < a.mask.mean() < 0.98


def test_training_resumes_from_its_checkpoint(tmp_path):
    examples = [phantom_example(seed) for seed in range(2)]
    config = maskrcnn.Config(size=128)
    checkpoint = tmp_path / "checkpoint.pt"
    train(config, Schedule(steps=1, batch=1, warmup=1), lambda: examples, checkpoint)
    assert torch.load(checkpoint, weights_only=False)["step"] == 1
    _, timings = train(config, Schedule(steps=2, batch=1, warmup=1), lambda: examples, checkpoint)
    assert timings["steps"] == 2 and torch.load(checkpoint, weights_only=False)["step"] == 2
