#!/usr/bin/env python
"""CPU milliseconds per protect stage, as a node's worker spends them: one core, one thread.

The figure is process CPU time (``time.process_time``), not wall time, so it holds on a shared
machine: a worker process of the node (``OMP_NUM_THREADS=1``, one job at a time) pays these
milliseconds of one core for each object. Stages:

* read: parsing the received file (``read_dicom``);
* decode: the pixels (``read_pixels``);
* network: the Mask R-CNN network in ONNX Runtime (resizing in and out excluded);
* segmentation rest: windowing, resizing, instance union, edge snapping, hole filling, the
  classical mask on CT (the ``segment`` handler less the network);
* embedding: the guard, the usable region, the DCT codec's embed and its read-back;
* collect + seal + de-identification: the three header handlers together (each also printed);
* encode: the stored transfer syntax's encoder, and its lossless proof (decoding it again);
* write: the stored object's bytes (``dicom_bytes``).

The node's main process spends more per object (receiving, the index, dispatching): see
``benchmarks/ingest.py``/``benchmarks/lean.py`` for the whole node's CPU per instance.

Series: ``--instances`` real 512x512 CT slices (benchmarks/ingest.py's series), default
configuration (Mask R-CNN, ``[storage] transfer_syntax`` default); the first ``--warmup``
objects are not counted. ``--profile FILE`` writes a cProfile of the counted objects.
``--compare`` also runs each object with the implementations this work replaced (equal
results: the previous export of the network graph, read from git at ``PREVIOUS_REVISION``;
de-identification resolving every tag's action anew per object; hole filling and component
removal without their one-component shortcuts, the network input's temporaries, the classical
mask on CT thresholding the frame afresh and the network's mask filled before the union with
it, Otsu's histogram by ``np.histogram``; the DCT codec's message indices per slot and its
chunk-size candidates drawing the slots again; square erosion and dilation by 2 radius shifts),
interleaved object by object, and prints both
tables (docs/performance.md).
Run from the repository root::

    .venv/bin/python benchmarks/stages.py [--instances 40] [--syntax jpeg-ls-lossless] [--profile out.prof] [--compare] [--quick]
"""

from __future__ import annotations

import argparse  # noqa: E402
import cProfile  # noqa: E402
import dataclasses  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

import _one_core  # noqa: F401  (first: one BLAS thread, CPU 0)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from stegonode.codecs import dct  # noqa: E402
from stegonode.codecs import keys as keyfiles  # noqa: E402
from stegonode.dicom.dicomfile import configure_pydicom, dicom_bytes, read_dicom  # noqa: E402
from stegonode.dicom.display import has_hounsfield_units  # noqa: E402
from stegonode.handlers import compression, deidentify  # noqa: E402
from stegonode.handlers import pipeline as pipeline_module  # noqa: E402
from stegonode.handlers.pipeline import Pipeline, build_pipeline  # noqa: E402
from stegonode.models import foreground, morphology  # noqa: E402
from stegonode.node.config import load  # noqa: E402
from stegonode.segmenters import classical, maskrcnn  # noqa: E402
from stegonode.segmenters.base import Segmentation  # noqa: E402

from nodes import write_series  # noqa: E402

Totals = dict[str, float]
GROUPS = {"collect + seal + de-identification": ("collect", "seal", "deidentify")}


class CpuClock:
    """Adds the CPU seconds of wrapped calls to ``totals[name]`` (nested calls counted once each)."""

    def __init__(self) -> None:
        self.totals: Totals = defaultdict(float)

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.totals[name] += time.process_time() - start
        return timed


def instrumented(config: dict, keys, syntax: str, clock: CpuClock) -> Pipeline:
    """The configured pipeline with its handler timings in CPU seconds, the network and the
    lossless proof timed apart."""
    # Pipeline.protect times each step with time.perf_counter: give it the process CPU clock.
    pipeline_module.time = types.SimpleNamespace(perf_counter=time.process_time)
    compression._decodes_to = clock.wrap("encode: lossless proof", compression._decodes_to)
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], keys,
                              config["pipeline"]["carriers"], syntax)
    for handler in pipeline.handlers:
        model = getattr(getattr(getattr(handler, "policy", None), "validated", None), "model", None)
        if model is not None:  # the Mask R-CNN network the segmenter runs (loaded once per process)
            model.instances = clock.wrap("network", model.instances)
    return pipeline


def protect_file(pipeline: Pipeline, path: Path, clock: CpuClock) -> Totals:
    """CPU seconds per stage for one object, as a worker protects it (read, protect, bytes)."""
    before = dict(clock.totals)
    start = time.process_time()
    ds = read_dicom(path)
    read = time.process_time() - start
    pipeline.admit(ds)
    instance = pipeline.run(ds)  # the pipeline stage itself, timed per stage (not protect_object)
    start = time.process_time()
    dicom_bytes(ds)
    write = time.process_time() - start
    delta = {name: clock.totals[name] - before.get(name, 0.0) for name in clock.totals}
    stages = {"read": read, **instance.timings, "write": write}
    stages["segmentation rest"] = stages.pop("segment", 0.0) - delta.get("network", 0.0)
    stages["network"] = delta.get("network", 0.0)
    stages["encode: lossless proof"] = delta.get("encode: lossless proof", 0.0)
    stages["encode"] -= stages["encode: lossless proof"]
    stages["embedding"] = stages.pop("embed", 0.0)
    for group, names in GROUPS.items():
        stages[group] = sum(stages.get(name, 0.0) for name in names)
    return stages


# -- the implementations this round replaced (equal results), for --compare ----------------------

PREVIOUS_REVISION = "95b525a"  # the commit before this round: its exported network graph


class _PastingGraph(foreground.OnnxNetwork):
    """The previous export of the same weights: the transform's resize by 1 inside, per-level
    scatters in the RoI pools, every instance mask pasted into the image inside the graph."""

    def instances(self, image):
        masks, scores = self.session.run(None, {"image": image[None, None].astype(np.float32, copy=False)})
        return masks, scores


def previous_network(folder: Path) -> foreground.Network | None:
    """The network graph shipped at :data:`PREVIOUS_REVISION` (from git), or None without it."""
    shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{PREVIOUS_REVISION}:models/{foreground.WEIGHTS.name}"],
                           capture_output=True, check=False)
    if shown.returncode != 0:
        return None
    path = folder / "previous.onnx"
    path.write_bytes(shown.stdout)
    return _PastingGraph(path)


class _FreshActions(dict):
    """De-identification's action table as before: resolved anew for every object."""

    def setdefault(self, key, default=None):
        return {}


def _previous_fill_holes(mask):
    box = morphology.bounding_box(mask, pad=1)
    if box is None:
        return mask.copy()
    labels, count = ndimage.label(~mask[box])
    out = mask.copy()
    if count == 0:
        return out
    outside = np.zeros(count + 1, bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        outside[edge] = True
    outside[0] = False
    out[box] = ~outside[labels]
    return out


def _previous_large_components(mask, min_pixels):
    box = (morphology.bounding_box(mask) if mask.ndim == 2 else None) or (slice(None),) * mask.ndim
    labels, count = ndimage.label(mask[box])
    if count == 0:
        return mask
    keep = np.bincount(labels.ravel()) >= min_pixels
    keep[0] = False
    out = np.zeros_like(mask)
    out[box] = keep[labels]
    return out


def _previous_histogram(values, bins, lo, hi):
    return np.histogram(values, bins=bins, range=(lo, hi))


def _previous_network_input(ds, pixels):
    image, clip, high, level = maskrcnn._display(ds, pixels)
    scaled = (image - clip[:, None, None]) / np.maximum(high - clip, 1e-6)[:, None, None]
    return np.clip(scaled, 0, 1).astype(np.float32), image > level[:, None, None]


def _previous_segment(self, ds, pixels, levels=None):
    """The CT path as before: the classical segmenter thresholds the frames afresh, and the
    network's snapped masks are filled before the union (which is filled again)."""
    images, edges = maskrcnn.network_input(ds, pixels)
    masks = foreground.foreground_masks(self.model, images, edges)
    assert has_hounsfield_units(ds) and masks.any(axis=(1, 2)).all(), "the series is CT the network finds"
    united = masks | self.fallback.foreground(ds, pixels)
    return Segmentation(np.stack([morphology.fill_holes(frame) for frame in united]), [None] * len(masks))


def _previous_square(mask, radius, combine):
    """Square erosion and dilation as 2 radius shifted combinations per axis."""
    out = mask
    for axis in (mask.ndim - 2, mask.ndim - 1):
        size = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, constant_values=False)
        window = [slice(None)] * out.ndim
        window[axis] = slice(0, size)
        out = padded[tuple(window)].copy()
        for shift in range(1, 2 * radius + 1):
            window[axis] = slice(shift, shift + size)
            combine(out, padded[tuple(window)], out=out)
    return out


def _previous_message_index(self, slots, shape, n, key):
    """The DCT codec's message indices computed per slot throughout."""
    k = len(self.settings.coefficients)
    b = self.settings.block
    frames, tile_rows, tile_cols = shape[0], shape[1] // b, shape[2] // b
    side = max(1, math.ceil(math.sqrt(n / k))) + self.settings.chunk_extra
    chunks_down, chunks_across = -(-tile_rows // side), -(-tile_cols // side)
    frame, row, col = (np.repeat(index, k) for index in slots.tiles)
    coefficient = np.tile(np.arange(k), len(slots.tiles[0]))
    chunk_row, chunk_col = frame * chunks_down + row // side, col // side
    within = ((row % side) * side + col % side) * k + coefficient
    if self.settings.layout == 1:
        chunk = chunk_row * chunks_across + chunk_col
        bit = dct._affine_chunks(within, chunk, side * side * k, frames * chunks_down * chunks_across, n,
                                 dct._seed(key, b"chunks", shape, {"n": n, **self._seed_params()}))
    else:
        rng = np.random.Generator(np.random.PCG64(dct._seed(key, b"shifts", shape, {"n": n, **self._seed_params()})))
        order = rng.permutation(n)
        start = rng.random()
        shift = np.floor((start + chunk_row * dct._R2[0] + chunk_col * dct._R2[1]) % 1 * n).astype(np.int64)
        bit = order[(within + shift) % n]
    return np.where(slots.header_index >= 0, -1, bit)


def _previous_best_chunks(self, usable, n, key):
    """Each chunk size's candidate drawing the image's slots again, embed drawing them once more."""
    draws = self._placement(usable, key)[1]
    best, fewest = self, n + 1
    for extra in range(dct._CHUNK_CHOICES):
        codec = dct.DctCodec(dataclasses.replace(self.settings, chunk_extra=extra))
        copies = np.zeros(n, dtype=bool)
        for slots in draws.batches(len(codec.settings.coefficients), codec.settings.step):
            index = codec._message_index(slots, usable.shape, n, key)
            copies[index[index >= 0]] = True
        missing = n - int(np.count_nonzero(copies))
        if missing < fewest:
            best, fewest = codec, missing
        if missing == 0:
            break
    return best


REPLACED = {(morphology, "fill_holes"): _previous_fill_holes, (foreground, "fill_holes"): _previous_fill_holes,
                (maskrcnn, "fill_holes"): _previous_fill_holes, (classical, "fill_holes"): _previous_fill_holes,
                (classical, "large_components"): _previous_large_components,
                (classical, "histogram"): _previous_histogram,
                (maskrcnn, "network_input"): _previous_network_input,
                (maskrcnn.MaskRCNNSegmenter, "segment"): _previous_segment,
                (morphology, "_square"): _previous_square,
                (dct.DctCodec, "_message_index"): _previous_message_index,
                (dct.DctCodec, "_best_chunks"): _previous_best_chunks}


def replaced(pipeline: Pipeline, clock: CpuClock, folder: Path) -> tuple[dict, dict]:
    """(current, previous) implementations to swap object by object: the network graph (when
    git has the previous one), de-identification's action table, and segmentation's hole
    filling, component removal, network input and CT path; the DCT codec's message placement."""
    current: dict = {(deidentify, "_ACTIONS"): deidentify._ACTIONS,
                     **{key: getattr(*key) for key in REPLACED}}
    previous: dict = {(deidentify, "_ACTIONS"): _FreshActions(), **REPLACED}
    old = previous_network(folder)
    for handler in pipeline.handlers:
        model = getattr(getattr(getattr(handler, "policy", None), "validated", None), "model", None)
        if model is not None and old is not None:
            current[(model, "instances")] = model.instances  # already timed by instrumented()
            previous[(model, "instances")] = clock.wrap("network", old.instances)
    if old is None:
        print(f"(git has no {PREVIOUS_REVISION}: the previous network graph is not compared)")
    return current, previous


def use(implementations: dict) -> None:
    for (owner, name), function in implementations.items():
        setattr(owner, name, function)


ORDER = ("read", "decode", "network", "segmentation rest", "embedding", "collect", "seal", "deidentify",
         "collect + seal + de-identification", "encode", "encode: lossless proof", "write")


def report(rows: list[Totals], label: str) -> None:
    print(f"{label}: CPU ms per object (process time, one thread), median / mean of {len(rows)}")
    total = [sum(row.get(name, 0.0) for name in ORDER if name not in GROUPS) for row in rows]
    for name in ORDER:
        values = [1000 * row.get(name, 0.0) for row in rows]
        indent = "    " if name in ("collect", "seal", "deidentify", "encode: lossless proof") else "  "
        print(f"{indent}{name:<36} {statistics.median(values):7.1f} {statistics.mean(values):7.1f}")
    ms = 1000 * statistics.mean(total)
    print(f"  {'total (worker)':<36} {1000 * statistics.median(total):7.1f} {ms:7.1f}"
          f"  -> 2 free cores: {2000 / ms:.1f} objects/s before the node's main process")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--syntax", default=None, help="a [storage] transfer_syntax choice (default: the default)")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of the counted objects")
    parser.add_argument("--compare", action="store_true",
                        help="also the implementations this work replaced (equal results), object by object "
                        "interleaved with the current ones in this process: a before/after under the same load")
    parser.add_argument("--quick", action="store_true", help="CI size: 3 objects after 1 warm-up")
    args = parser.parse_args()
    if args.quick:
        args.instances, args.warmup = 3, 1
    os.environ["OMP_NUM_THREADS"] = "1"  # as the node's workers (ONNX Runtime reads it at load)
    configure_pydicom()
    config = load(None)
    syntax = args.syntax or config.storage.transfer_syntax
    clock = CpuClock()
    with tempfile.TemporaryDirectory(prefix="stegonode-stages-") as tmp:
        node_path, _ = keyfiles.generate(Path(tmp))
        pipeline = instrumented(config, keyfiles.load_node_keys(node_path), syntax, clock)
        series = write_series(Path(tmp) / "series", args.instances + args.warmup)
        for path in series[: args.warmup]:
            protect_file(pipeline, path, clock)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        previous: list[Totals] = []
        rows = []
        current_code, previous_code = replaced(pipeline, clock, Path(tmp)) if args.compare else ({}, {})
        for number, path in enumerate(series[args.warmup:]):
            if not args.compare:
                rows.append(protect_file(pipeline, path, clock))
                continue
            for old in ((True, False) if number % 2 else (False, True)):  # interleaved, alternating first
                use(previous_code if old else current_code)
                (previous if old else rows).append(protect_file(pipeline, path, clock))
        use(current_code)
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
    one, five, _ = os.getloadavg()
    label = (f"{args.instances} CT slices 512x512, default pipeline, stored as {syntax} "
             f"(load average {one:.1f}/{five:.1f} on {os.cpu_count()} CPUs)")
    if previous:
        report(previous, f"{label}, the implementations this round replaced")
    report(rows, label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
