#!/usr/bin/env python
"""Memory of protecting one large multi-frame object, as a node's worker protects it.

Writes a multi-frame 16-bit CT object (``--frames`` frames of ``--side`` x ``--side`` pixels,
each a real CT slice of pydicom-data scaled up, with its own noise; 100 x 1024 x 1024 is the
200 MiB object of issue 28), then in a fresh process: loads the default pipeline, protects a
one frame of the same size to warm it up (its per-frame working set is then part of the base, as in
a worker that has protected such frames), and records the resident set size (RSS) as the base; resets the
peak (``/proc/self/clear_refs``), reads, protects and serializes the large object as a worker
does (``read_dicom``, ``Pipeline.protect``, ``dicom_bytes``), and records the peak RSS
(``VmHWM``); then drops the object, hands memory back as a worker does after a large object
(``release_memory``), and records the RSS again. Prints one JSON line: MiB of decoded pixels,
base, peak, after; and the peak over the base in multiples of the decoded pixels (the stated
bound: 4). Run from the repository root::

    .venv/bin/python benchmarks/memory.py [--frames 100] [--side 1024] [--syntax jpeg-ls-lossless] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MiB = 1 << 20


def write_object(path: Path, frames: int, side: int, seed: int = 0) -> int:
    """A ``frames``-frame CT object of ``side`` x ``side`` 16-bit pixels; its decoded bytes."""
    ds = pydicom.dcmread(str(get_testdata_file("693_UNCR.dcm")))
    base = ds.pixel_array.astype(np.int16)
    scale = -(-side // base.shape[0])
    big = np.kron(base, np.ones((scale, scale), np.int16))[:side, :side]
    rng = np.random.default_rng(seed)
    low, high = -(1 << (int(ds.BitsStored) - 1)), (1 << (int(ds.BitsStored) - 1)) - 1
    pixels = np.empty((frames, side, side), np.int16)
    for index in range(frames):
        pixels[index] = np.clip(big + rng.integers(-3, 4, big.shape, dtype=np.int16), low, high)
    ds.Rows = ds.Columns = side
    ds.NumberOfFrames = frames
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return pixels.nbytes


def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_here(path: Path, syntax: str | None) -> dict[str, float]:
    """In this process: base, peak and after (MiB) for protecting ``path`` as a worker does."""
    os.environ["OMP_NUM_THREADS"] = "1"
    from stegonode.codecs import keys as keyfiles
    from stegonode.dicom.dicomfile import configure_pydicom, dicom_bytes, read_dicom
    from stegonode.handlers.pipeline import build_pipeline
    from stegonode.node.config import load
    from stegonode.node.native import release_memory

    configure_pydicom()
    config = load(None)
    with tempfile.TemporaryDirectory(prefix="stegonode-memory-") as tmp:
        keys = keyfiles.load_node_keys(keyfiles.generate(Path(tmp))[0])
    pipeline = build_pipeline(config["pipeline"]["handlers"], config["handlers"], keys,
                              config["pipeline"]["carriers"], syntax or config.storage.transfer_syntax)
    # A warm worker: one frame of the same size protected (its per-frame working set, the
    # network's buffers, the codec's batch are then part of the base, as in a worker that has
    # protected such frames before).
    warm = path.with_name("warm.dcm")
    write_object(warm, 1, int(pydicom.dcmread(path, stop_before_pixels=True).Rows), seed=1)
    dicom_bytes(_protected(pipeline, read_dicom(warm)))
    base = rss_kib()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    stored = dicom_bytes(_protected(pipeline, read_dicom(path)))
    peak = rss_kib("VmHWM")
    size = len(stored)
    del stored
    release_memory()
    after = rss_kib()
    return {"base_mib": base / 1024, "peak_mib": peak / 1024, "after_mib": after / 1024,
            "stored_mib": size / MiB}


def _protected(pipeline, ds):
    pipeline.admit(ds)
    pipeline.run(ds)  # the pipeline's memory; the stored bytes are measured below
    return ds


def measure(frames: int, side: int, syntax: str | None = None) -> dict[str, float]:
    """Write the object, measure in a fresh process; figures in MiB and the peak's multiple."""
    with tempfile.TemporaryDirectory(prefix="stegonode-memory-") as tmp:
        path = Path(tmp) / "large.dcm"
        decoded = write_object(path, frames, side)
        command = [sys.executable, __file__, "--measure", str(path)] + (["--syntax", syntax] if syntax else [])
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"measuring process failed: {result.stderr[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["decoded_mib"] = decoded / MiB
    figures["peak_over_base"] = (figures["peak_mib"] - figures["base_mib"]) / figures["decoded_mib"]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--side", type=int, default=1024)
    parser.add_argument("--syntax", default=None, help="a [storage] transfer_syntax choice (default: the default)")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="CI size: 8 frames of 512 x 512")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.side = 8, 512
    if args.measure:
        print(json.dumps(measure_here(args.measure, args.syntax)))
        return 0
    figures = measure(args.frames, args.side, args.syntax)
    print(json.dumps({key: round(value, 2) for key, value in figures.items()}))
    print(f"{args.frames} frames of {args.side} x {args.side}: decoded {figures['decoded_mib']:.0f} MiB; "
          f"RSS base {figures['base_mib']:.0f} MiB, peak {figures['peak_mib']:.0f} MiB "
          f"(base + {figures['peak_over_base']:.2f} x decoded; bound 4), after {figures['after_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
