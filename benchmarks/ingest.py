#!/usr/bin/env python
"""Ingest, retrieve and query speed: stegonode beside DCMTK storescp, pynetdicom and Orthanc.

One run, one table. The same 200-instance series (real 512x512 16-bit CT slices of pydicom-data,
each with its own UIDs) goes by DCMTK's storescu (TCP_NODELAY=1) to

* DCMTK storescp (writes files),
* pynetdicom's storescp app (writes files),
* Orthanc (Debian package; a throwaway config and storage, installed if missing),
* Orthanc with stegonode's plugin (``stegonode orthanc-config``): every instance protected in
  Orthanc's received-instance callback before it is stored and answered (callback mode),
* the same in queue mode (``[orthanc] mode = "queue"``): the callback writes the received bytes
  durably and answers; worker processes protect them and store them into Orthanc,
* Orthanc with a queue front: a callback that only writes the received bytes durably (fsync,
  rename, directory fsync) and discards them, the C-STORE rate a queue design inside Orthanc
  would give (its protection would then run like stegonode's workers),
* stegonode serve (durable ingest: fsync'd files and a committed SQLite job per instance),

once over one association and once over four simultaneous associations of 50 instances, in
rounds (default 3). Figures: the median over rounds of instances per second to the last C-STORE
response, and stegonode's ratios. For the plugin (both modes) and stegonode serve also the seconds
from the first C-STORE sent to the last instance stored protected, and the CPU seconds per
instance of the receiver's whole process group (Orthanc or the node, with their worker
processes) over that time; for stegonode serve the processing
throughput (first receive to last stored protected object), C-MOVE of the series to a DCMTK storescp against pynetdicom's
qrscp app (median of 3), and C-FIND study-level latency (median of 50 requests on one
association). Run from the repository root (pynetdicom's qrscp needs SQLAlchemy, which the
node's index uses too)::

    .venv/bin/python benchmarks/ingest.py [--segmenter maskrcnn] [--instances N] [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pydicom import Dataset  # noqa: E402
from pynetdicom import AE, evt  # noqa: E402
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # noqa: E402

from stegonode.node.config import DEFAULTS, SEGMENTER_CHOICES  # noqa: E402
from stegonode.node.dicomnet import set_nodelay  # noqa: E402

from nodes import DCMTK_ENV, NodeProcess, OrthancProcess, free_port, write_series  # noqa: E402

INSTANCES = 200
PLUGIN = "Orthanc + stegonode plugin"
QUEUE_MODE = "Orthanc + plugin, queue mode"
MODES = {PLUGIN: "callback", QUEUE_MODE: "queue"}
PYTHON = sys.executable


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def server(command: list[str], port: int, cwd: Path):
    with open(cwd / "server.log", "w") as log:
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                   env=DCMTK_ENV)
    try:
        wait_for_port(port)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=60)


def send(port: int, batches: list[list[Path]], called: str) -> float:
    """Seconds from starting storescu to the last one finishing (one association per batch)."""
    start = time.perf_counter()
    senders = [
        subprocess.Popen(["/usr/bin/storescu", "-aec", called, "127.0.0.1", str(port),
                          *map(str, batch)], env=DCMTK_ENV, stderr=subprocess.PIPE, text=True)
        for batch in batches
    ]
    for sender in senders:
        _, errors = sender.communicate()
        if sender.returncode != 0:
            raise RuntimeError(f"storescu failed: {errors[-500:]}")
    return time.perf_counter() - start


def orthanc_command(work: Path, port: int) -> list[str]:
    if not shutil.which("Orthanc"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "orthanc"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    config = {
        "Name": "bench", "DicomAet": "ORTHANC", "DicomPort": port, "HttpPort": free_port(),
        "StorageDirectory": str(work / "storage"), "IndexDirectory": str(work / "index"),
        "DicomCheckCalledAet": False, "RemoteAccessAllowed": False, "Plugins": [],
    }
    (work / "orthanc.json").write_text(json.dumps(config))
    return ["Orthanc", str(work / "orthanc.json")]


# Orthanc's PythonScript for the queue front: durable write of each received instance, then
# DISCARD (Orthanc answers success and stores nothing).
QUEUE_FRONT = """\
import json, os, secrets
import orthanc

INBOX = json.loads(orthanc.GetConfiguration())["BenchInbox"]


def received(data, origin):
    path = os.path.join(INBOX, secrets.token_hex(8) + ".dcm")
    with open(path + ".part", "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(path + ".part", path)
    directory = os.open(INBOX, os.O_RDONLY)
    os.fsync(directory)
    os.close(directory)
    return orthanc.ReceivedInstanceAction.DISCARD, None


orthanc.RegisterReceivedInstanceCallback(received)
"""


def orthanc_queue_front_command(work: Path, port: int) -> list[str]:
    command = orthanc_command(work, port)
    config = json.loads((work / "orthanc.json").read_text())
    (work / "inbox").mkdir()
    (work / "queue_front.py").write_text(QUEUE_FRONT)
    config.update({"Plugins": ["/usr/share/orthanc/plugins/libOrthancPython.so"],
                   "PythonScript": str(work / "queue_front.py"), "BenchInbox": str(work / "inbox")})
    (work / "orthanc.json").write_text(json.dumps(config))
    return command


def group_cpu(group: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group, from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == group:  # fields after the name: state, ppid, pgrp, ... utime, stime
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process, all its threads, not its children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def plugin_rate(directory: Path, batches: list[list[Path]], segmenter: str,
                mode: str) -> tuple[float, float, float]:
    """Instances per second to the last C-STORE response of Orthanc with the plugin in ``mode``,
    the seconds until the last instance is stored protected (Orthanc's statistics), and the CPU
    seconds per instance of Orthanc and its worker processes until then."""
    orthanc = OrthancProcess(directory, tables={"handlers.segment": {"segmenter": segmenter},
                                                "orthanc": {"mode": mode}}).start()
    try:
        assert orthanc.process is not None
        cpu = group_cpu(orthanc.process.pid)
        start = time.perf_counter()
        seconds = send(orthanc.port, batches, "ORTHANC")
        deadline = time.monotonic() + 900
        while (stored := orthanc.json("/statistics")["CountInstances"]) < INSTANCES:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        to_stored = time.perf_counter() - start
        cpu = group_cpu(orthanc.process.pid) - cpu
        if stored != INSTANCES:
            raise RuntimeError(f"Orthanc with the plugin ({mode} mode) stored {stored} of {INSTANCES} instances")
    finally:
        orthanc.stop()
    return INSTANCES / seconds, to_stored, cpu / INSTANCES


def measure_receivers(series: list[Path], work: Path, segmenter: str,
                      repeats: int, four: bool = True) -> dict[str, dict[str, float]]:
    """Instances per second to the last C-STORE response, median of ``repeats`` rounds.

    Each round runs every receiver once, so a machine that drifts faster or slower during the
    benchmark weighs on all of them alike. For stegonode also the processing throughput. Without
    ``four``, over one association only (the 4-association figures are then NaN).
    """
    layouts = (("1 association", [series]), ("4 associations", [series[i::4] for i in range(4)]))[:2 if four else 1]
    receivers: dict[str, Callable[[Path, int], list[str]]] = {
        "DCMTK storescp": lambda d, p: ["/usr/bin/storescp", "-od", str(d), str(p)],
        "pynetdicom storescp": lambda d, p: [PYTHON, "-m", "pynetdicom", "storescp", "-od", str(d), str(p)],
        "Orthanc": orthanc_command,
        "Orthanc + queue front": orthanc_queue_front_command,
    }
    samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for round_ in range(1, repeats + 1):
        for name, command in receivers.items():
            for label, batches in layouts:
                directory = Path(tempfile.mkdtemp(dir=work))
                port = free_port()
                with server(command(directory, port), port, directory):
                    samples[name][label].append(INSTANCES / send(port, batches, "ANY-SCP"))
        for label, batches in layouts:
            for name, mode in MODES.items():
                rate, to_stored, cpu = plugin_rate(Path(tempfile.mkdtemp(dir=work)), batches, segmenter, mode)
                samples[name][label].append(rate)
                samples[name][f"stored protected, {label}"].append(to_stored)
                samples[name][f"CPU s per instance, {label}"].append(cpu)
            received, processed, to_stored, cpu = stegonode_rates(Path(tempfile.mkdtemp(dir=work)), batches, segmenter)
            samples["stegonode"][label].append(received)
            samples["stegonode"][f"processing, {label}"].append(processed)
            samples["stegonode"][f"stored protected, {label}"].append(to_stored)
            samples["stegonode"][f"CPU s per instance, {label}"].append(cpu)
        print(f"  round {round_}/{repeats}: " + ", ".join(
            f"{name} {by_label['1 association'][-1]:.0f}/{by_label.get('4 associations', [math.nan])[-1]:.0f}"
            for name, by_label in samples.items()) + " instances/s (1/4 associations)", flush=True)
    return {name: defaultdict(lambda: math.nan, {label: statistics.median(rates) for label, rates in by_label.items()})
            for name, by_label in samples.items()}


def stegonode_rates(directory: Path, batches: list[list[Path]],
                    segmenter: str, figures: dict[str, float] | None = None) -> tuple[float, float, float, float]:
    """Instances per second received (to the last C-STORE response) and processed (first
    receive to last stored protected object) by a fresh node, the seconds from the first
    C-STORE sent to the last instance stored protected, and the CPU seconds per instance of
    the node and its workers until it was idle. ``figures``, if given, gets
    ``main_cpu``: the CPU seconds per instance of the node's main process alone (receiving,
    index, dispatch; the rest of the group's is its workers')."""
    instances = sum(len(batch) for batch in batches)
    node = NodeProcess(directory, tables={"handlers.segment": {"segmenter": segmenter}}).start()
    try:
        assert node.process is not None
        cpu = group_cpu(node.process.pid)
        main = process_cpu(node.process.pid)
        started = time.time()
        seconds = send(node.port, batches, "STEGONODE")
        node.wait_idle(instances, timeout=600)
        cpu = group_cpu(node.process.pid) - cpu
        if figures is not None:
            figures["main_cpu"] = (process_cpu(node.process.pid) - main) / instances
        ((first, last),) = node.query("SELECT MIN(received_at), MAX(processed_at) FROM jobs")
    finally:
        node.stop()
    return instances / seconds, instances / (last - first), last - started, cpu / instances


def move_rate(port: int, called: str, destination: str, study: str, repeats: int = 3) -> float:
    """Instances per second of a study-level C-MOVE by DCMTK movescu, median of ``repeats``.

    The median, because a peer without TCP_NODELAY (pynetdicom's qrscp) swings by 2x from run
    to run with the timing of delayed ACKs.
    """
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(["/usr/bin/movescu", "-S", "-aec", called, "-aem", destination,
                        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                        "127.0.0.1", str(port)], env=DCMTK_ENV, check=True, capture_output=True)
        rates.append(INSTANCES / (time.perf_counter() - start))
    return statistics.median(rates)


def measure_move_and_find(series: list[Path], work: Path, moves: int = 3, finds: int = 50) -> dict[str, float]:
    scp_port = free_port()
    received = work / "moved"
    received.mkdir()
    figures = {}
    with server(["/usr/bin/storescp", "-aet", "STORESCP", "-od", str(received), str(scp_port)],
                scp_port, work):
        node = NodeProcess(work / "node-move",
                           peers=[{"ae_title": "STORESCP", "host": "127.0.0.1", "port": scp_port}])
        node.start()
        try:
            send(node.port, [series], "STEGONODE")
            node.wait_idle(INSTANCES, timeout=600)
            ((study,),) = node.query("SELECT DISTINCT StudyInstanceUID FROM instances")
            figures["stegonode C-MOVE"] = move_rate(node.port, "STEGONODE", "STORESCP", study, moves)
            figures["stegonode C-FIND ms"] = find_latency(node.port, "STEGONODE", finds)
        finally:
            node.stop()

        qr = work / "qrscp"
        qr.mkdir()
        qr_port = free_port()
        (qr / "qrscp.ini").write_text(
            f"[DEFAULT]\nae_title: QRSCP\nport: {qr_port}\nmax_pdu: 16382\nacse_timeout: 30\n"
            f"dimse_timeout: 30\nnetwork_timeout: 30\nbind_address:\ninstance_location: {qr}/instances\n"
            f"database_location: {qr}/instances.sqlite\nlog_identifier: False\n\n"
            f"[STORESCP]\naddress: 127.0.0.1\nport: {scp_port}\n"
        )
        with server([PYTHON, "-m", "pynetdicom", "qrscp", "-c", str(qr / "qrscp.ini")], qr_port, qr):
            send(qr_port, [series], "QRSCP")
            from pydicom import dcmread

            original_study = dcmread(series[0], stop_before_pixels=True).StudyInstanceUID
            figures["pynetdicom qrscp C-MOVE"] = move_rate(qr_port, "QRSCP", "STORESCP", original_study, moves)
            figures["pynetdicom qrscp C-FIND ms"] = find_latency(qr_port, "QRSCP", finds)
    return figures


def find_latency(port: int, called: str, repeats: int = 50) -> float:
    """Median milliseconds of a study-level C-FIND on an open association."""
    ae = AE(ae_title="BENCH")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title=called,
                         evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)])
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    identifier.PatientID = ""
    identifier.NumberOfStudyRelatedInstances = None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        responses = list(assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind))
        times.append(time.perf_counter() - start)
        assert responses and responses[-1][0].Status == 0
    assoc.release()
    return 1000 * statistics.median(times)


def main() -> None:
    global INSTANCES
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of C-STORE runs; each figure is their median (default 3)")
    parser.add_argument("--segmenter", choices=SEGMENTER_CHOICES,
                        default=DEFAULTS["handlers"]["segment"]["segmenter"],
                        help="the node's segmenter for the ingest runs (default: the node default)")
    parser.add_argument("--instances", type=int, default=INSTANCES,
                        help=f"instances in the series, a multiple of 4 (default {INSTANCES})")
    parser.add_argument("--quick", action="store_true",
                        help="CI size: 4 instances, 1 round over 1 association, classical segmenter, 1 C-MOVE, "
                        "5 C-FINDs")
    args = parser.parse_args()
    moves, finds = 3, 50
    if args.quick:
        args.instances, args.repeats, args.segmenter, moves, finds = 4, 1, "classical", 1, 5
    INSTANCES = args.instances
    with tempfile.TemporaryDirectory(prefix="stegonode-bench-") as tmp:
        work = Path(tmp)
        print(f"writing {INSTANCES} CT instances (512x512, 16-bit) ...", flush=True)
        series = write_series(work / "series", INSTANCES)
        print(f"C-STORE from DCMTK storescu (TCP_NODELAY=1), {args.repeats} rounds:", flush=True)
        received = measure_receivers(series, work, args.segmenter, args.repeats, four=not args.quick)
        report_receivers(received, args.segmenter, args.repeats)  # before C-MOVE: a failure there keeps it
        print("C-MOVE to DCMTK storescp and C-FIND:", flush=True)
        retrieval = measure_move_and_find(series, work, moves, finds)
    report(received, retrieval, args.segmenter, moves, finds)


def report_receivers(received: dict[str, dict[str, float]], segmenter: str, repeats: int) -> None:
    print(f"\n{'receiver':<28}{'1 association':>16}{'4 associations':>16}   instances/s to last C-STORE response, median of {repeats}")
    for name, figures in received.items():
        print(f"{name:<28}{figures['1 association']:>16.1f}{figures['4 associations']:>16.1f}")
    print(f"\nseconds from the first C-STORE sent to the last of {INSTANCES} instances stored protected "
          f"(segmenter {segmenter}), 1 / 4 associations:")
    for name in (*MODES, "stegonode"):
        figures = received[name]
        print(f"{name:<28}{figures['stored protected, 1 association']:>16.1f}"
              f"{figures['stored protected, 4 associations']:>16.1f}")
    print("\nCPU seconds per instance (the receiver's process group, workers included, until the "
          "last instance was stored protected), 1 / 4 associations:")
    for name in (*MODES, "stegonode"):
        figures = received[name]
        print(f"{name:<28}{figures['CPU s per instance, 1 association']:>16.3f}"
              f"{figures['CPU s per instance, 4 associations']:>16.3f}")
    print()
    for label in ("1 association", "4 associations"):
        queue, node = received[QUEUE_MODE], received["stegonode"]
        checks = [
            (f"queue mode / stegonode, stored protected, {label}",
             queue[f"stored protected, {label}"] / node[f"stored protected, {label}"], "<=", 1.2),
            (f"queue mode / Orthanc, C-STORE answers, {label}",
             queue[label] / received["Orthanc"][label], ">=", 0.8),
            (f"callback mode / stegonode, CPU per instance, {label}",
             received[PLUGIN][f"CPU s per instance, {label}"] / node[f"CPU s per instance, {label}"], "<=", 1.1),
        ]
        for text, ratio, sense, target in checks:
            met = ratio <= target if sense == "<=" else ratio >= target
            print(f"{text:<58}{ratio:>6.2f}x  target {sense} {target}: {'met' if met else 'NOT met'}")
    print(flush=True)


def report(received: dict[str, dict[str, float]], retrieval: dict[str, float], segmenter: str,
           moves: int = 3, finds: int = 50) -> None:
    ours = received["stegonode"]
    checks = [
        ("stegonode / pynetdicom storescp, 1 assoc", ours["1 association"] / received["pynetdicom storescp"]["1 association"], 1.5),
        ("stegonode / Orthanc, 1 assoc", ours["1 association"] / received["Orthanc"]["1 association"], 0.6),
        ("stegonode / Orthanc, 4 assocs", ours["4 associations"] / received["Orthanc"]["4 associations"], 1.0),
        ("stegonode / DCMTK storescp, 1 assoc", ours["1 association"] / received["DCMTK storescp"]["1 association"], None),
        ("C-MOVE stegonode / pynetdicom qrscp", retrieval["stegonode C-MOVE"] / retrieval["pynetdicom qrscp C-MOVE"], 5.0),
    ]
    for label, ratio, target in checks:
        verdict = "" if target is None else f"  target >= {target}: {'met' if ratio >= target else 'NOT met'}"
        print(f"{label:<42}{ratio:>8.2f}x{verdict}")
    print(f"\nprocessing throughput (first receive to last stored; segmenter {segmenter}), 1 assoc: "
          f"{ours['processing, 1 association']:.1f} instances/s; 4 assocs: {ours['processing, 4 associations']:.1f}")
    print(f"C-MOVE of {INSTANCES} instances, median of {moves}: stegonode {retrieval['stegonode C-MOVE']:.1f} instances/s, "
          f"pynetdicom qrscp {retrieval['pynetdicom qrscp C-MOVE']:.1f}")
    find_ms = retrieval["stegonode C-FIND ms"]
    print(f"C-FIND study level, median of {finds}: stegonode {find_ms:.1f} ms (target <= 50: "
          f"{'met' if find_ms <= 50 else 'NOT met'}), pynetdicom qrscp {retrieval['pynetdicom qrscp C-FIND ms']:.1f} ms")


if __name__ == "__main__":
    main()
