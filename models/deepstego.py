"""Deep image-in-image steganography (seed 000): networks, weights, tile-by-tile hide and reveal.

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

Images are float arrays in 8-bit units (0..255). The networks are fully convolutional; hide and
reveal cut images into ``TILE`` x ``TILE`` tiles (the training size) and run each tile on its
own, so a tile's stego depends on that tile alone. Colour images go plane by plane through the
grayscale network. Everything here knows nothing of DICOM files.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from importlib import resources

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .geometry import BLANK, TILE

WEIGHTS = "deepstego.pt"  # shipped beside this module


@dataclass(frozen=True)
class NetConfig:
    """Shape of the networks (saved with the weights).

    channels: planes per image (1 grayscale, 3 RGB).
    down: pixel-unshuffle factor; tiles must be multiples of it.
    prep: features of each preparation network.
    width: features of the embedding and extraction networks.
    embed_layers / extract_layers: convolutional layers of those networks.
    period: lattice period in 8-bit levels: the stego image differs from the cover by at most
        period / 2 (except at the ends of 0..255); larger carries more, and costs PSNR.
    """

    channels: int = 1
    down: int = 2
    prep: int = 32
    width: int = 64
    embed_layers: int = 4
    extract_layers: int = 5
    period: int = 12


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
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return x / 255 - 0.5


def from_tensor(x: torch.Tensor) -> np.ndarray:
    """Network output -> (n, rows, columns[, channels]) float 8-bit units, clamped to [0, 255]."""
    y = ((x.detach() + 0.5) * 255).clamp(0, 255)
    y = y[:, 0] if y.shape[1] == 1 else y.permute(0, 2, 3, 1)
    return y.numpy().astype(np.float64)


# -- weights ------------------------------------------------------------------------------------


def save(model: DeepStego, path, extra: dict | None = None) -> None:
    """Weights with the network's config and ``extra`` (training config, timings)."""
    torch.save({"config": asdict(model.config), "state": model.state_dict(), "extra": extra or {}}, path)


def load(path=None) -> DeepStego:
    """The network saved at ``path`` (the shipped weights by default), in eval mode, on the CPU."""
    if path is None:
        data = resources.files(__package__).joinpath(WEIGHTS).read_bytes()
        document = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    else:
        document = torch.load(path, map_location="cpu", weights_only=True)
    model = DeepStego(NetConfig(**document["config"]))
    model.load_state_dict(document["state"])
    model.extra = document["extra"]
    return model.eval()


_SHIPPED: DeepStego | None = None


def shipped() -> DeepStego:
    """The shipped network, loaded once per process."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = load()
    return _SHIPPED


# -- tiles and whole images --------------------------------------------------------------------

_BATCH = 256


def _batched(step, *images: np.ndarray) -> np.ndarray:
    """``step`` (tensors -> tensor) over aligned stacks of 8-bit-unit images, in batches."""
    with torch.no_grad():
        return np.concatenate([
            from_tensor(step(*(to_tensor(image[i : i + _BATCH]) for image in images)))
            for i in range(0, len(images[0]), _BATCH)
        ])


def hide_tiles(covers: np.ndarray, secrets: np.ndarray, model: DeepStego | None = None) -> np.ndarray:
    """Stego tiles (float 8-bit units, in [0, 255], not rounded) for (n, rows, columns) stacks."""
    return _batched((model or shipped()).hide, covers, secrets)


def reveal_tiles(stegos: np.ndarray, model: DeepStego | None = None) -> np.ndarray:
    """Recovered secrets (float 8-bit units) for a (n, rows, columns) stack of stego tiles."""
    return _batched((model or shipped()).reveal, stegos)


def _tiles(shape: tuple[int, ...]) -> list[tuple[slice, slice]]:
    """TILE x TILE tiles from the top-left; the last row and column of tiles are what remains."""
    rows, columns = shape
    return [
        (slice(r, min(r + TILE, rows)), slice(c, min(c + TILE, columns)))
        for r in range(0, rows, TILE)
        for c in range(0, columns, TILE)
    ]


def _run_tiles(step, down: int, *planes: np.ndarray) -> np.ndarray:
    """Apply ``step`` (tensors -> tensor) tile by tile to aligned same-sized 2-D planes.

    Full tiles go in batches; a partial edge tile is padded by edge replication to a multiple
    of ``down`` and cropped after.
    """
    out = np.empty(planes[0].shape, dtype=np.float64)
    tiles = _tiles(planes[0].shape)
    full = [t for t in tiles if out[t].shape == (TILE, TILE)]
    if full:
        result = _batched(step, *(np.stack([p[t] for t in full]) for p in planes))
        for t, tile in zip(full, result):
            out[t] = tile
    for t in (t for t in tiles if out[t].shape != (TILE, TILE)):
        h, w = out[t].shape
        pad = ((0, -h % down), (0, -w % down))
        out[t] = _batched(step, *(np.pad(p[t], pad, mode="edge")[None] for p in planes))[0, :h, :w]
    return out


def hide(cover: np.ndarray, secret: np.ndarray, model: DeepStego | None = None) -> np.ndarray:
    """Stego image hiding ``secret`` in ``cover``, both (rows, columns[, planes]) in 8-bit units.

    Float in [0, 255], not rounded: round it to the integers it is stored as. Raises ValueError
    when cover and secret differ in size.
    """
    model = model or shipped()
    if cover.shape != secret.shape:
        raise ValueError(f"cover is {_size(cover)} but secret is {_size(secret)}: they must have the "
                         "same size, and both be grayscale or both colour")
    planes = [_run_tiles(model.hide, model.config.down, c, s) for c, s in zip(_planes(cover), _planes(secret))]
    return np.stack(planes, axis=-1).reshape(cover.shape)


def reveal(stego: np.ndarray, model: DeepStego | None = None) -> np.ndarray:
    """Recovered secret (float, 8-bit units) from a stego image alone."""
    model = model or shipped()
    planes = [_run_tiles(model.reveal, model.config.down, p) for p in _planes(stego)]
    return np.stack(planes, axis=-1).reshape(stego.shape)


def _planes(image: np.ndarray) -> list[np.ndarray]:
    image = np.asarray(image, dtype=np.float32)
    return [image] if image.ndim == 2 else [image[..., i] for i in range(image.shape[-1])]


def _size(image: np.ndarray) -> str:
    rows, columns = image.shape[:2]
    planes = "" if image.ndim == 2 else f" x {image.shape[2]}"
    return f"{columns} x {rows}{planes} pixels"


# -- measurements -------------------------------------------------------------------------------


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error in 8-bit units."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(np.mean(d * d))


def psnr(mean_squared_error: float, peak: float = 255.0) -> float:
    """PSNR in dB at ``peak`` (8-bit: 255)."""
    return float("inf") if mean_squared_error == 0 else float(10 * np.log10(peak * peak / mean_squared_error))


def blankness(recovered: np.ndarray) -> float:
    """Root-mean-square distance of a recovery from the blank image (8-bit units).

    A real secret (a radiograph, a QR code) sits far from mid-grey; what the extraction network
    returns for a cover with nothing hidden sits close to it.
    """
    return float(np.sqrt(mse(recovered, np.full_like(recovered, BLANK, dtype=np.float64))))
