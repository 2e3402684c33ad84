#!/usr/bin/env python
"""Speed of protect and reveal on one core, segmentation excluded.

Measures, on the bundled real CT 693_UNCR (512 x 512, BitsStored 14, signed) with the default
config: the protect pipeline per handler (decode, collect, seal = compress + encrypt + QR,
embed, de-identify, encode) plus writing the result (``save_as`` to a BytesIO), and reveal with
a precomputed foreground, as a whole and in its parts (decode + setup, extract bits, QR decode,
open + parse, restore) plus writing the re-identified dataset. The foreground is computed once
beforehand (cover image for protect, stego image for reveal), so the classical segmenter is
timed separately, for information only. Each measurement: 3 warm-ups, then 30 runs; the table
gives median and 90th percentile in milliseconds and compares the totals with the target
"<= 25 ms each on one core".

The process pins itself to CPU 0 and sets OMP_NUM_THREADS and friends to 1 before numpy is
imported (equivalent to ``taskset -c 0``). Run from the repository root::

    .venv/bin/python benchmarks/speed.py [--quick]
"""

from __future__ import annotations

import os

import _one_core  # noqa: F401  (first: one BLAS thread, CPU 0)

# isort: split

import argparse  # noqa: E402
import copy  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom import Dataset  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402

from stegonode.codecs import keys as keyfiles  # noqa: E402
from stegonode.codecs import payload  # noqa: E402
from stegonode.codecs.registry import make_codec
from stegonode.codecs.seal import open_sealed  # noqa: E402
from stegonode.dicom.pixels import PixelFormat, read_pixels
from stegonode.handlers.collect import parse  # noqa: E402
from stegonode.handlers.deidentify import restore  # noqa: E402
from stegonode.handlers.pipeline import Pipeline, build_pipeline  # noqa: E402
from stegonode.handlers.protection import read_protection, remove_protection
from stegonode.handlers.reveal import message_modules, reveal, usable_in  # noqa: E402
from stegonode.handlers.seal import payload_dictionary, stego_binding  # noqa: E402
from stegonode.handlers.segment import SegmenterPolicy, SegmentHandler
from stegonode.node.config import load  # noqa: E402
from stegonode.segmenters.base import Segmentation
from stegonode.segmenters.classical import ClassicalSegmenter

WARMUP = 3
RUNS = 30
TARGET_MS = 25.0
Timings = dict[str, float]  # step name -> seconds


@dataclass(frozen=True)
class FixedForeground:
    """A segmenter that returns a mask computed beforehand (keeps the classical name)."""

    mask: np.ndarray
    name: str = "classical"
    version: str = "1"
    proves_background: bool = False

    def params(self) -> dict:
        return {}

    def foreground(self, ds: Dataset, pixels: np.ndarray) -> np.ndarray:
        return self.mask

    def segment(self, ds: Dataset, pixels: np.ndarray, levels=None) -> Segmentation:
        return Segmentation(self.mask, [None] * len(self.mask))


def repeat(run: Callable[[], Timings], warmup: int = WARMUP, runs: int = RUNS) -> list[Timings]:
    """``warmup`` discarded runs, then ``runs`` recorded ones."""
    for _ in range(warmup):
        run()
    return [run() for _ in range(runs)]


def elapsed(start: float) -> float:
    return time.perf_counter() - start


def write(ds: Dataset) -> float:
    """Seconds to write ``ds`` as a DICOM file into memory."""
    start = time.perf_counter()
    ds.save_as(io.BytesIO(), enforce_file_format=True)
    return elapsed(start)


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def protect_once(pipeline: Pipeline, raw: bytes) -> Timings:
    """Protect a freshly parsed copy of ``raw``; handler timings without 'segment', plus write."""
    ds = pydicom.dcmread(io.BytesIO(raw))
    instance = pipeline.run(ds)  # the handlers alone, timed (protect_object adds decode and encode)
    timings = {name: seconds for name, seconds in instance.timings.items() if name != "segment"}
    timings["write"] = write(ds)
    return timings


def reveal_once(raw: bytes, keys: keyfiles.PeerKeys, foreground: np.ndarray) -> Timings:
    """The reveal() call on a freshly parsed stego object, then writing its result."""
    ds = pydicom.dcmread(io.BytesIO(raw))
    start = time.perf_counter()
    revealed = reveal(ds, keys, foreground=foreground)
    return {"reveal": elapsed(start), "write": write(revealed.dataset)}


def reveal_parts_once(raw: bytes, keys: keyfiles.PeerKeys, foreground: np.ndarray) -> Timings:
    """handlers.reveal.reveal step by step (key-id checks left out), each step timed."""
    ds = pydicom.dcmread(io.BytesIO(raw))
    timings: Timings = {}
    start = time.perf_counter()
    protection = read_protection(ds)
    pixels = read_pixels(ds)
    usable = usable_in(ds, pixels, protection, foreground)
    codec = make_codec(protection.codec, protection.params)
    timings["setup"] = elapsed(start)
    start = time.perf_counter()
    bits = codec.extract(pixels, usable, keys.embedding_key, PixelFormat.of(ds).value_range)
    timings["extract"] = elapsed(start)
    start = time.perf_counter()
    text = payload.from_qr(message_modules(bits, protection.message_layout))
    timings["qr"] = elapsed(start)
    start = time.perf_counter()
    plain = open_sealed(payload.from_text(text), keys.recipient_private_key, stego_binding(ds))
    attributes = parse(payload.decompress(plain, payload_dictionary(protection.payload_dictionary)))
    timings["open"] = elapsed(start)
    start = time.perf_counter()
    restored = copy.deepcopy(ds)
    remove_protection(restored)
    restore(restored, attributes)
    restored.file_meta.MediaStorageSOPInstanceUID = restored.SOPInstanceUID
    timings["restore"] = elapsed(start)
    return timings


def segment_once(ds: Dataset, pixels: np.ndarray) -> Timings:
    start = time.perf_counter()
    ClassicalSegmenter().foreground(ds, pixels)
    return {"segment": elapsed(start)}


def stats(runs: list[Timings], names: tuple[str, ...]) -> tuple[float, float]:
    """Median and p90 in ms of the per-run sum of ``names``."""
    ms = np.array([sum(run[name] for name in names) for run in runs]) * 1000
    return float(np.median(ms)), float(np.percentile(ms, 90))


def row(label: str, runs: list[Timings], names: tuple[str, ...], verdict: bool = False) -> str:
    median, p90 = stats(runs, names)
    line = f"  {label:<42}{median:>9.2f}{p90:>9.2f}"
    if verdict:
        line += f"   target <= {TARGET_MS:.0f} ms: {'PASS' if p90 <= TARGET_MS else 'FAIL'} (p90)"
    return line


def print_table(protect: list[Timings], revealed: list[Timings], parts: list[Timings],
                segment: list[Timings], report: dict) -> None:
    protect_steps = ("decode", "collect", "seal", "embed", "deidentify", "encode", "write")
    print(f"{'':<44}{'median':>9}{'p90':>9}   (ms, {len(protect)} runs after the warm-ups)")
    print("protect (default config, segmentation excluded)")
    print(row("decode pixels", protect, ("decode",)))
    print(row("collect", protect, ("collect",)))
    print(row("seal (compress + encrypt + QR)", protect, ("seal",)))
    print(row("embed (DCT QIM)", protect, ("embed",)))
    print(row("de-identify", protect, ("deidentify",)))
    print(row("encode (protection block + pixels)", protect, ("encode",)))
    print(row("write (save_as to BytesIO)", protect, ("write",)))
    print(row("collect + seal + QR", protect, ("collect", "seal")))
    print(row("de-identify + encode + write", protect, ("deidentify", "encode", "write")))
    print(row("TOTAL protect", protect, protect_steps, verdict=True))
    print("reveal (foreground given: stego-image mask)")
    print(row("reveal() call", revealed, ("reveal",)))
    print(row("  decode pixels + setup", parts, ("setup",)))
    print(row("  extract bits (codec.extract)", parts, ("extract",)))
    print(row("  QR decode (zbar)", parts, ("qr",)))
    print(row("  open + decompress + parse", parts, ("open",)))
    print(row("  QR decode + open + parse", parts, ("qr", "open")))
    print(row("  restore (copy + header)", parts, ("restore",)))
    print(row("write (save_as to BytesIO)", revealed, ("write",)))
    print(row("TOTAL reveal", revealed, ("reveal", "write"), verdict=True))
    print("for information (not in the totals)")
    print(row("classical segmenter (cover image)", segment, ("segment",)))
    print(f"payload {report['payload_bytes']} B, PSNR {report['psnr_db']:.1f} dB "
          f"(peak 2^BitsStored-1), {report['changed_pixels']} pixels changed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI size: 1 warm-up and 3 runs per measurement")
    args = parser.parse_args()
    warmup, runs = (1, 3) if args.quick else (WARMUP, RUNS)
    source = Path(get_testdata_file("693_UNCR.dcm"))
    raw = source.read_bytes()
    config = load(None)
    with tempfile.TemporaryDirectory() as tmp:
        node_path, peer_path = keyfiles.generate(Path(tmp))
        node_keys, peer_keys = keyfiles.load_node_keys(node_path), keyfiles.load_peer_keys(peer_path)

    cover = pydicom.dcmread(source)
    cover_pixels = read_pixels(cover)
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys)
    fixed_mask = FixedForeground(ClassicalSegmenter().foreground(cover, cover_pixels))
    fixed = SegmentHandler(SegmenterPolicy(fixed_mask, frozenset({str(cover.Modality)}), None))
    pipeline.handlers = [fixed if h.name == "segment" else h for h in pipeline.handlers]

    stego = pydicom.dcmread(io.BytesIO(raw))
    report = pipeline.run(stego).report  # a stego object protected again on purpose: protect_object keeps it
    stego_raw = to_bytes(stego)
    stego_foreground = ClassicalSegmenter().foreground(stego, read_pixels(stego))

    print(f"693_UNCR {cover.Rows}x{cover.Columns}, BitsStored {cover.BitsStored}; "
          f"CPU affinity {sorted(os.sched_getaffinity(0))}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
          f"Python {platform.python_version()}, numpy {np.__version__}, pydicom {pydicom.__version__}")
    print_table(
        protect=repeat(lambda: protect_once(pipeline, raw), warmup, runs),
        revealed=repeat(lambda: reveal_once(stego_raw, peer_keys, stego_foreground), warmup, runs),
        parts=repeat(lambda: reveal_parts_once(stego_raw, peer_keys, stego_foreground), warmup, runs),
        segment=repeat(lambda: segment_once(cover, cover_pixels), warmup, runs),
        report=report,
    )


if __name__ == "__main__":
    main()
