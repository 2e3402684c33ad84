"""``stegonode train-segmenter``: data through the DICOM path, training, weights, card, overlays.

Splits (fixed, documented in the model card):
- phantoms: seeds ``0 .. phantoms-1`` train; seeds ``HELD_OUT_SEED + 0 .. held_out-1`` held out;
- real pydicom-data frames with shipped labels: ``REAL_EVAL`` (the protect/reveal issue's CT, MR
  and CR images) are evaluation only; every other labelled frame is training.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from pydicom.data import get_testdata_file
from tqdm import tqdm

from stegonode.dicom.display import CT_THRESHOLD_HU
from stegonode.dicom.pixels import read_pixels
from stegonode.models import foreground, maskrcnn
from stegonode.segmenters import maskrcnn as segment
from stegonode.segmenters.base import Segmenter
from stegonode.segmenters.classical import ClassicalSegmenter
from stegonode.segmenters.maskrcnn import MaskRCNNSegmenter
from stegonode.training.maskrcnn_fit import Schedule, evaluate, iou, train
from stegonode.training.segdata import Example, label_files, label_name, phantom_example, real_example, write_overlay

HELD_OUT_SEED = 1_000_000
OVERLAYS_PER_SET, OVERLAY_SIDE = 15, 384  # keeps the shipped overlays small
REAL_EVAL = (
    "693_UNCR", "693_J2KR", "explicit_VR-UN", "bad_sequence", "J2K_pixelrep_mismatch",
    "MR-SIEMENS-DICOM-WithOverlays", "examples_overlay", "MR2_UNCR", "RG1_UNCR", "RG3_UNCR",
    "eCT_Supplemental",
)  # JPEG2000_UNC of that list is NM, not CT, MR or CR: no label


def phantoms(seeds: Sequence[int]) -> list[Example]:
    return [phantom_example(seed) for seed in tqdm(seeds, desc="phantoms", unit="image", leave=False)]


def real_examples(evaluation: bool) -> list[Example]:
    """Labelled real frames of the evaluation set (``evaluation``) or of the training set."""
    chosen = []
    for label in label_files():
        dicom, _ = label_name(label)
        if (Path(dicom).stem in REAL_EVAL) == evaluation:
            chosen.append(real_example(label, Path(str(get_testdata_file(dicom)))))
    return chosen


def segmenter_masks(segmenter: Segmenter, examples: Sequence[Example]) -> list[np.ndarray]:
    """A whole segmenter (post-processing and fallbacks included) on each example's DICOM frame."""
    return [segmenter.foreground(e.dataset, read_pixels(e.dataset)[e.frame:e.frame + 1])[0] for e in examples]


def accuracy(segmenter: MaskRCNNSegmenter, examples: Sequence[Example]) -> tuple[dict, list[np.ndarray]]:
    """IoU of the Mask R-CNN segmenter, of its network alone and of the classical segmenter; and
    the Mask R-CNN segmenter's masks."""
    masks = segmenter_masks(segmenter, examples)
    network, _ = evaluate(segmenter.model, examples)
    scores = {
        "maskrcnn": [iou(m, e.mask) for m, e in zip(masks, examples, strict=True)],
        "network": network,
        "classical": [iou(m, e.mask) for m, e in zip(segmenter_masks(ClassicalSegmenter(), examples), examples, strict=True)],
    }
    return {
        "count": len(examples),
        **{f"{k}_mean_iou": float(np.mean(v)) for k, v in scores.items()},
        **{f"{k}_min_iou": float(np.min(v)) for k, v in scores.items()},
        "per_image": {e.name: {k: v[i] for k, v in scores.items()} for i, e in enumerate(examples)},
    }, masks


def train_segmenter(out: Path, work: Path, schedule: Schedule, phantom_count: int, held_out: int,
                    real_repeat: int, init: Path | None = None) -> dict:
    """Train (resuming from ``work``, or fine-tuning from ``init``), evaluate, write weights,
    model card and overlays to ``out``."""
    config = maskrcnn.Config()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    overlays = out / "overlays"
    def training() -> list[Example]:
        return phantoms(range(phantom_count)) + real_examples(False) * real_repeat

    trained, timings = train(config, schedule, training, work / "checkpoint.pt", log=work / "train-log.tsv",
                             init=init)
    weights = out / maskrcnn.WEIGHTS.name
    maskrcnn.save(trained, config, weights, {"schedule": asdict(schedule), "init": init.name if init else None})
    exported = out / foreground.WEIGHTS.name
    maskrcnn.export_onnx(weights, exported)
    metrics: dict = {"timings": timings, "weights_mib": weights.stat().st_size / 2**20,
                     "onnx_mib": exported.stat().st_size / 2**20}
    overlays.mkdir(parents=True, exist_ok=True)
    segmenter = MaskRCNNSegmenter(exported)  # evaluate what ships: the ONNX export of the half-precision weights
    for name, examples in (("phantoms_held_out", phantoms(range(HELD_OUT_SEED, HELD_OUT_SEED + held_out))),
                           ("real", real_examples(True))):
        metrics[name], masks = accuracy(segmenter, examples)
        for example, mask in list(zip(examples, masks, strict=True))[:OVERLAYS_PER_SET]:
            write_overlay(overlays / f"{example.name}.png", example.image, mask, example.mask, OVERLAY_SIDE)
    (work / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (out / "MODEL_CARD.md").write_text(model_card(config, schedule, phantom_count, held_out, real_repeat, metrics,
                                                  init))
    return metrics


def model_card(config: maskrcnn.Config, schedule: Schedule, phantom_count: int, held_out: int,
               real_repeat: int, metrics: dict, init: Path | None = None) -> str:
    """The model card: data, configuration, metrics, timings."""
    lines = [
        "# Foreground Mask R-CNN (stegonode.models.maskrcnn)", "",
        f"Written by `stegonode train-segmenter` on {time.strftime('%Y-%m-%d')} "
        f"({platform.machine()}, torch {torch.__version__}).", "",
        "## Data", "",
        f"- Training: procedural phantoms seeds 0..{phantom_count - 1} (CT, MR, CR in turn; "
        "written as DICOM and read back through read_pixels + windowed), plus the labelled real "
        f"frames outside the evaluation set, each repeated {real_repeat}x.",
        f"- Held out: phantoms seeds {HELD_OUT_SEED}..{HELD_OUT_SEED + held_out - 1}; real frames of "
        f"{', '.join(REAL_EVAL)} (labels in stegonode/models/labels, reviewed by eye).",
        "- Foreground: body, arms, table and head holder; background: air, direct exposure, "
        "round field-of-view padding.", "",
        "## Input and post-processing (stegonode.handlers.segment, stegonode.models.foreground)", "",
        f"- Window: CT {segment.CT_WINDOW_HU[0]:g}..{segment.CT_WINDOW_HU[1]:g} HU; other images from "
        f"floor + {segment.CLIP_FRACTION:g} x (99th percentile - floor) to the 99th percentile, floor 0 unless "
        "the 1st percentile is far from 0. Background-level values map to 0, so embedding's changes to "
        "the background mostly do not reach the network.",
        f"- Instances weigh into the union by score, ramping from 0 at {foreground.SCORE_RAMP[0]} to 1 at "
        f"{foreground.SCORE_RAMP[1]}; the union is > 0.5, holes filled.",
        f"- The edge snaps to the image within {foreground.SNAP_RADIUS} network pixels of the network's edge: "
        f"CT above {CT_THRESHOLD_HU:g} HU, others above the clip level less "
        f"{segment.EMBED_GUARD:g} stored units.",
        f"- CT: the union with the classical mask (above {CT_THRESHOLD_HU:g} HU, holes filled, "
        "components of 64 pixels or more), holes filled again. MR, CR, DX: the classical mask only where "
        "the network finds nothing. Other modalities (not in the training data): the classical mask.",
        "- \"Mask R-CNN\" below is this whole segmenter; \"network\" is the network with the window, "
        "score ramp and edge snapping but without the classical mask (it differs on CT only).", "",
        "## Configuration", "", "```", json.dumps(asdict(config)), json.dumps(asdict(schedule)), "```", "",
        *([f"Fine-tuned from `{init.name}`.", ""] if init else []),
        "## Metrics (IoU against ground truth at full resolution)", "",
        "| set | images | Mask R-CNN mean | Mask R-CNN min | network mean | network min | classical mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("phantoms_held_out", "real"):
        m = metrics[name]
        if m["count"]:
            lines.append(f"| {name} | {m['count']} | {m['maskrcnn_mean_iou']:.4f} | {m['maskrcnn_min_iou']:.4f} | "
                         f"{m['network_mean_iou']:.4f} | {m['network_min_iou']:.4f} | "
                         f"{m['classical_mean_iou']:.4f} |")
    lines += ["", "The real labels were drafted from the classical mask, then corrected where review found it "
              "wrong (scripts/make_labels.py: MR2_UNCR, RG1_UNCR, RG3_UNCR, eCT_Supplemental), so the "
              "classical column on real images is not an independent baseline, nor is the Mask R-CNN "
              "column on CT, which includes the classical mask.", "", "Per real image:", ""]
    for image, scores in metrics["real"]["per_image"].items():
        lines.append(f"- {image}: Mask R-CNN {scores['maskrcnn']:.4f}, network {scores['network']:.4f}, "
                     f"classical {scores['classical']:.4f}")
    t = metrics["timings"]
    lines += ["", "## Timings", "",
              f"- Training: {t['steps']} steps, {t['train_seconds'] / 60:.1f} min of training-step wall time "
              "(torch threads and CPU load as the run had them; see --threads).",
              f"- Weights: {metrics['weights_mib']:.1f} MiB (half precision), exported to ONNX "
              f"({foreground.WEIGHTS.name}, float32, {metrics['onnx_mib']:.1f} MiB), which the runtime runs "
              "through ONNX Runtime; the metrics above are of that export.", ""]
    return "\n".join(lines)
