"""A light torchvision Mask R-CNN for foreground segmentation on CPU: build, train-time weights,
export to ONNX (torch and torchvision: the ``train`` extra).

Input: one float image in [0, 1] (one channel), already windowed and resized to ``Config.size``
square by :mod:`stegonode.models.foreground`, which turns the instances into a mask in numpy
for this network and for its ONNX export alike. Trained from scratch (no weight downloads here).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.resnet import BasicBlock
from torchvision.ops import MultiScaleRoIAlign, poolers

from . import foreground
from .foreground import SCORE_RAMP

WEIGHTS = Path(__file__).with_name("maskrcnn_foreground.pt")


@dataclass(frozen=True)
class Config:
    """Everything that shapes the network; stored beside the weights."""

    size: int = 256  # network input side in pixels
    widths: tuple[int, ...] = (32, 64, 128, 256)  # ResNet-18 layout at half width
    fpn_channels: int = 64
    mask_channels: int = 64
    box_channels: int = 256
    mask_pool: int = 28  # RoIAlign side for the mask head; masks come out at 2x this (56x56)
    proposals_train: int = 256
    proposals_test: int = 32
    detections: int = 8
    score_threshold: float = 0.5


def build(config: Config) -> MaskRCNN:
    """Mask R-CNN, half-width ResNet-18 FPN backbone (trainable batch norm), slim heads."""
    backbone = BackboneWithFPN(
        _resnet(config.widths), return_layers={f"layer{i + 1}": str(i) for i in range(4)},
        in_channels_list=list(config.widths), out_channels=config.fpn_channels,
    )
    names = ["0", "1", "2", "3"]
    mask_pool = MultiScaleRoIAlign(names, output_size=config.mask_pool, sampling_ratio=2)
    box_pool = MultiScaleRoIAlign(names, output_size=7, sampling_ratio=2)
    return MaskRCNN(
        backbone,
        num_classes=None,
        min_size=config.size, max_size=config.size,
        image_mean=[0.5], image_std=[0.25],
        box_roi_pool=box_pool,
        box_head=TwoMLPHead(config.fpn_channels * 49, config.box_channels),
        box_predictor=FastRCNNPredictor(config.box_channels, 2),
        mask_roi_pool=mask_pool,
        mask_head=MaskRCNNHeads(config.fpn_channels, [config.mask_channels] * 4, 1),
        mask_predictor=MaskRCNNPredictor(config.mask_channels, config.mask_channels, 2),
        rpn_pre_nms_top_n_train=config.proposals_train * 4, rpn_post_nms_top_n_train=config.proposals_train,
        rpn_pre_nms_top_n_test=config.proposals_test * 4, rpn_post_nms_top_n_test=config.proposals_test,
        box_detections_per_img=config.detections, box_score_thresh=config.score_threshold,
        box_batch_size_per_image=128,
    )


def _resnet(widths: tuple[int, ...]) -> nn.Module:
    """ResNet-18's layout (two basic blocks per stage) with the given stage widths, one channel in."""
    layers: dict[str, nn.Module] = {
        "conv1": nn.Conv2d(1, widths[0], 7, stride=2, padding=3, bias=False),
        "bn1": nn.BatchNorm2d(widths[0]), "relu": nn.ReLU(inplace=True),
        "maxpool": nn.MaxPool2d(3, stride=2, padding=1),
    }
    previous = widths[0]
    for index, width in enumerate(widths):
        stride = 1 if index == 0 else 2
        down = None
        if stride != 1 or previous != width:
            down = nn.Sequential(nn.Conv2d(previous, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
        layers[f"layer{index + 1}"] = nn.Sequential(BasicBlock(previous, width, stride, down), BasicBlock(width, width))
        previous = width
    return nn.Sequential(OrderedDict(layers))


class Single(nn.Module):
    """The network on one (1, 1, size, size) image -> instance masks at the mask head's side
    (k, 2 * mask_pool, 2 * mask_pool) probabilities, boxes (k, 4) in input pixels (x0, y0, x1,
    y1), scores (k,): what :class:`TorchNetwork` runs and what is exported to ONNX.

    torchvision's Mask R-CNN less its transform's resize (the input is already at the network's
    size: a resize by 1, which copies) and less pasting the masks into the image, which
    :func:`stegonode.models.foreground.paste_masks` does in numpy for the kept instances only.
    """

    def __init__(self, model: MaskRCNN) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        model = self.model
        side = (int(image.shape[-2]), int(image.shape[-1]))
        normalized = model.transform.normalize(image[0])[None]
        images = ImageList(normalized, [side])
        features = model.backbone(normalized)
        proposals, _ = model.rpn(images, features)
        detections, _ = model.roi_heads(features, proposals, images.image_sizes)
        out = detections[0]
        return out["masks"][:, 0], out["boxes"], out["scores"]


class TorchNetwork:
    """:class:`stegonode.models.foreground.Network` through torch (training, export checks)."""

    def __init__(self, model: MaskRCNN, config: Config, version: str) -> None:
        self.single, self.size, self.version = Single(model), config.size, version

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> TorchNetwork:
        return cls(*load(path), weights_sha256(path)[:16])

    @torch.inference_mode()
    def instances(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masks, boxes, scores = self.single(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None])
        return foreground.paste_masks(masks.numpy(), boxes.numpy(), self.size), scores.numpy()


def _merge_levels(levels: torch.Tensor, unmerged_results: list[torch.Tensor]) -> torch.Tensor:
    """torchvision's ``_onnx_merge_levels`` with one gather instead of a scatter of every
    pooled feature per level (the same values: each region's row from its level's result)."""
    order = torch.cat([torch.where(levels == level)[0] for level in range(len(unmerged_results))])
    position = torch.zeros_like(order).scatter(0, order, torch.arange(order.numel(), dtype=order.dtype))
    return torch.cat(unmerged_results)[position]


def weights_sha256(path: Path) -> str:
    """SHA-256 of a weights file (hex); its first 16 digits are the segmenter's version."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export_onnx(weights: Path, out: Path) -> None:
    """Write the network of ``weights`` to ``out`` as ONNX (legacy exporter, opset 17: the dynamo
    exporter fails on torchvision's batched NMS); fixed input side, any number of instances.

    The file records the input side and the weights file's SHA-256 (see
    :data:`stegonode.models.foreground.META_WEIGHTS`).
    """
    import onnx

    model, config = load(weights)
    example = torch.from_numpy(_two_discs(config.size)[None, None])
    outputs = ("masks", "boxes", "scores")
    with warnings.catch_warnings(), mock.patch.object(poolers, "_onnx_merge_levels", _merge_levels):
        warnings.simplefilter("ignore")  # the tracer's notes on torchvision's code, none about this graph
        torch.onnx.export(Single(model), (example,), str(out), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=list(outputs),
                          dynamic_axes={name: {0: "instances"} for name in outputs})
    graph = onnx.load(str(out))
    del graph.graph.value_info[:]  # the trace's instance count, not the graph's: ONNX Runtime infers shapes
    metadata = {foreground.META_SIZE: str(config.size),
                foreground.META_WEIGHTS: weights_sha256(weights)}
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=value)
    onnx.save(graph, str(out))


def _two_discs(size: int) -> np.ndarray:
    """The image the export traces: two bright discs, so every step of the mask branch runs."""
    rows, columns = np.mgrid[:size, :size] / size
    discs = ((rows - 0.4) ** 2 + (columns - 0.3) ** 2 < 0.04) | ((rows - 0.6) ** 2 + (columns - 0.75) ** 2 < 0.02)
    return discs.astype(np.float32) * 0.8


def save(model: MaskRCNN, config: Config, path: Path, meta: dict) -> None:
    """Weights stored in half precision (half the size); they load back as float32."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"config": asdict(config), "state": state, "meta": meta}, path)


def float_state(saved: dict) -> dict[str, torch.Tensor]:
    """The state dict of a file written by :func:`save`, floating tensors back in float32."""
    return {k: v.float() if v.is_floating_point() else v for k, v in saved["state"].items()}


def load(path: Path = WEIGHTS) -> tuple[MaskRCNN, Config]:
    """Model and config from a weights file, in eval mode, on the CPU."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    config = Config(**{**saved["config"], "widths": tuple(saved["config"]["widths"])})
    model = build(config)
    model.load_state_dict(float_state(saved))
    model.roi_heads.score_thresh = min(config.score_threshold, SCORE_RAMP[0])  # the ramp weighs the rest
    return model.eval(), config
