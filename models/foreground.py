"""Foreground masks from the Mask R-CNN network, in numpy: what the runtime and training share.

The runtime runs the network exported to ONNX (``maskrcnn_foreground.onnx``, written by
``stegonode export-onnx`` from the torch weights) through ONNX Runtime; training and the export
check run the torch network (:mod:`stegonode.models.maskrcnn`, the ``train`` extra). Everything
around the network is here, in numpy, so both give the same masks: resizing to the network's
square input (area-averaged, as torch's antialiased bilinear resize) and back (bilinear), the
score-weighted union of the instances, thresholding, hole filling and edge snapping.

Importing this module loads neither torch nor ONNX Runtime; :func:`load` loads what the weights
file needs.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy import sparse

from . import require_training_extra
from .morphology import dilate_square, erode_square, fill_holes

WEIGHTS = Path(__file__).with_name("maskrcnn_foreground.onnx")  # exported from maskrcnn.WEIGHTS
SCORE_RAMP = (0.3, 0.7)  # an instance counts 0 below the first score, fully above the second
SNAP_RADIUS = 1.5  # network pixels: the band around the network's mask edge where image edges decide
# ONNX metadata keys written by the export: the network's input side, and the SHA-256 of the torch
# weights file it was exported from (the segmenter's version: the same on both paths).
META_SIZE, META_WEIGHTS = "size", "weights_sha256"


class Network(Protocol):
    """The Mask R-CNN network on one image at its input size."""

    size: int  # input side in pixels
    version: str  # first 16 hex digits of the torch weights file's SHA-256

    def instances(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(size, size) float32 in [0, 1] -> instance mask probabilities (k, size, size), scores (k,)."""


class OnnxNetwork:
    """The exported network through ONNX Runtime (CPU)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = onnx_threads() if threads is None else threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.size = int(meta[META_SIZE])
        self.version = meta[META_WEIGHTS][:16]

    def instances(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masks, boxes, scores = self.session.run(None, {"image": image[None, None].astype(np.float32, copy=False)})
        return paste_masks(masks, boxes, self.size), scores


def onnx_threads() -> int:
    """ONNX Runtime's compute threads: ``OMP_NUM_THREADS`` when set (the node's workers set 1:
    the process pool is the parallelism), otherwise 0, ONNX Runtime's default (one per core)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else 0


@functools.lru_cache(maxsize=2)
def load(path: Path = WEIGHTS) -> Network:
    """The network in ``path``, loaded once per process: an ``.onnx`` file through ONNX Runtime,
    a torch weights file (``.pt``, written by training) through torch (the ``train`` extra)."""
    if Path(path).suffix == ".onnx":
        return OnnxNetwork(path)
    require_training_extra(f"loading the torch weights {Path(path).name}")
    from .maskrcnn import TorchNetwork

    return TorchNetwork.load(path)


# -- resizing, as torch's F.interpolate(mode="bilinear", align_corners=False) -------------------


@functools.lru_cache(maxsize=64)
def _resize_matrix(source: int, target: int, antialias: bool) -> sparse.csr_matrix:
    """(target, source) weights of a 1-D bilinear resize; with ``antialias``, a triangle filter
    widened by the scale when shrinking (area averaging). Computed in torch's arithmetic (float32
    scale and weights, some steps in double), so the weights equal torch's bit for bit."""
    f32 = np.float32
    scale = f32(source) / f32(target)
    rows: list[int] = []
    columns: list[int] = []
    values: list[np.float32] = []
    for i in range(target):
        if antialias:
            taps, weights = _antialias_taps(i, source, scale)
        else:
            position = f32(max(float(scale) * (i + 0.5) - 0.5, 0.0))
            low = int(position)
            fraction = min(max(position - f32(low), f32(0)), f32(1))
            taps, weights = [low, low + 1 if low < source - 1 else low], [f32(1) - fraction, fraction]
        rows += [i] * len(taps)
        columns += taps
        values += weights
    return sparse.csr_matrix((np.array(values, np.float32), (rows, columns)), shape=(target, source))


def _antialias_taps(i: int, source: int, scale: np.float32) -> tuple[list[int], list[np.float32]]:
    """Source pixels and normalized weights of output pixel ``i`` (torch's antialiased bilinear)."""
    f32 = np.float32
    support = scale if scale >= 1 else f32(1)
    stretch = f32(1) / scale if scale >= 1 else f32(1)
    center = f32(float(scale) * (i + 0.5))
    low = max(int(float(center - support) + 0.5), 0)
    high = min(int(float(center + support) + 0.5), source)
    weights = []
    for tap in range(low, high):
        distance = abs(f32((float(f32(tap) - center) + 0.5) * float(stretch)))
        weights.append(f32(1) - distance if distance < 1 else f32(0))
    total = f32(0)
    for weight in weights:
        total = f32(total + weight)
    return list(range(low, high)), [w / total for w in weights] if total != 0 else weights


def resize(image: np.ndarray, shape: tuple[int, int], antialias: bool) -> np.ndarray:
    """A 2-D float32 image resized to ``shape`` (bilinear; ``antialias`` when shrinking)."""
    if image.shape == tuple(shape):
        return image.astype(np.float32, copy=False)
    rows = _resize_matrix(image.shape[0], shape[0], antialias)
    columns = _resize_matrix(image.shape[1], shape[1], antialias)
    return np.asarray(columns @ (rows @ image.astype(np.float32, copy=False)).T, dtype=np.float32).T


def to_network(image: np.ndarray, size: int) -> np.ndarray:
    """A (rows, columns) frame -> (size, size), area-averaged so stego noise averages out."""
    return resize(image, (size, size), antialias=True)


# -- instance masks into the image, as torchvision's paste_masks_in_image ---------------------


def paste_masks(masks: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Mask head outputs (k, m, m) in their boxes (k, 4: x0, y0, x1, y1) -> (k, size, size).

    torchvision's ``paste_masks_in_image`` (padding 1) in its arithmetic: each mask padded by
    one zero pixel, its box widened by (m + 2) / m about its centre and truncated to integers,
    the padded mask resized bilinearly (no antialiasing) to the box and cut to the image.
    """
    f32 = np.float32
    out = np.zeros((len(masks), size, size), np.float32)
    if not len(masks):
        return out
    side = masks.shape[-1]
    padded = np.pad(masks.astype(np.float32, copy=False), ((0, 0), (1, 1), (1, 1)))
    scale = f32(side + 2) / f32(side)
    boxes = boxes.astype(np.float32, copy=False)
    half = np.stack([(boxes[:, 2] - boxes[:, 0]) * f32(0.5), (boxes[:, 3] - boxes[:, 1]) * f32(0.5)], 1) * scale
    centre = np.stack([(boxes[:, 2] + boxes[:, 0]) * f32(0.5), (boxes[:, 3] + boxes[:, 1]) * f32(0.5)], 1)
    corners = np.concatenate([centre - half, centre + half], 1).astype(np.int64)  # truncated, as torch's cast
    for mask, (x0, y0, x1, y1), target in zip(padded, corners.tolist(), out, strict=True):
        pasted = resize(mask, (max(y1 - y0 + 1, 1), max(x1 - x0 + 1, 1)), antialias=False)
        left, top, right, bottom = max(x0, 0), max(y0, 0), min(x1 + 1, size), min(y1 + 1, size)
        if right > left and bottom > top:
            target[top:bottom, left:right] = pasted[top - y0:bottom - y0, left - x0:right - x0]
    return out


# -- masks ------------------------------------------------------------------------------------


def union(masks: np.ndarray, scores: np.ndarray, size: int) -> np.ndarray:
    """The max over instances of mask probability x score weight, the weight rising linearly from
    0 to 1 across :data:`SCORE_RAMP`: an instance whose score wavers near a threshold changes the
    union a little, instead of switching a whole instance mask on or off between cover and stego."""
    if not len(masks):
        return np.zeros((size, size), np.float32)
    low, high = SCORE_RAMP
    weights = np.clip((scores.astype(np.float32) - low) / np.float32(high - low), 0, 1)
    return (masks * weights[:, None, None]).max(axis=0)


def foreground_probability(network: Network, image: np.ndarray) -> np.ndarray:
    """A (rows, columns) windowed frame -> foreground probability at its size."""
    masks, scores = network.instances(to_network(image, network.size))
    return resize(union(masks, scores, network.size), image.shape, antialias=False)


def foreground_masks(network: Network, images: np.ndarray, edges: np.ndarray | None = None,
                     fill: bool = True) -> np.ndarray:
    """(N, H, W) windowed images (float32 in [0, 1]) -> boolean (N, H, W): instance union > 0.5,
    holes filled.

    With ``edges`` (boolean, same shape: pixels bright enough to belong to an object), the edge
    snaps to the image: within :data:`SNAP_RADIUS` network pixels of the network's edge, a pixel
    is foreground if it is an edge pixel; deeper inside it is foreground anyway. The network's
    edge is smooth at full size and moves with any change to its input; an image edge does not.

    ``fill=False`` leaves the snapped masks' holes for a caller that fills them after uniting
    them with other masks: filling before such a union changes nothing (hole filling is
    monotone and idempotent, so fill(fill(A) | B) = fill(A | B)).
    """
    masks = np.stack([fill_holes(foreground_probability(network, frame) > 0.5) for frame in images])
    if edges is None:
        return masks
    radius = max(1, round(SNAP_RADIUS * max(masks.shape[1:]) / network.size))
    for mask, edge in zip(masks, edges, strict=True):
        snapped = erode_square(mask, radius) | (dilate_square(mask, radius) & edge)
        mask[...] = fill_holes(snapped) if fill else snapped
    return masks
