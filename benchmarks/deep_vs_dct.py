#!/usr/bin/env python
"""The ``deep`` codec beside the ``dct`` codec on the protect/reveal round-trip set.

For every image of the round-trip set (tests/images.py: the decodable grayscale images of
pydicom-data and pydicom's test files, 256 pixels or more a side, test patterns excepted),
protect it with each codec (default pipeline, fresh keys, node.toml defaults otherwise), write
it to a file, read it back and reveal it. A success is a reveal whose recovered attributes equal
the original header's values, element by element. Each row gives, per codec: the outcome (ok,
"too small" for a CapacityError, or the error class), PSNR at the stored peak 2^BitsStored-1
over the whole image, changed pixels and protect + reveal seconds (one thread). Run from the repository root::

    .venv/bin/python benchmarks/deep_vs_dct.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import pydicom

from stegonode.codecs import keys as keyfiles
from stegonode.errors import CapacityError, StegonodeError
from stegonode.handlers.pipeline import build_pipeline
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.node import config as node_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from images import ROUND_TRIP, image_path  # noqa: E402

CODECS = ("dct", "deep")


def _attempt(pipeline, peer_keys, name: str) -> tuple[str, dict, float]:
    """Outcome, protect report and seconds for one image and one pipeline."""
    original = pydicom.dcmread(image_path(name))
    ds = copy.deepcopy(original)
    start = time.perf_counter()
    try:
        report = protect_object(ds, pipeline).report
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        buffer.seek(0)
        attributes = reveal(pydicom.dcmread(buffer), peer_keys).attributes
    except CapacityError:
        return "too small", {}, time.perf_counter() - start
    except StegonodeError as exc:
        return type(exc).__name__, {}, time.perf_counter() - start
    exact = all(element.value == original[element.tag].value for element in attributes)
    return ("ok" if exact else "WRONG"), report, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI size: 693_UNCR only")
    names = ["693_UNCR.dcm"] if parser.parse_args().quick else ROUND_TRIP
    os.environ["OMP_NUM_THREADS"] = "1"  # ONNX Runtime's threads (stegonode.models.foreground.onnx_threads)
    folder = Path(tempfile.mkdtemp())
    keyfiles.generate(folder)
    node_keys = keyfiles.load_node_keys(folder / keyfiles.NODE_FILE)
    peer_keys = keyfiles.load_peer_keys(folder / keyfiles.PEER_FILE)
    pipelines = {}
    for codec in CODECS:
        config = node_config.defaults()
        config["handlers"]["embed"]["codec"] = codec
        pipelines[codec] = build_pipeline(config["pipeline"]["handlers"], config["handlers"], node_keys, ["pixels"])

    header = f"{'image':36}" + "".join(f" | {codec:>9} {'PSNR dB':>8} {'changed':>8} {'s':>5}" for codec in CODECS)
    print(header)
    print("-" * len(header))
    totals = {codec: [0, 0] for codec in CODECS}  # successes, attempts with enough capacity
    for name in names:
        row = f"{name:36}"
        for codec in CODECS:
            outcome, report, seconds = _attempt(pipelines[codec], peer_keys, name)
            if outcome != "too small":
                totals[codec][1] += 1
                totals[codec][0] += outcome == "ok"
            psnr = f"{report['psnr_db']:8.1f}" if report else f"{'-':>8}"
            changed = f"{report['changed_pixels']:8d}" if report else f"{'-':>8}"
            row += f" | {outcome:>9} {psnr} {changed} {seconds:5.1f}"
        print(row, flush=True)
    print()
    for codec, (ok, tried) in totals.items():
        refused = len(names) - tried
        print(f"{codec}: exact patient data on {ok} of {tried} images with enough capacity; "
              f"{refused} of {len(names)} refused as too small")
    print("PSNR at the stored peak 2^BitsStored - 1, over the whole image, after rounding to stored integers.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
