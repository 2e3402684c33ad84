#!/usr/bin/env python
"""The door alone: C-STORE answer rate of stegonode serve and Orthanc's queue mode against Orthanc.

A lighter companion of ``benchmarks/ingest.py`` for the receiving side: the same series (real
512x512 16-bit CT slices, each with its own UIDs) sent by DCMTK's storescu (TCP_NODELAY=1) over
one association and over four simultaneous ones, to Orthanc alone, to ``stegonode serve`` (its
default configuration: workers protect behind it while it receives, as in production) and,
with ``--queue``, to Orthanc with the plugin in queue mode; rounds interleaved, so a machine
that drifts weighs on all alike. Prints instances per second to the last C-STORE response
(median of rounds), the ratios to Orthanc, and per round each figure (the machine is shared:
the ratios of one run are the figure). Run from the repository root::

    .venv/bin/python benchmarks/door.py [--instances 200] [--repeats 3] [--queue] [--segmenter classical]
                                        [--before GIT-REF]

``--before REF`` also measures the node as it was at commit REF (``git archive`` into a temporary
directory, imported first through PYTHONPATH), in the same rounds: a before/after on one machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # noqa: E402  (benchmarks/ingest.py: the same senders and receivers)

from stegonode.node.config import DEFAULTS, SEGMENTER_CHOICES  # noqa: E402

from nodes import NodeProcess, free_port, write_series  # noqa: E402  (tests/, via ingest)


def orthanc(directory: Path, batches: list[list[Path]]) -> float:
    port = free_port()
    with ingest.server(ingest.orthanc_command(directory, port), port, directory):
        return sum(map(len, batches)) / ingest.send(port, batches, "ANY-SCP")


def stegonode(directory: Path, batches: list[list[Path]], segmenter: str, node: dict,
              code: Path | None = None) -> tuple[float, float]:
    """Answer rate, and seconds from the first C-STORE to the last instance stored protected;
    ``code``: a directory holding another version of the package (``stegonode/``)."""
    instances = sum(map(len, batches))
    process = NodeProcess(directory, tables={"handlers.segment": {"segmenter": segmenter}}, **node)
    previous = os.environ.get("PYTHONPATH")
    if code is not None:
        os.environ["PYTHONPATH"] = str(code)
    try:
        process.start()
    finally:
        if code is not None:
            os.environ.pop("PYTHONPATH") if previous is None else os.environ.update(PYTHONPATH=previous)
    try:
        started = time.perf_counter()
        seconds = ingest.send(process.port, batches, "STEGONODE")
        process.wait_idle(instances, timeout=600)
        return instances / seconds, time.perf_counter() - started
    finally:
        process.stop()


def queue_mode(directory: Path, batches: list[list[Path]], segmenter: str) -> tuple[float, float]:
    rate, to_stored, _ = ingest.plugin_rate(directory, batches, segmenter, "queue")
    return rate, to_stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=200, help="a multiple of 4 (default 200)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--segmenter", choices=SEGMENTER_CHOICES,
                        default=DEFAULTS["handlers"]["segment"]["segmenter"])
    parser.add_argument("--queue", action="store_true", help="also Orthanc with the plugin in queue mode")
    parser.add_argument("--receivers", type=int, default=None,
                        help="stegonode's node.receivers (default: the node default)")
    parser.add_argument("--only-one", action="store_true", help="one association only")
    parser.add_argument("--before", metavar="GIT-REF", help="also the node at this commit, in the same rounds")
    parser.add_argument("--quick", action="store_true",
                        help="a check that it runs: 24 instances, one round, classical segmenter (figures meaningless)")
    args = parser.parse_args()
    if args.quick:
        args.instances, args.repeats, args.segmenter = 24, 1, "classical"
    ingest.INSTANCES = args.instances
    node = {} if args.receivers is None else {"receivers": args.receivers}
    samples: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="stegonode-door-") as tmp:
        work = Path(tmp)
        series = write_series(work / "series", args.instances)
        layouts = [("1", [series]), ("4", [series[i::4] for i in range(4)])][: 1 if args.only_one else 2]
        before = None
        if args.before:
            before = work / "before"
            (before / "stegonode").mkdir(parents=True)
            archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(before / "stegonode")], input=archive, check=True)
        for round_ in range(1, args.repeats + 1):
            for label, batches in layouts:
                samples[f"Orthanc {label}"].append(orthanc(Path(tempfile.mkdtemp(dir=work)), batches))
                rate, stored = stegonode(Path(tempfile.mkdtemp(dir=work)), batches, args.segmenter, node)
                samples[f"stegonode {label}"].append(rate)
                samples[f"stegonode stored {label}"].append(stored)
                if before is not None:
                    rate, stored = stegonode(Path(tempfile.mkdtemp(dir=work)), batches, args.segmenter, {}, before)
                    samples[f"before {label}"].append(rate)
                    samples[f"before stored {label}"].append(stored)
                if args.queue:
                    rate, stored = queue_mode(Path(tempfile.mkdtemp(dir=work)), batches, args.segmenter)
                    samples[f"queue mode {label}"].append(rate)
                    samples[f"queue mode stored {label}"].append(stored)
            print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in samples.items()), flush=True)
    median = {key: statistics.median(values) for key, values in samples.items()}
    print(f"\n{args.instances} instances, segmenter {args.segmenter}, median of {args.repeats} rounds")
    print(f"{'':<34}{'1 association':>15}{'4 associations':>16}")
    labels = [label for label, _ in layouts]
    names = ["Orthanc", "stegonode"] + (["before"] if args.before else []) + (["queue mode"] if args.queue else [])
    for name in names:
        print(f"{name + ', instances/s':<34}" + "".join(f"{median[f'{name} {k}']:>15.1f} " for k in labels))
    for name in names[1:]:
        print(f"{name + ' / Orthanc':<34}" + "".join(
            f"{median[f'{name} {k}'] / median[f'Orthanc {k}']:>14.2f}x " for k in labels))
    for name in names[1:]:
        print(f"{name + ', s to last stored protected':<34}" + "".join(
            f"{median[f'{name} stored {k}']:>15.1f} " for k in labels))


if __name__ == "__main__":
    main()
