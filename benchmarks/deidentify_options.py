#!/usr/bin/env python
"""Cost of the PS3.15 options, date shifting and the residual-identity check on one core.

De-identifies the header of the bundled real CT 693_UNCR (pixel data left out, as collect does)
with the Basic Profile alone, with the default options, and with every option (but full dates),
and prints the median and 90th percentile in milliseconds per header (3 warm-ups, 200 runs), and
the identity occurrences the residual check removed. Protect de-identifies each header twice
(collect on a copy, then the deidentify handler). Then the sealed payload (pixel carrier) and
header carrier bytes per image, Basic Profile alone against the default options (what changes is
what is carried: kept descriptors are not, shifted sequences are, whole), protected with the
classical segmenter. Run from the repository root::

    .venv/bin/python benchmarks/deidentify_options.py [--quick]

``--quick``: 20 runs per choice and 693_UNCR alone for the payload sizes (a smoke run).
"""

from __future__ import annotations

import _one_core  # noqa: F401  (first: one BLAS thread, CPU 0)

# isort: split

import argparse  # noqa: E402
import copy  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pydicom  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402

from stegonode.codecs import keys as keyfiles  # noqa: E402
from stegonode.errors import StegonodeError  # noqa: E402
from stegonode.handlers.deidentify import deidentifier  # noqa: E402
from stegonode.handlers.options import OPTIONS  # noqa: E402
from stegonode.handlers.pipeline import PipelineContext, build_pipeline  # noqa: E402
from stegonode.handlers.protect import protect_object  # noqa: E402
from stegonode.handlers.seal import CARRIERS  # noqa: E402
from stegonode.node import config as node_config  # noqa: E402

RUNS, WARMUPS = 200, 3
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
CHOICES = {
    "Basic Profile only": [],
    "default options": None,
    "every option but full dates": [name for name in OPTIONS if name != "retain_longitudinal_full_dates"],
}


def main() -> None:
    global RUNS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 runs, 693_UNCR alone")
    args = parser.parse_args()
    if args.quick:
        RUNS = 20
    with tempfile.TemporaryDirectory() as directory:
        keyfiles.generate(Path(directory))
        keys = keyfiles.load_node_keys(Path(directory) / "node.keys")
    ds = pydicom.dcmread(get_testdata_file("693_UNCR.dcm"))
    del ds.PixelData
    print(f"{'options':<30} {'median ms':>10} {'p90 ms':>8} {'residues':>9}")
    for label, options in CHOICES.items():
        settings = copy.deepcopy(node_config.DEFAULTS["handlers"])
        if options is not None:
            settings["deidentify"]["options"] = options
        deidentify = PipelineContext(settings, keys, CARRIERS).shared(deidentifier)
        copies = [copy.deepcopy(ds) for _ in range(RUNS + WARMUPS)]
        times, removed = [], 0
        for number, header in enumerate(copies):
            start = time.perf_counter()
            removed = deidentify(header)
            if number >= WARMUPS:
                times.append(1000 * (time.perf_counter() - start))
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{label:<30} {statistics.median(times):>10.2f} {p90:>8.2f} {removed:>9}")
    payload_sizes(keys, args.quick)


def payload_sizes(keys, quick: bool = False) -> None:
    images = [Path(get_testdata_file(name)) for name in ("693_UNCR.dcm", "MR2_UNCR.dcm", "RG1_UNCR.dcm")]
    images += sorted(REALDATA.glob("*_fodicom_1.dcm")) if REALDATA.is_dir() else []
    if quick:
        images = images[:1]
    print(f"\n{'image':<22} {'basic pixels B':>15} {'header B':>9} {'default pixels B':>17} {'header B':>9}")
    for path in images:
        row = []
        for options in ([], None):
            settings = copy.deepcopy(node_config.DEFAULTS["handlers"])
            settings["segment"]["segmenter"] = "classical"
            if options is not None:
                settings["deidentify"]["options"] = options
            pipeline = build_pipeline(node_config.DEFAULTS["pipeline"]["handlers"], settings, keys)
            try:
                report = protect_object(pydicom.dcmread(path), pipeline).report
            except StegonodeError as exc:
                row = [f"refused: {exc}"[:40]]
                break
            row += [report.get("payload_bytes", "-"), report.get("header_bytes", "-")]
        print(f"{path.name:<22} " + " ".join(f"{value!s:>{width}}" for value, width in zip(row, (15, 9, 17, 9), strict=False)))


if __name__ == "__main__":
    main()
