"""A light torchvision Mask R-CNN for foreground segmentation on CPU.

Input: float images in [0, 1] (one channel, any size), already windowed by the caller. The
network sees them resized to ``Config.size`` square; the union of the instance masks comes back
as a probability map at the input's size. Trained from scratch (no weight downloads here).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.faster_rcnn import TwoMLPHead, FastRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from .morphology import dilate_square, erode_square, fill_holes

WEIGHTS = Path(__file__).with_name("maskrcnn_foreground.pt")
SCORE_RAMP = (0.3, 0.7)  # an instance counts 0 below the first score, fully above the second
SNAP_RADIUS = 1.5  # network pixels: the band around the network's mask edge where image edges decide


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


def to_network(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) floats -> (N, 1, size, size), area-averaged so stego noise averages out."""
    batch = images[:, None].float()
    if batch.shape[-2:] == (size, size):
        return batch
    return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


@torch.inference_mode()
def foreground_probability(model: MaskRCNN, images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) windowed images -> (N, H, W) foreground probability.

    The max over instances of mask probability x score weight, the weight rising linearly from 0
    to 1 across :data:`SCORE_RAMP`: an instance whose score wavers near a threshold changes the
    union a little, instead of switching a whole instance mask on or off between cover and stego.
    """
    model.eval()
    small = to_network(images, size)
    outputs = model(list(small))
    low, high = SCORE_RAMP
    union = torch.stack([
        (out["masks"][:, 0] * ((out["scores"] - low) / (high - low)).clamp(0, 1)[:, None, None]).amax(dim=0)
        if len(out["masks"]) else torch.zeros(size, size)
        for out in outputs
    ])
    return F.interpolate(union[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def foreground_masks(model: MaskRCNN, config: Config, images: torch.Tensor, batch: int = 16,
                     edges: np.ndarray | None = None) -> np.ndarray:
    """(N, H, W) windowed images -> boolean (N, H, W): instance union > 0.5, holes filled.

    With ``edges`` (boolean, same shape: pixels bright enough to belong to an object), the edge
    snaps to the image: within :data:`SNAP_RADIUS` network pixels of the network's edge, a pixel
    is foreground if it is an edge pixel; deeper inside it is foreground anyway. The network's
    edge is smooth at full size and moves with any change to its input; an image edge does not.
    """
    probability = torch.cat([foreground_probability(model, images[i:i + batch], config.size)
                             for i in range(0, len(images), batch)])
    masks = np.stack([fill_holes(frame) for frame in (probability > 0.5).numpy()])
    if edges is None:
        return masks
    radius = max(1, round(SNAP_RADIUS * max(masks.shape[1:]) / config.size))
    for mask, edge in zip(masks, edges):
        mask[...] = fill_holes(erode_square(mask, radius) | (dilate_square(mask, radius) & edge))
    return masks


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
