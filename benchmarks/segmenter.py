#!/usr/bin/env python
"""Segmenter figures: IoU, mask stability cover vs stego, reveal at both ends, speed.

* IoU against ground truth: held-out phantoms and the labelled real images (the Mask R-CNN
  segmenter, its network without the classical mask it adds on CT, and the classical segmenter
  side by side; every real image listed).
* Stability: every round-trip image is protected with the segmenter under test, its stego image
  segmented again; NCC of the two masks (seed 002, Eq. 13), and reveal with that segmenter.
* Speed: ms per 512x512 slice on ``--threads`` threads (2 = the target machine), ONNX Runtime
  (what the node runs) and torch eager side by side, beside the classical segmenter.

Run from the repository root, with the training extra installed (torch: the accuracy figures
reuse the training code, and speed compares with it)::

    .venv/bin/python benchmarks/segmenter.py [--weights PATH] [--skip-stability] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
import torch  # noqa: E402

from stegonode.codecs import keys as keyfiles  # noqa: E402
from stegonode.dicom.pixels import read_pixels  # noqa: E402
from stegonode.errors import StegonodeError  # noqa: E402
from stegonode.handlers.pipeline import build_pipeline  # noqa: E402
from stegonode.handlers.protect import protect_object  # noqa: E402
from stegonode.handlers.protection import read_protection  # noqa: E402
from stegonode.handlers.reveal import reveal  # noqa: E402
from stegonode.models import foreground, maskrcnn  # noqa: E402
from stegonode.node import config as node_config  # noqa: E402
from stegonode.segmenters.classical import ClassicalSegmenter  # noqa: E402
from stegonode.segmenters.maskrcnn import MaskRCNNSegmenter, network_input  # noqa: E402
from stegonode.training import segmenter as segtrain  # noqa: E402
from stegonode.training.maskrcnn_fit import ncc  # noqa: E402
from stegonode.training.segmenter import HELD_OUT_SEED, phantoms, real_examples  # noqa: E402

from images import ROUND_TRIP, image_path  # noqa: E402

COLUMNS = {"maskrcnn": "Mask R-CNN", "network": "network alone", "classical": "classical"}


def accuracy(segmenter: MaskRCNNSegmenter, held_out: int, real: int | None = None) -> None:
    """IoU on ``held_out`` phantoms and on the labelled real images (the first ``real`` of them)."""
    for title, examples in (("held-out phantoms", phantoms(range(HELD_OUT_SEED, HELD_OUT_SEED + held_out))),
                            ("real images", real_examples(True)[:real])):
        metrics, _ = segtrain.accuracy(segmenter, examples)
        print(f"\nIoU, {title} ({len(examples)}): " + " | ".join(
            f"{label} mean {metrics[f'{key}_mean_iou']:.4f} min {metrics[f'{key}_min_iou']:.4f}"
            for key, label in COLUMNS.items()))
        if title == "real images":
            for name, scores in metrics["per_image"].items():
                print(f"  {name:34s} " + "  ".join(f"{label} {scores[key]:.4f}" for key, label in COLUMNS.items()))
        else:
            for modality in ("CT", "MR", "CR"):
                chosen = {k: [s[k] for n, s in metrics["per_image"].items() if n.endswith(modality)]
                          for k in COLUMNS}
                if not chosen["maskrcnn"]:
                    continue  # too few phantoms for every modality
                print(f"  {modality}: " + " | ".join(
                    f"{label} mean {np.mean(chosen[key]):.4f} min {np.min(chosen[key]):.4f}"
                    for key, label in COLUMNS.items()))


def stability(name: str, names: list[str]) -> bool:
    """Protect with segmenter ``name``, re-segment the stego image, reveal; True if all pass."""
    config = node_config.defaults()
    config["handlers"]["segment"]["segmenter"] = name
    with tempfile.TemporaryDirectory() as folder:
        keyfiles.generate(Path(folder))
        node_keys = keyfiles.load_node_keys(Path(folder) / "node.keys")
        peer_keys = keyfiles.load_peer_keys(Path(folder) / "peer.keys")
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys, ["pixels"])
    policy = pipeline.handlers[[h.name for h in pipeline.handlers].index("segment")].policy
    print(f"\nStability and reveal, segmenter {name} at both ends ({len(names)} round-trip images):")
    everything = True
    for image in names:
        ds = pydicom.dcmread(image_path(image))
        instance = protect_object(ds, pipeline).instance
        assert instance is not None, "a cover, not a stego object"
        cover = instance.foreground
        stego = pydicom.dcmread(_saved(ds))
        # as reveal does: the stego image at the levels the cover was thresholded at, if any
        levels = read_protection(stego).segmenter_levels
        again = policy.for_dataset(stego).segment(stego, read_pixels(stego), levels).mask
        try:
            reveal(stego, peer_keys)
            outcome = "reveal OK"
        except StegonodeError as exc:
            outcome, everything = f"reveal FAILED ({type(exc).__name__})", False
        score = ncc(cover, again)
        everything &= score >= 0.999
        print(f"  {image:36s} NCC {score:.6f}  differing pixels {int((cover != again).sum()):6d}  {outcome}")
    return everything


def _saved(ds: pydicom.Dataset) -> Path:
    path = Path(tempfile.mkstemp(suffix=".dcm")[1])
    ds.save_as(path, enforce_file_format=True)
    return path


def slice_ms(threads: int, slices: int = 16, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per 512x512 CT slice (16 noisy copies of 693_UNCR per call, median of 5) on
    ``threads`` threads: the whole Mask R-CNN segmenter and its network with post-processing
    alone, through ONNX Runtime and through torch; the classical segmenter. Wall clock, and
    (``*_cpu``) the CPU time of all threads, which other work on the machine inflates less."""
    torch.set_num_threads(threads)
    ds = pydicom.dcmread(image_path("693_UNCR.dcm"))
    pixels = np.repeat(read_pixels(ds), slices, axis=0)
    pixels = pixels + np.random.default_rng(0).integers(-2, 3, pixels.shape).astype(pixels.dtype)
    series = copy.deepcopy(ds)
    images, edges = network_input(series, pixels)
    segmenter = MaskRCNNSegmenter()
    figures = {}
    for engine, network in (("onnx", foreground.OnnxNetwork(foreground.WEIGHTS, threads)),
                            ("torch", maskrcnn.TorchNetwork.load())):
        segmenter.model = network
        segmenter.foreground(series, pixels[:2])  # warm-up
        figures.update(_per_slice(f"{engine}_segmenter", lambda: segmenter.foreground(series, pixels), slices, repeats))
        figures.update(_per_slice(f"{engine}_network", partial(foreground.foreground_masks, network, images, edges),
                                  slices, repeats))
    figures.update(_per_slice("classical", lambda: ClassicalSegmenter().foreground(series, pixels), slices, repeats))
    return figures


def speed(threads: int, slices: int = 16, repeats: int = 5) -> None:
    ms = slice_ms(threads, slices, repeats)
    print(f"\nSpeed, ms per 512x512 CT slice, {threads} threads, wall (CPU of all threads); median of {repeats}, "
          "the CPU is shared with other work:")
    for engine, label in (("onnx", "ONNX Runtime"), ("torch", "torch eager")):
        print(f"  Mask R-CNN, {label:12s}: whole segmenter {ms[f'{engine}_segmenter']:6.1f} "
              f"({ms[f'{engine}_segmenter_cpu']:.1f})   network + post-processing {ms[f'{engine}_network']:6.1f} "
              f"({ms[f'{engine}_network_cpu']:.1f})")
    print(f"  classical: {ms['classical']:.1f} ({ms['classical_cpu']:.1f})")


def _per_slice(name: str, run, slices: int = 16, repeats: int = 5) -> dict[str, float]:
    """Median wall and CPU milliseconds per slice of ``repeats`` calls of ``run``."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(1000 * (time.perf_counter() - start) / slices)
        cpu.append(1000 * (time.process_time() - start_cpu) / slices)
    return {name: statistics.median(wall), f"{name}_cpu": statistics.median(cpu)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=foreground.WEIGHTS, help="ONNX export or torch weights")
    parser.add_argument("--held-out", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-stability", action="store_true")
    parser.add_argument("--quick", action="store_true", help="CI size: 3 phantoms, 2 real images, stability on "
                        "693_UNCR, speed on one slice once")
    args = parser.parse_args()
    if args.quick:
        args.held_out = 3
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # ONNX Runtime's threads, read when the network loads
    segmenter = MaskRCNNSegmenter(args.weights)
    print(f"weights {args.weights} ({args.weights.stat().st_size / 2**20:.1f} MiB)")
    accuracy(segmenter, args.held_out, 2 if args.quick else None)
    if not args.skip_stability:
        passed = stability("maskrcnn", ["693_UNCR.dcm"] if args.quick else ROUND_TRIP)
        print(f"  all NCC >= 0.999 and every reveal OK: {passed}")
    speed(args.threads, *((1, 1) if args.quick else (16, 5)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
