"""Deep image-in-image steganography (seed 000) with the shipped weights: networks, CLI, codec."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from scipy import ndimage

from stegonode.cli import main
from stegonode.codecs.deep import DeepCodec, DeepParams
from stegonode.dicom.pixels import PixelFormat, read_pixels
from stegonode.errors import CapacityError, MessageNotFoundError
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.models import deepnet, deepstego
from stegonode.models.geometry import BLANK_LIMIT
from stegonode.node import config as node_config
from stegonode.node import deepstego as node_deep
from stegonode.training import deepstego as deeptrain
from stegonode.training.corpus import Patches
from stegonode.training.deepstego_fit import TrainConfig, evaluate, train

from images import ROUND_TRIP, image_path

STEGONODE = str(Path(sys.executable).with_name("stegonode"))
MARGIN = node_config.DEFAULTS["handlers"]["segment"]["margin"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([STEGONODE, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def sources():
    torch.set_num_threads(1)
    return deeptrain.sources()


@pytest.fixture(scope="module")
def heldout_metrics(sources) -> dict:
    """The seed's table on the first 128 pairs of the held-out set."""
    held = deeptrain.heldout(sources)
    sample = Patches(held.covers[:128], held.secrets[:128], held.cover_kinds[:128], held.secret_kinds[:128])
    return evaluate(deepnet.load(), sample)


def test_shipped_weights_are_small_and_load_offline():
    assert deepnet.WEIGHTS.stat().st_size <= 10 * 2**20
    model = deepnet.load()
    assert model.extra["train"]["seed"] == 0 and not model.training


def test_heldout_psnr_meets_the_targets(heldout_metrics):
    assert heldout_metrics["cover_psnr_db"] >= 35.0, heldout_metrics["cover_psnr_db"]
    assert heldout_metrics["secret_psnr_db"] >= 33.0, heldout_metrics["secret_psnr_db"]


def test_clean_covers_are_flagged_and_hidden_images_are_not(heldout_metrics):
    clean = np.array(heldout_metrics["blankness_clean"])
    real = np.array(heldout_metrics["blankness_recovered"])
    assert (clean < BLANK_LIMIT).mean() >= 0.95
    assert (real >= BLANK_LIMIT).mean() >= 0.95


def test_whole_image_tile_by_tile_with_partial_tiles(sources):
    cover = dict(sources.natural_heldout)["chelsea.png"][:150, :201]  # 3 x 4 tiles, partial ones
    secret = deeptrain.chest_secret(sources, cover.shape)
    stego = np.rint(deepstego.hide(cover, secret))
    assert stego.shape == cover.shape and stego.min() >= 0 and stego.max() <= 255
    assert deepstego.psnr(deepstego.mse(stego, cover)) >= 33.0
    assert deepstego.psnr(deepstego.mse(deepstego.reveal(stego), secret)) >= 30.0


def test_rgb_images_go_plane_by_plane(sources):
    gray = dict(sources.natural_heldout)["coffee.png"][:64, :128]
    chest = deeptrain.chest_secret(sources, gray.shape)
    cover = np.stack([gray, 255 - gray, gray[::-1]], axis=-1)  # three different planes
    secret = np.stack([chest, 255 - chest, chest[:, ::-1]], axis=-1)
    recovered = deepstego.reveal(np.rint(deepstego.hide(cover, secret)))
    assert recovered.shape == secret.shape
    for plane in range(3):
        assert deepstego.psnr(deepstego.mse(recovered[..., plane], secret[..., plane])) >= 30.0


@pytest.fixture(scope="module")
def png_pair(sources, tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("png")
    cover = dict(sources.natural_heldout)["camera.png"][:192, :256]
    secret = deeptrain.chest_secret(sources, cover.shape)
    node_deep.write_png(cover, folder / "cover.png")
    node_deep.write_png(secret, folder / "secret.png")
    return folder / "cover.png", folder / "secret.png", np.rint(secret)


def test_cli_png_round_trip_through_the_extraction_network_alone(png_pair, tmp_path):
    """In fresh processes: the shipped weights load from the installed package, offline."""
    cover, secret_path, secret = png_pair
    hidden = run("deep-hide", str(cover), str(secret_path), "--out", str(tmp_path / "stego.png"))
    assert hidden.returncode == 0 and "PSNR" in hidden.stdout, hidden.stderr
    (tmp_path / "copy.png").write_bytes((tmp_path / "stego.png").read_bytes())  # only the stego travels
    revealed = run("deep-reveal", str(tmp_path / "copy.png"), "--out", str(tmp_path / "secret.png"))
    assert revealed.returncode == 0, revealed.stdout + revealed.stderr
    recovered = node_deep.read_png(tmp_path / "secret.png")
    assert deepstego.psnr(deepstego.mse(recovered, secret)) >= 30.0
    stego = node_deep.read_png(tmp_path / "stego.png")
    assert deepstego.psnr(deepstego.mse(stego, node_deep.read_png(cover))) >= 33.0


def test_cli_flags_a_cover_without_a_hidden_image(png_pair, tmp_path, capsys):
    cover, _, _ = png_pair
    assert main(["deep-reveal", str(cover), "--out", str(tmp_path / "nothing.png")]) == 1
    assert "no hidden image found" in capsys.readouterr().out
    assert (tmp_path / "nothing.png").exists()


def test_cli_size_mismatch_is_a_clear_error(png_pair, tmp_path, capsys):
    cover, _, secret = png_pair
    node_deep.write_png(secret[:64, :100], tmp_path / "small.png")
    assert main(["deep-hide", str(cover), str(tmp_path / "small.png"), "--out", str(tmp_path / "x.png")]) == 2
    assert "cover is 256 x 192 pixels but secret is 100 x 64 pixels" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_cli_dicom_cover_keeps_its_bit_depth(sources, tmp_path, capsys):
    original = pydicom.dcmread(image_path("693_UNCR.dcm"))  # signed, BitsStored 14
    secret = deeptrain.chest_secret(sources, (int(original.Rows), int(original.Columns)))
    node_deep.write_png(secret, tmp_path / "secret.png")
    stego_path = tmp_path / "stego.dcm"
    cover = str(image_path("693_UNCR.dcm"))
    assert main(["deep-hide", cover, str(tmp_path / "secret.png"), "--out", str(stego_path)]) == 0
    assert "BitsStored 14 kept" in capsys.readouterr().out
    stego = pydicom.dcmread(stego_path)
    for keyword in ("BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "Rows", "Columns"):
        assert stego[keyword].value == original[keyword].value, keyword
    assert stego.SOPInstanceUID != original.SOPInstanceUID
    lo, hi = PixelFormat.of(stego).value_range
    pixels = read_pixels(stego)
    assert pixels.min() >= lo and pixels.max() <= hi
    assert main(["deep-reveal", str(stego_path), "--out", str(tmp_path / "recovered.png")]) == 0
    assert deepstego.psnr(deepstego.mse(node_deep.read_png(tmp_path / "recovered.png"), np.rint(secret))) >= 30.0


# -- the deep codec in the pipeline ------------------------------------------------------------


@pytest.fixture(scope="module")
def deep_pipeline(node_keys):
    config = node_config.defaults()
    config["handlers"]["embed"]["codec"] = "deep"
    # The pixel carrier alone, so that a background too small is said, not carried by the header.
    return build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys, ["pixels"])


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_deep_codec_reveals_exact_patient_data_or_says_too_small(name, deep_pipeline, peer_keys, tmp_path):
    original = pydicom.dcmread(image_path(name))
    ds = copy.deepcopy(original)
    cover = read_pixels(ds).copy()
    try:
        usable = protect_object(ds, deep_pipeline).instance.usable
    except CapacityError as exc:
        assert exc.offered_bits < exc.needed_bits
        return
    ds.save_as(tmp_path / name, enforce_file_format=True)
    stego_ds = pydicom.dcmread(tmp_path / name)
    revealed = reveal(stego_ds, peer_keys)
    for element in revealed.attributes:
        assert element.value == original[element.tag].value, element.keyword
    stego = read_pixels(stego_ds)
    kept = ~usable
    np.testing.assert_array_equal(stego[kept], cover[kept])
    assert (stego != cover).any()
    lo, hi = PixelFormat.of(original).value_range
    assert stego.min() >= lo and stego.max() <= hi


@pytest.mark.parametrize("name, operation", [("MR2_UNCR.dcm", ndimage.binary_dilation),
                                             ("RG3_UNCR.dcm", ndimage.binary_erosion)])
def test_deep_codec_survives_a_mask_two_pixels_off(name, operation, deep_pipeline, peer_keys):
    original = pydicom.dcmread(image_path(name))
    ds = copy.deepcopy(original)
    foreground = protect_object(ds, deep_pipeline).instance.foreground
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    moved = operation(foreground, structure=structure, iterations=2)
    assert (moved != foreground).sum() > 100
    assert reveal(ds, peer_keys, foreground=moved).attributes.PatientID == original.PatientID


def _synthetic(shape: tuple[int, ...], dtype, value_range: tuple[int, int], level: int):
    """A background of noise (+-6) at ``level`` around a mid-range square (the foreground)."""
    rng = np.random.default_rng(5)
    image = (level + rng.integers(-6, 7, shape)).astype(dtype)
    usable = np.ones(shape, dtype=bool)
    rows, columns = shape[1:]
    image[:, rows // 3 : 2 * rows // 3, columns // 3 : 2 * columns // 3] = sum(value_range) // 2
    usable[:, rows // 3 - 6 : 2 * rows // 3 + 6, columns // 3 - 6 : 2 * columns // 3 + 6] = False
    return image, usable


@pytest.mark.parametrize(
    "shape, dtype, value_range, level",
    [
        ((1, 384, 384), np.uint16, (0, 4095), 6),  # background at the floor of the range
        ((1, 384, 320), np.int16, (-2048, 2047), 2040),  # near the ceiling, signed
        ((2, 256, 256), np.uint8, (0, 255), 40),  # 8-bit, multi-frame
    ],
)
def test_deep_codec_round_trip_on_synthetic_images(shape, dtype, value_range, level):
    image, usable = _synthetic(shape, dtype, value_range, level)
    message = np.random.default_rng(2).integers(0, 2, 57 * 57).astype(np.uint8)
    codec = DeepCodec().fit(usable, message.size, b"k" * 32)
    stego = codec.embed(image, usable, message, b"k" * 32, value_range)
    np.testing.assert_array_equal(stego[~usable], image[~usable])
    assert stego.min() >= value_range[0] and stego.max() <= value_range[1]
    np.testing.assert_array_equal(codec.extract(stego, usable, b"k" * 32, value_range), message)
    with pytest.raises(MessageNotFoundError, match="extraction is blank"):
        codec.extract(image, usable, b"k" * 32, value_range)


def test_deep_codec_capacity_error_and_parameters():
    image, usable = _synthetic((1, 128, 128), np.uint16, (0, 4095), 100)
    codec = DeepCodec()
    assert codec.capacity(usable) == 0  # no 64 x 64 tile lies wholly outside the foreground
    with pytest.raises(CapacityError, match=r"offers 0 bits, 441 are needed"):
        codec.fit(usable, 441, b"k" * 32).embed(image, usable, np.ones(441, np.uint8), b"k" * 32, (0, 4095))
    assert DeepCodec(DeepParams.from_dict(codec.fit(usable, 441, b"k" * 32).params())).settings.bits == 441


def test_deep_codec_does_not_load_torch():
    code = "import sys, stegonode.handlers.pipeline; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


# -- training ----------------------------------------------------------------------------------


def _tiny_run(tmp_path: Path, stop_at: int | None) -> dict:
    rng = np.random.default_rng(0)
    corpus = Patches(rng.integers(0, 256, (32, 64, 64), dtype=np.uint8),
                     rng.integers(0, 256, (32, 64, 64), dtype=np.uint8), None, None)
    config = TrainConfig.from_dict({"steps": 6, "batch": 4, "warmup": 2,
                                    "net": {"prep": 4, "width": 8, "embed_layers": 2, "extract_layers": 2}})
    tmp_path.mkdir()
    checkpoint = tmp_path / "tiny.ckpt"
    if stop_at:
        train(config, corpus, checkpoint, progress=False, stop_at=stop_at)
    model, _ = train(config, corpus, checkpoint, progress=False)
    return model.state_dict()


def test_training_is_seeded_and_resumes_to_the_same_weights(tmp_path):
    straight = _tiny_run(tmp_path / "a", None)
    resumed = _tiny_run(tmp_path / "b", stop_at=3)
    again = _tiny_run(tmp_path / "c", None)
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
        assert torch.equal(value, again[key]), key
