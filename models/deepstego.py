"""Deep image-in-image steganography (seed 000): hide and reveal, tile by tile, in numpy.

The networks (:mod:`stegonode.models.deepnet`, trained in torch) run from their ONNX export
(``deepstego_hide.onnx``, ``deepstego_reveal.onnx``, written by ``stegonode export-onnx``)
through ONNX Runtime, so hiding and revealing need neither torch nor its weights file.

Images are float arrays in 8-bit units (0..255). The networks are fully convolutional; hide and
reveal cut images into ``TILE`` x ``TILE`` tiles (the training size) and run each tile on its
own, so a tile's stego depends on that tile alone. Colour images go plane by plane through the
grayscale network. Everything here knows nothing of DICOM files. Importing this module loads
neither torch nor ONNX Runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .foreground import onnx_threads
from .geometry import BLANK, TILE

HIDE, REVEAL = (Path(__file__).with_name(f"deepstego_{step}.onnx") for step in ("hide", "reveal"))
# ONNX metadata keys written by the export: the network's config (JSON) and the SHA-256 of the
# torch weights file it was exported from.
META_CONFIG, META_WEIGHTS = "config", "weights_sha256"


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


class Networks(Protocol):
    """The hiding and the extraction network on (n, channels, rows, columns) float32 arrays scaled
    to [-0.5, 0.5] (``x / 255 - 0.5``; see :func:`to_network`)."""

    config: NetConfig

    def hide(self, cover: np.ndarray, secret: np.ndarray) -> np.ndarray:
        """Stego image, not yet rounded."""

    def reveal(self, stego: np.ndarray) -> np.ndarray:
        """Recovered secret."""


class OnnxNetworks:
    """The exported networks through ONNX Runtime (CPU)."""

    def __init__(self, hide_path: Path = HIDE, reveal_path: Path = REVEAL) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = onnx_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self._hide, self._reveal = (onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                                    for path in (hide_path, reveal_path))
        self.config = NetConfig(**json.loads(self._hide.get_modelmeta().custom_metadata_map[META_CONFIG]))

    def hide(self, cover: np.ndarray, secret: np.ndarray) -> np.ndarray:
        return self._hide.run(None, {"cover": cover, "secret": secret})[0]

    def reveal(self, stego: np.ndarray) -> np.ndarray:
        return self._reveal.run(None, {"stego": stego})[0]


_SHIPPED: OnnxNetworks | None = None


def shipped() -> OnnxNetworks:
    """The shipped networks, loaded once per process."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = OnnxNetworks()
    return _SHIPPED


def to_network(images: np.ndarray) -> np.ndarray:
    """(n, rows, columns[, channels]) 8-bit-unit values -> network input (n, channels, rows, columns)."""
    x = np.asarray(images, dtype=np.float32)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x / np.float32(255) - np.float32(0.5))


def from_network(x: np.ndarray) -> np.ndarray:
    """Network output -> (n, rows, columns[, channels]) float 8-bit units, clamped to [0, 255]."""
    y = np.clip((x + np.float32(0.5)) * np.float32(255), 0, 255)
    y = y[:, 0] if y.shape[1] == 1 else y.transpose(0, 2, 3, 1)
    return y.astype(np.float64)


# -- tiles and whole images --------------------------------------------------------------------

_BATCH = 256


def _batched(step, *images: np.ndarray) -> np.ndarray:
    """``step`` (network inputs -> network output) over aligned stacks of 8-bit-unit images, in batches."""
    return np.concatenate([
        from_network(step(*(to_network(image[i : i + _BATCH]) for image in images)))
        for i in range(0, len(images[0]), _BATCH)
    ])


def hide_tiles(covers: np.ndarray, secrets: np.ndarray, model: Networks | None = None) -> np.ndarray:
    """Stego tiles (float 8-bit units, in [0, 255], not rounded) for (n, rows, columns) stacks."""
    return _batched((model or shipped()).hide, covers, secrets)


def reveal_tiles(stegos: np.ndarray, model: Networks | None = None) -> np.ndarray:
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
    """Apply ``step`` (network inputs -> network output) tile by tile to aligned same-sized 2-D planes.

    Full tiles go in batches; a partial edge tile is padded by edge replication to a multiple
    of ``down`` and cropped after.
    """
    out = np.empty(planes[0].shape, dtype=np.float64)
    tiles = _tiles(planes[0].shape)
    full = [t for t in tiles if out[t].shape == (TILE, TILE)]
    if full:
        result = _batched(step, *(np.stack([p[t] for t in full]) for p in planes))
        for t, tile in zip(full, result, strict=True):
            out[t] = tile
    for t in (t for t in tiles if out[t].shape != (TILE, TILE)):
        h, w = out[t].shape
        pad = ((0, -h % down), (0, -w % down))
        out[t] = _batched(step, *(np.pad(p[t], pad, mode="edge")[None] for p in planes))[0, :h, :w]
    return out


def hide(cover: np.ndarray, secret: np.ndarray, model: Networks | None = None) -> np.ndarray:
    """Stego image hiding ``secret`` in ``cover``, both (rows, columns[, planes]) in 8-bit units.

    Float in [0, 255], not rounded: round it to the integers it is stored as. Raises ValueError
    when cover and secret differ in size.
    """
    model = model or shipped()
    if cover.shape != secret.shape:
        raise ValueError(f"cover is {_size(cover)} but secret is {_size(secret)}: they must have the "
                         "same size, and both be grayscale or both colour")
    planes = [_run_tiles(model.hide, model.config.down, c, s) for c, s in zip(_planes(cover), _planes(secret), strict=True)]
    return np.stack(planes, axis=-1).reshape(cover.shape)


def reveal(stego: np.ndarray, model: Networks | None = None) -> np.ndarray:
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
