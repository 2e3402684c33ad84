"""Deep image-in-image steganography (seed 000): the networks in torch, their weights, export to ONNX.

The seed's three parts, kept: a *preparation network* of three convolutional layers for the cover
and another for the secret, their features concatenated, an *embedding network* that turns them
into the stego image, and a separate *extraction network* that recovers the secret from the stego
image alone. What we add, because it pays:

* a skip connection with a lattice: the embedding network does not draw the stego image, it
  picks for every pixel a target phase t in [0, ``period``) (8-bit levels), and the stego pixel
  is the cover pixel moved by at most ``period`` / 2 to the nearest level congruent to t modulo
  ``period`` (by a whole period the other way at the ends of 0..255). The extraction network
  sees the stego pixel and its phase (sine and cosine of 2 pi x / ``period``). This is
  quantization index modulation with a learned code: the cover cannot drown the secret, the
  change is bounded by construction, and networks trained for half an hour on a CPU reach what
  a free-form residual network does not (see models/DEEPSTEGO.md);
* quantization in training: the stego image is clamped to [0, 255] and rounded to integers (a
  straight-through gradient) before extraction, so the secret survives storage as integers;
* space-to-depth (pixel unshuffle by ``down``) before the networks and back after them: the same
  work on fewer, wider positions;
* a "nothing hidden" target: the extraction network also sees clean covers, for which it must
  output a blank (mid-grey) image, so a cover without a hidden image is recognisable.

Training and the export need torch (the ``train`` extra); hiding and revealing run the ONNX
export through ONNX Runtime (:mod:`stegonode.models.deepstego`, tile by tile, in numpy).
Everything here knows nothing of DICOM files.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .deepstego import META_CONFIG, META_WEIGHTS, NetConfig, from_network, to_network
from .geometry import TILE

WEIGHTS = Path(__file__).with_name("deepstego.pt")


def _convs(channels_in: int, width: int, layers: int, channels_out: int) -> nn.Sequential:
    """``layers`` 3x3 convolutions, ReLU between them, none after the last."""
    modules: list[nn.Module] = []
    for i in range(layers):
        last = i == layers - 1
        modules.append(nn.Conv2d(channels_in if i == 0 else width, channels_out if last else width, 3, padding=1))
        if not last:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


class PreparationNetwork(nn.Module):
    """The seed's preprocessing module: three convolutional layers extracting features."""

    def __init__(self, channels: int, features: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(_convs(channels, features, 3, features), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class EmbeddingNetwork(nn.Module):
    """Merged features and the cover -> the lattice phase of every stego pixel (before a sigmoid)."""

    def __init__(self, channels_in: int, features_in: int, width: int, layers: int, channels_out: int) -> None:
        super().__init__()
        self.layers = _convs(features_in + channels_in, width, layers, channels_out)

    def forward(self, cover: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([features, cover], 1))


class ExtractionNetwork(nn.Module):
    """Stego image alone -> secret image."""

    def __init__(self, channels_in: int, width: int, layers: int, channels_out: int) -> None:
        super().__init__()
        self.layers = _convs(channels_in, width, layers, channels_out)

    def forward(self, stego: torch.Tensor) -> torch.Tensor:
        return self.layers(stego)


class DeepStego(nn.Module):
    """Preparation (cover, secret) -> concatenation -> embedding -> stego; extraction -> secret.

    Tensors are (batch, channels, rows, columns) scaled to [-0.5, 0.5] (``x / 255 - 0.5``).
    """

    def __init__(self, config: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.config = config
        self.extra: dict = {}  # what was saved with the weights (training config, timings)
        planes = config.channels * config.down**2
        inputs = 3 * planes  # the image and the sine and cosine of its phase
        self.prepare_cover = PreparationNetwork(inputs, config.prep)
        self.prepare_secret = PreparationNetwork(planes, config.prep)
        self.embedding = EmbeddingNetwork(inputs, 2 * config.prep, config.width, config.embed_layers, planes)
        self.extraction = ExtractionNetwork(inputs, config.width, config.extract_layers, planes)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Space-to-depth of the image and of its phase on the lattice."""
        theta = (x + 0.5) * (255 * 2 * math.pi / self.config.period)
        return F.pixel_unshuffle(torch.cat([x, torch.sin(theta), torch.cos(theta)], 1), self.config.down)

    def hide(self, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        """Stego image, not yet rounded (training rounds it, see :func:`quantize`)."""
        d, p = self.config.down, self.config.period
        c = self._features(cover)
        features = torch.cat([self.prepare_cover(c), self.prepare_secret(F.pixel_unshuffle(secret, d))], 1)
        phase = p * torch.sigmoid(F.pixel_shuffle(self.embedding(c, features), d))
        levels = (cover + 0.5) * 255
        move = phase - levels
        stego = levels + move - p * torch.round(move / p)  # nearest level of that phase
        stego = torch.where(stego < 0, stego + p, stego)
        stego = torch.where(stego > 255, stego - p, stego)
        return stego / 255 - 0.5

    def reveal(self, stego: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.extraction(self._features(stego)), self.config.down)


def quantize(stego: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 255] and round to integers, as storage does; the gradient passes straight."""
    scaled = (stego + 0.5) * 255
    stored = scaled.clamp(0, 255).round()
    return (scaled + (stored - scaled).detach()) / 255 - 0.5


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(n, rows, columns[, channels]) 8-bit-unit values -> network input."""
    return torch.from_numpy(to_network(images))


def from_tensor(x: torch.Tensor) -> np.ndarray:
    """Network output -> (n, rows, columns[, channels]) float 8-bit units, clamped to [0, 255]."""
    return from_network(x.detach().numpy())


class TorchNetworks:
    """:class:`stegonode.models.deepstego.Networks` through torch (training reports, export checks)."""

    def __init__(self, model: DeepStego) -> None:
        self.model, self.config = model.eval(), model.config

    @torch.no_grad()
    def hide(self, cover: np.ndarray, secret: np.ndarray) -> np.ndarray:
        return self.model.hide(torch.from_numpy(cover), torch.from_numpy(secret)).numpy()

    @torch.no_grad()
    def reveal(self, stego: np.ndarray) -> np.ndarray:
        return self.model.reveal(torch.from_numpy(stego)).numpy()


# -- weights ------------------------------------------------------------------------------------


def save(model: DeepStego, path, extra: dict | None = None) -> None:
    """Weights with the network's config and ``extra`` (training config, timings)."""
    torch.save({"config": asdict(model.config), "state": model.state_dict(), "extra": extra or {}}, path)


def load(path: Path | None = None) -> DeepStego:
    """The network saved at ``path`` (the shipped weights by default), in eval mode, on the CPU."""
    document = torch.load(path or WEIGHTS, map_location="cpu", weights_only=True)
    model = DeepStego(NetConfig(**document["config"]))
    model.load_state_dict(document["state"])
    model.extra = document["extra"]
    return model.eval()


class _Hide(nn.Module):
    def __init__(self, model: DeepStego) -> None:
        super().__init__()
        self.model = model

    def forward(self, cover: torch.Tensor, secret: torch.Tensor) -> torch.Tensor:
        return self.model.hide(cover, secret)


class _Reveal(nn.Module):
    def __init__(self, model: DeepStego) -> None:
        super().__init__()
        self.model = model

    def forward(self, stego: torch.Tensor) -> torch.Tensor:
        return self.model.reveal(stego)


def export_onnx(weights: Path, hide_path: Path, reveal_path: Path) -> None:
    """Write the hiding and the extraction network of ``weights`` as two ONNX files (legacy
    exporter, opset 17), any batch and tile size (a multiple of ``down``). Each records the
    network's config and the weights file's SHA-256 (see :mod:`stegonode.models.deepstego`)."""
    import onnx

    model = load(weights)
    tile = torch.zeros(2, model.config.channels, TILE, TILE)
    axes = {0: "tiles", 2: "rows", 3: "columns"}
    for module, inputs, names, path in ((_Hide(model), (tile, tile), ["cover", "secret"], hide_path),
                                        (_Reveal(model), (tile,), ["stego"], reveal_path)):
        with warnings.catch_warnings():  # the legacy exporter's deprecation notice
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), inputs, str(path), dynamo=False, opset_version=17, input_names=names,
                              output_names=["output"], dynamic_axes={name: axes for name in [*names, "output"]})
        graph = onnx.load(str(path))
        metadata = {META_CONFIG: json.dumps(asdict(model.config)),
                    META_WEIGHTS: hashlib.sha256(Path(weights).read_bytes()).hexdigest()}
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(path))
