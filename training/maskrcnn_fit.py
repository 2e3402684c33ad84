"""Training and evaluation of the foreground Mask R-CNN (fixed seeds, resumable, progress bar).

Examples are (windowed image, mask) pairs at any size; the network trains at ``Config.size``
square with each connected component of the mask as one instance. Evaluation is at full size.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from stegonode.models.foreground import Network, foreground_masks, to_network
from stegonode.models.maskrcnn import Config, MaskRCNN, build, float_state

MIN_INSTANCE_PIXELS = 16  # at network size: smaller components are not trained as instances


class Labelled(Protocol):
    """A training example (read-only: frozen dataclasses qualify)."""

    @property
    def name(self) -> str: ...

    @property
    def image(self) -> np.ndarray: ...

    @property
    def mask(self) -> np.ndarray: ...


@dataclass(frozen=True)
class Schedule:
    steps: int = 700
    batch: int = 4
    learning_rate: float = 1e-3
    warmup: int = 100
    weight_decay: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 100


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(predicted, truth).sum()
    return float(np.logical_and(predicted, truth).sum() / union) if union else 1.0


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalized cross-correlation of two masks (seed 002, Eq. 13); 1.0 for identical constants."""
    x, y = a.astype(np.float64) - a.mean(), b.astype(np.float64) - b.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    if denominator == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float((x * y).sum() / denominator)


def _small(examples: Sequence[Labelled], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and masks at network size (images area-averaged, masks by majority)."""
    images = np.stack([to_network(e.image, size) for e in examples])[:, None]
    masks = np.stack([to_network(e.mask.astype(np.float32), size) for e in examples])[:, None]
    return torch.from_numpy(images), torch.from_numpy(masks > 0.5)


def _target(mask: np.ndarray) -> dict[str, torch.Tensor] | None:
    """One instance per connected component of ``mask`` (None when there is none)."""
    labels, count = ndimage.label(mask)
    instances = [labels == i for i in range(1, count + 1) if (labels == i).sum() >= MIN_INSTANCE_PIXELS]
    if not instances:
        return None
    boxes = []
    for instance in instances:
        ys, xs = np.nonzero(instance)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32),
        "labels": torch.ones(len(instances), dtype=torch.int64),
        "masks": torch.from_numpy(np.stack(instances).astype(np.uint8)),
    }


def _augment(image: torch.Tensor, mask: torch.Tensor, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    """Flips, a gamma change and faint noise (what embedding does to the background)."""
    if rng.random() < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    if rng.random() < 0.3:
        image, mask = image.flip(-2), mask.flip(-2)
    image = image.clamp(0, 1) ** rng.uniform(0.7, 1.4)
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(rng.randrange(1 << 30)))
    return (image + noise * rng.uniform(0, 0.01)).clamp(0, 1), mask


def train(model_config: Config, schedule: Schedule, examples: Callable[[], Sequence[Labelled]],
          checkpoint: Path, log: Path | None = None,
          init: Path | None = None) -> tuple[MaskRCNN, dict[str, float]]:
    """Train (or resume from ``checkpoint``) and return the model and timing figures.

    ``examples`` is called only if steps remain (a finished checkpoint re-evaluates cheaply).
    ``init``: weights to fine-tune from (a file written by :func:`maskrcnn.save`), used only when
    there is no checkpoint yet.
    """
    torch.manual_seed(schedule.seed)
    model = build(model_config)
    if init is not None and not checkpoint.exists():
        model.load_state_dict(float_state(torch.load(init, map_location="cpu", weights_only=True)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _rate(s, schedule))
    rng, step, elapsed = random.Random(schedule.seed), 0, 0.0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        step, elapsed = state["step"], state["elapsed"]
    if step >= schedule.steps:
        return model.eval(), {"train_seconds": elapsed, "steps": step}
    images, masks = _small(examples(), model_config.size)
    targets = [_target(m.numpy()[0]) for m in masks]
    usable = [i for i, t in enumerate(targets) if t is not None]
    model.train()
    bar = tqdm(total=schedule.steps, initial=step, desc="train-segmenter", unit="step")
    while step < schedule.steps:
        start = time.perf_counter()
        batch_images, batch_targets = [], []
        for index in rng.sample(usable, schedule.batch):
            image, mask = _augment(images[index], masks[index], rng)
            batch_images.append(image)
            batch_targets.append(_target(mask.numpy()[0]))
        losses = model(batch_images, batch_targets)
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        scheduler.step()
        step += 1
        elapsed += time.perf_counter() - start
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", mask=f"{losses['loss_mask'].item():.3f}")
        if log is not None:
            with log.open("a") as handle:
                handle.write(f"{step}\t{loss.item():.4f}\t" + "\t".join(f"{v.item():.4f}" for v in losses.values()) + "\n")
        if step % schedule.checkpoint_every == 0 or step == schedule.steps:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "rng": rng.getstate(),
                        "torch_rng": torch.get_rng_state(), "step": step, "elapsed": elapsed}, checkpoint)
    bar.close()
    return model.eval(), {"train_seconds": elapsed, "steps": step}


def _edges(example: Labelled) -> np.ndarray | None:
    edges = getattr(example, "edges", None)
    return None if edges is None else edges[None]


def _rate(step: int, schedule: Schedule) -> float:
    """Linear warm-up, then cosine decay to 1 % of the base rate."""
    if step < schedule.warmup:
        return (step + 1) / schedule.warmup
    progress = (step - schedule.warmup) / max(1, schedule.steps - schedule.warmup)
    return 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * min(progress, 1.0)))


def evaluate(network: Network, examples: Sequence[Labelled]) -> tuple[list[float], list[np.ndarray]]:
    """Full-size IoU of each example, and the predicted masks (snapped to ``edges`` where given)."""
    predictions = [foreground_masks(network, e.image[None], edges=_edges(e))[0] for e in examples]
    return [iou(p, e.mask) for p, e in zip(predictions, examples, strict=True)], predictions
