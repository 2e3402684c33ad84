"""The lean runtime: inference through ONNX Runtime, torch only for training and export.

* Objects protected by the torch path (tests/fixtures/legacy, written before inference moved to
  ONNX Runtime) still reveal, and deep-hide gives the torch path's stego image bit for bit.
* The shipped ONNX files are small, name the torch weights they were exported from, and are
  what ``stegonode export-onnx`` writes from those weights (same graph and metadata, weights
  equal to float32 rounding, outputs within 1e-4 on fixed inputs: not bytes, which differ by CPU).
* ONNX Runtime and torch give the same masks and deep stego outputs (when torch is installed).
* With torch, torchvision and onnx made unimportable, the node protects, reveals, serves, fetches,
  segments and runs the deep stego commands, the web console imports; the training commands say
  how to install the extra.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pydicom
import pytest

from stegonode.cli import main
from stegonode.codecs import keys as keyfiles
from stegonode.dicom.pixels import read_pixels
from stegonode.handlers.reveal import reveal
from stegonode.models import deepstego, foreground
from stegonode.node import deepstego as node_deep

from images import image_path
from nodes import PATIENT, STEGONODE, NodeProcess, scu, storescu, write_series

LEGACY = Path(__file__).with_name("fixtures") / "legacy"
ONNX_FILES = (foreground.WEIGHTS, deepstego.HIDE, deepstego.REVEAL)
TORCH_WEIGHTS = {foreground.WEIGHTS: "maskrcnn_foreground.pt", deepstego.HIDE: "deepstego.pt",
                 deepstego.REVEAL: "deepstego.pt"}


@pytest.mark.parametrize(("fixture", "original"), [
    ("MR-SIEMENS-DICOM-WithOverlays-dct.dcm.gz", "MR-SIEMENS-DICOM-WithOverlays.dcm"),
    ("693_UNCR-deep.dcm.gz", "693_UNCR.dcm"),
])
def test_objects_protected_by_the_torch_path_still_reveal(fixture, original):
    stego = pydicom.dcmread(io.BytesIO(gzip.decompress((LEGACY / fixture).read_bytes())))
    source = pydicom.dcmread(image_path(original))
    assert "PatientName" not in stego or stego.PatientName != source.PatientName
    revealed = reveal(stego, keyfiles.load_peer_keys(LEGACY / "peer.keys"))
    assert len(revealed.attributes) > 5
    for element in revealed.attributes:
        assert element.value == source[element.tag].value, element.keyword


def test_deep_hide_gives_the_torch_paths_stego_and_reveals_it(tmp_path):
    cover, secret = (node_deep.read_png(LEGACY / f"deep-{name}.png") for name in ("cover", "secret"))
    legacy = node_deep.read_png(LEGACY / "deep-stego.png")
    np.testing.assert_array_equal(np.rint(deepstego.hide(cover, secret)), legacy)
    out = tmp_path / "recovered.png"
    assert main(["deep-reveal", str(LEGACY / "deep-stego.png"), "--out", str(out)]) == 0
    assert deepstego.psnr(deepstego.mse(node_deep.read_png(out), secret)) >= 30.0


def test_shipped_onnx_files_are_small_and_name_their_torch_weights():
    assert sum(path.stat().st_size for path in ONNX_FILES) <= 25 * 2**20
    for path, weights in TORCH_WEIGHTS.items():
        meta = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
        digest = hashlib.sha256(path.with_name(weights).read_bytes()).hexdigest()
        assert meta.custom_metadata_map["weights_sha256"] == digest, f"{path.name}: run stegonode export-onnx"


# -- against torch (the train extra) -----------------------------------------------------------


@pytest.fixture(scope="module")
def torch_installed():
    return pytest.importorskip("torch", reason="the train extra (torch) is not installed")


# Export is compared by what matters, not bytes: torch folds constants with the processor's own
# floating-point kernels, so a file exported on another CPU differs in the last bits of some
# initializers (seen: onnx::Conv_2818). Same graph, same weights to float32 rounding, same outputs.
WEIGHT_RTOL, WEIGHT_ATOL = 1e-5, 1e-7
OUTPUT_ATOL = 1e-4


def _graph_shape(model) -> list[tuple]:
    """Each node's operator, inputs and outputs, in order: the structure of the graph."""
    return [(node.op_type, tuple(node.input), tuple(node.output)) for node in model.graph.node]


def _fixed_inputs(session) -> dict[str, np.ndarray]:
    """Deterministic inputs for ``session``: a real CT slice for image inputs, else seeded noise."""
    rng = np.random.default_rng(7)
    ct = read_pixels(pydicom.dcmread(image_path("693_UNCR.dcm")))[0].astype(np.float32)  # frame 0
    feeds = {}
    for arg in session.get_inputs():
        shape = [dim if isinstance(dim, int) else 64 for dim in arg.shape]
        if arg.name == "image":
            side = shape[-1]
            rows = np.linspace(0, ct.shape[0] - 1, side).astype(int)
            cols = np.linspace(0, ct.shape[1] - 1, side).astype(int)
            tile = ct[np.ix_(rows, cols)]
            feeds[arg.name] = ((tile - tile.min()) / max(np.ptp(tile), 1)).reshape(shape).astype(np.float32)
        else:
            feeds[arg.name] = rng.random(shape, dtype=np.float32)
    return feeds


def test_export_onnx_reproduces_the_shipped_files(torch_installed, tmp_path):
    import onnx
    from onnx import numpy_helper

    assert main(["export-onnx", "--out", str(tmp_path)]) == 0
    for path in ONNX_FILES:
        shipped, exported = onnx.load(str(path)), onnx.load(str(tmp_path / path.name))
        assert _graph_shape(exported) == _graph_shape(shipped), f"{path.name}: graph differs"
        assert ({p.key: p.value for p in exported.metadata_props}
                == {p.key: p.value for p in shipped.metadata_props}), f"{path.name}: metadata differs"
        weights = {init.name: numpy_helper.to_array(init) for init in shipped.graph.initializer}
        again = {init.name: numpy_helper.to_array(init) for init in exported.graph.initializer}
        assert again.keys() == weights.keys(), f"{path.name}: initializers differ"
        for name, value in weights.items():
            assert again[name].dtype == value.dtype and again[name].shape == value.shape, name
            np.testing.assert_allclose(again[name], value, rtol=WEIGHT_RTOL, atol=WEIGHT_ATOL,
                                       err_msg=f"{path.name}: {name}")
        sessions = [onnxruntime.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                    for p in (path, tmp_path / path.name)]
        feeds = _fixed_inputs(sessions[0])
        expected, got = (session.run(None, feeds) for session in sessions)
        for a, b in zip(expected, got, strict=True):
            assert a.shape == b.shape, path.name
            np.testing.assert_allclose(b, a, atol=OUTPUT_ATOL, err_msg=path.name)


def test_numpy_resizing_weights_equal_torchs(torch_installed):
    from torch.nn import functional as F

    for source, target in [(1955, 256), (484, 256), (300, 256), (256, 256), (128, 256), (256, 1841), (256, 100)]:
        identity = torch_installed.eye(source)[None, None]
        for antialias in (True, False):
            expected = F.interpolate(identity, size=(target, source), mode="bilinear", antialias=antialias,
                                     align_corners=False)[0, 0].numpy()
            weights = foreground._resize_matrix(source, target, antialias).toarray()
            np.testing.assert_array_equal(weights, expected, err_msg=f"{source} -> {target}, {antialias}")


def test_onnx_and_torch_give_the_same_masks_on_the_evaluation_images(torch_installed):
    from stegonode.models import maskrcnn
    from stegonode.segmenters.maskrcnn import MaskRCNNSegmenter
    from stegonode.training.segmenter import REAL_EVAL

    onnx, torch = MaskRCNNSegmenter(), MaskRCNNSegmenter(maskrcnn.WEIGHTS)
    assert isinstance(onnx.model, foreground.OnnxNetwork) and isinstance(torch.model, maskrcnn.TorchNetwork)
    assert onnx.version == torch.version
    for name in REAL_EVAL:
        ds = pydicom.dcmread(image_path(f"{name}.dcm"))
        pixels = read_pixels(ds)
        np.testing.assert_array_equal(onnx.foreground(ds, pixels), torch.foreground(ds, pixels), err_msg=name)


def test_onnx_and_torch_deep_networks_agree(torch_installed):
    from stegonode.models import deepnet

    rng = np.random.default_rng(3)
    covers = rng.integers(0, 256, (16, 64, 64)).astype(np.float64)
    secrets = np.where(rng.random((16, 64, 64)) < 0.5, 0.0, 255.0)
    networks = deepnet.TorchNetworks(deepnet.load())
    onnx, torch = (deepstego.hide_tiles(covers, secrets, model) for model in (None, networks))
    np.testing.assert_allclose(onnx, torch, atol=1e-3)
    stego = np.rint(torch)
    np.testing.assert_allclose(deepstego.reveal_tiles(stego), deepstego.reveal_tiles(stego, networks), atol=1e-2)


# -- without torch ---------------------------------------------------------------------------

# Loaded first by every Python process started with PYTHONPATH pointing at its folder, the
# node's worker processes included: the train extra's packages are not found, as if not installed.
BLOCKER = '''
import importlib.machinery

_BLOCKED = {"torch", "torchvision", "onnx"}
_find_spec = importlib.machinery.PathFinder.find_spec


def _without_training_extra(fullname, path=None, target=None):
    if fullname.partition(".")[0] in _BLOCKED:
        return None
    return _find_spec(fullname, path, target)


importlib.machinery.PathFinder.find_spec = _without_training_extra
'''


@pytest.fixture(scope="module")
def without_torch(tmp_path_factory):
    """Subprocesses of the module's tests see no torch, torchvision or onnx."""
    folder = tmp_path_factory.mktemp("without-torch")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))
        probe = subprocess.run([sys.executable, "-c", "import stegonode.cli, stegonode.web.server; import torch"],
                               capture_output=True, text=True, timeout=120)
        assert "No module named 'torch'" in probe.stderr, probe.stderr
        yield


def _stegonode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([STEGONODE, *args], capture_output=True, text=True, timeout=600)


def test_without_torch_protect_reveal_segment_and_deep_stego(without_torch, tmp_path):
    assert _stegonode("keygen", str(tmp_path / "keys")).returncode == 0
    source = image_path("MR-SIEMENS-DICOM-WithOverlays.dcm")
    result = _stegonode("protect", str(source), "--out", str(tmp_path / "protected"),
                        "--keys", str(tmp_path / "keys" / "node.keys"))
    assert result.returncode == 0 and result.stdout.startswith("OK"), result.stdout + result.stderr
    result = _stegonode("reveal", str(tmp_path / "protected" / source.name), "--keys",
                        str(tmp_path / "keys" / "peer.keys"), "--out", str(tmp_path / "revealed"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert pydicom.dcmread(tmp_path / "revealed" / source.name).PatientName == pydicom.dcmread(source).PatientName
    result = _stegonode("segment", str(source), "--out", str(tmp_path / "masks"))
    assert result.returncode == 0 and "foreground" in result.stdout, result.stdout + result.stderr
    stego = tmp_path / "stego.png"
    result = _stegonode("deep-hide", str(LEGACY / "deep-cover.png"), str(LEGACY / "deep-secret.png"), "--out", str(stego))
    assert result.returncode == 0, result.stdout + result.stderr
    np.testing.assert_array_equal(node_deep.read_png(stego), node_deep.read_png(LEGACY / "deep-stego.png"))
    result = _stegonode("deep-reveal", str(stego), "--out", str(tmp_path / "secret.png"))
    assert result.returncode == 0 and "recovered secret" in result.stdout, result.stdout + result.stderr


def test_without_torch_training_commands_say_how_to_install_the_extra(without_torch, tmp_path):
    for command in ("train-segmenter", "train-deepstego", "export-onnx"):
        result = _stegonode(command, "--out", str(tmp_path / "out"))
        assert result.returncode == 2 and "Traceback" not in result.stderr, command
        assert result.stderr.count("\n") == 1 and "needs torch, torchvision, onnx" in result.stderr
        assert 'pip install -c constraints.txt -e ".[train]"' in result.stderr


def test_without_torch_the_node_serves_and_the_peer_fetches(without_torch, tmp_path):
    node = NodeProcess(tmp_path / "node").start()
    try:
        assert scu("echoscu", node.port).returncode == 0
        sent = storescu(node.port, write_series(tmp_path / "series", 2))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        node.wait_idle(2)
        out = tmp_path / "fetched"
        result = node.fetch_all(out)
        assert result.returncode == 0 and "2/2 instances revealed" in result.stdout, result.stdout + result.stderr
        for path in out.rglob("*.dcm"):
            assert pydicom.dcmread(path).PatientID == PATIENT["PatientID"]
        assert node.status()["processed"] == 2
    finally:
        node.stop()
    assert "Traceback" not in (node.directory / "node.log").read_text()
