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

``--cpu`` also measures what one C-STORE costs the receiver: CPU milliseconds per instance of
Orthanc's process and of the node's process group with ``workers = 0`` (receiving alone: its
receiver processes), and how busy the machine's CPUs were meanwhile (/proc/stat; the senders
and the kernel included). Where the CPUs are nearly all busy, the answer rate can only rise by
costing less CPU per C-STORE.

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


def orthanc(directory: Path, batches: list[list[Path]]) -> tuple[float, float, float]:
    """Answer rate; CPU ms per instance of Orthanc's process and the CPUs' busy share meanwhile."""
    port, instances = free_port(), sum(map(len, batches))
    with ingest.server(ingest.orthanc_command(directory, port), port, directory) as process:
        cpu, busy = ingest.process_cpu(process.pid), cpu_times()
        seconds = ingest.send(port, batches, "ANY-SCP")
        cpu, busy = ingest.process_cpu(process.pid) - cpu, busy_share(busy, cpu_times())
    return instances / seconds, 1000 * cpu / instances, busy


def receiving_alone(directory: Path, batches: list[list[Path]]) -> tuple[float, float, float]:
    """The node with workers = 0: answer rate, CPU ms per instance of its process group (its
    receivers), the CPUs' busy share meanwhile."""
    instances = sum(map(len, batches))
    process = NodeProcess(directory, workers=0).start()
    try:
        assert process.process is not None
        cpu, busy = ingest.group_cpu(process.process.pid), cpu_times()
        seconds = ingest.send(process.port, batches, "STEGONODE")
        cpu, busy = ingest.group_cpu(process.process.pid) - cpu, busy_share(busy, cpu_times())
        return instances / seconds, 1000 * cpu / instances, busy
    finally:
        process.stop()


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat's first line: user, nice, system, idle, iowait, ...)."""
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def busy_share(before: list[int], after: list[int]) -> float:
    """The share of CPU time between two :func:`cpu_times` that was not idle or waiting on I/O."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return 1 - (spent[3] + spent[4]) / max(1, sum(spent))


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
    parser.add_argument("--cpu", action="store_true",
                        help="also CPU ms per C-STORE (Orthanc; the node receiving alone) and the CPUs' busy share")
    parser.add_argument("--before", metavar="GIT-REF", help="also the node at this commit, in the same rounds")
    parser.add_argument("--quick", action="store_true",
                        help="a check that it runs: 24 instances, one round, classical segmenter, --cpu (figures meaningless)")
    args = parser.parse_args()
    if args.quick:
        args.instances, args.repeats, args.segmenter, args.cpu = 24, 1, "classical", True
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
                rate, cpu, busy = orthanc(Path(tempfile.mkdtemp(dir=work)), batches)
                samples[f"Orthanc {label}"].append(rate)
                if args.cpu:
                    samples[f"Orthanc cpu {label}"].append(cpu)
                    samples[f"Orthanc busy {label}"].append(100 * busy)
                    rate, cpu, busy = receiving_alone(Path(tempfile.mkdtemp(dir=work)), batches)
                    samples[f"receiving alone {label}"].append(rate)
                    samples[f"receiving alone cpu {label}"].append(cpu)
                    samples[f"receiving alone busy {label}"].append(100 * busy)
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
    if args.cpu:
        print("\nWhat a C-STORE costs the receiver (CPU ms per instance), and the CPUs' busy share meanwhile")
        for name, what in (("Orthanc", "Orthanc's process"), ("receiving alone", "stegonode, workers = 0")):
            print(f"{what + ', instances/s':<34}" + "".join(f"{median[f'{name} {k}']:>15.1f} " for k in labels))
            print(f"{what + ', CPU ms':<34}" + "".join(f"{median[f'{name} cpu {k}']:>15.2f} " for k in labels))
            print(f"{what + ', CPUs busy %':<34}" + "".join(f"{median[f'{name} busy {k}']:>15.0f} " for k in labels))


if __name__ == "__main__":
    main()
