"""Several hosts, one index: two receivers and a worker host on one PostgreSQL database and one
storage, a shared directory or an S3 object store (SeaweedFS; then each host has a data
directory of its own, keys included, and shares nothing but the database and the store); a
worker host killed mid-job; one instance sent to two receivers at once.

The pipeline here segments with the classical segmenter: these tests are about the queue and
the index (every job done once, none lost), and Mask R-CNN would triple their time without
testing anything more of them (test_node.py runs the default pipeline end to end).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest

from stegonode.node.storage import ObjectStore, open_store

from images import dcmtk
from nodes import DCMTK_ENV, STEGONODE, NodeProcess, acknowledged, free_port, write_series
from postgres import PostgresCluster

SERIES = 100
CLASSICAL = {"handlers.segment": {"segmenter": "classical"}}
STORAGES = ("directory", "s3")


class Hosts:
    """How the hosts of one cluster are configured: ``host(directory, **node)`` makes one with
    the shared index and storage; ``storage`` reads what they stored (as an admin would)."""

    def __init__(self, kind: str, root: Path, database: str, keys: Path, request, **node: Any) -> None:
        self.kind, self.root, self.keys = kind, root, keys
        self.node = {"database": database, **node}
        self.tables: dict[str, dict] = {**CLASSICAL}
        self.staged: Callable[[], list[str]]  # what is left in tmp/: half-written or unpublished
        if kind == "directory":  # one directory, shared by every host (NFS between hosts)
            self.node |= {"data_dir": str(root / "storage"), "keys": str(keys / "node.keys")}
            self.staged = lambda: [path.name for path in (root / "storage" / "tmp").iterdir()]
        else:  # an object store; each host has its own data directory, keys included
            seaweed = request.getfixturevalue("seaweed")
            bucket = seaweed.bucket()
            self.tables["storage"] = seaweed.storage(bucket, "node")
            self.staged = lambda: seaweed.keys(bucket, "node/tmp/")
        self.storage: ObjectStore = open_store({"storage": self.tables.get("storage", {})},
                                               root / "storage", create=kind == "directory")

    def host(self, directory: Path, **node: Any) -> NodeProcess:
        own = {}
        if self.kind == "s3":
            (directory / "data" / "keys").mkdir(parents=True, exist_ok=True)
            own["keys"] = str(shutil.copy(self.keys / "node.keys", directory / "data" / "keys"))
        return NodeProcess(directory, **{**self.node, **own, **node}, tables={**self.tables})

    def names(self, area: str) -> list[str]:
        return sorted(self.storage.names(area))


@dataclass
class Cluster:
    receivers: tuple[NodeProcess, NodeProcess]
    worker: NodeProcess
    hosts: Hosts
    keys: Path

    @property
    def all(self) -> tuple[NodeProcess, ...]:
        return (*self.receivers, self.worker)


def _keys(directory: Path) -> Path:
    result = subprocess.run([STEGONODE, "keygen", str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return directory


def _sending(port: int, files: list[Path], aet: str) -> subprocess.Popen:
    return subprocess.Popen(
        [dcmtk("storescu"), "-v", "-aet", aet, "-aec", "STEGONODE", "127.0.0.1", str(port),
         *map(str, files)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=DCMTK_ENV,
    )


def _all_acknowledged(senders: list[tuple[subprocess.Popen, int]]) -> None:
    for sender, count in senders:
        output, _ = sender.communicate(timeout=600)
        assert sender.returncode == 0 and len(acknowledged(output)) == count, output[-2000:]


@pytest.fixture(scope="module", params=STORAGES)
def cluster(request, tmp_path_factory, postgres: PostgresCluster):
    """Receivers A and B (one worker process each) and worker host W on one index and storage."""
    root = tmp_path_factory.mktemp(f"cluster-{request.param}")
    keys = _keys(root / "keys")
    hosts = Hosts(request.param, root, postgres.database(), keys, request, workers=1)
    receivers = (hosts.host(root / "a"), hosts.host(root / "b"))
    worker = hosts.host(root / "w", command="worker")
    started = []
    try:
        for process in (*receivers, worker):
            started.append(process.start())
        yield Cluster(receivers, worker, hosts, keys)
    finally:
        for process in started:
            process.stop()


def test_two_receivers_and_a_worker_host_protect_every_instance_once(cluster, tmp_path):
    a, b = cluster.receivers
    series = {"MODA": write_series(tmp_path / "a", SERIES), "MODB": write_series(tmp_path / "b", SERIES)}
    senders = [(_sending(a.port, series["MODA"], "MODA"), SERIES),
               (_sending(b.port, series["MODB"], "MODB"), SERIES)]
    _all_acknowledged(senders)
    counts = a.wait_idle(2 * SERIES)
    assert counts["processed"] == 2 * SERIES and counts["quarantined"] == 0

    # one row, one file, one protection each
    assert a.query("SELECT COUNT(*), SUM(attempts), SUM(receptions) FROM jobs") == [(2 * SERIES, 0, 2 * SERIES)]
    assert a.query("SELECT COUNT(*) FROM instances") == [(2 * SERIES,)]
    assert cluster.hosts.names("stored") == sorted(
        uid for (uid,) in a.query('SELECT "SOPInstanceUID" FROM instances'))
    protections = [p.log.read_text().count(": stored with carriers ") for p in cluster.all]
    assert sum(protections) == 2 * SERIES and protections[2] > 0, protections
    assert cluster.hosts.names("inbox") == [] and cluster.hosts.staged() == []

    # status from any host shows the cluster: three live pools, the jobs each did; and a pool
    # stopped, having done nothing, for each host whose first start found its port taken
    # (NodeProcess.start starts it again on another port: its workers had started first)
    status = a.status()
    pools = [pool for pool in status["worker_pools"] if pool["state"] != "stopped"]
    stopped = [pool for pool in status["worker_pools"] if pool["state"] == "stopped"]
    retried = sum(p.log.read_text().count("(Address already in use)") for p in cluster.all)
    assert len(stopped) == retried and all(pool["done"] == 0 for pool in stopped)
    assert [pool["state"] for pool in pools] == ["alive"] * 3
    assert sorted(pool["done"] for pool in pools) == sorted(protections)
    assert all(pool["last_heartbeat_s_ago"] < 30 for pool in pools)
    text = b.run("status", "--config", str(b.config)).stdout
    assert f"{2 * SERIES} processed" in text and text.count(": alive, 1 process(es)") == 3

    # each receiver serves what the other one received
    studies = dict(a.query('SELECT DISTINCT j.calling_ae_title, i."StudyInstanceUID" FROM jobs j '
                           'JOIN instances i ON i."SOPInstanceUID" = j.sop_instance_uid'))
    for node, sender in ((a, "MODB"), (b, "MODA")):
        out = tmp_path / f"fetched-from-{node.directory.name}"
        result = node.run("fetch", "--node", f"STEGONODE@127.0.0.1:{node.port}",
                          "--study", studies[sender], "--keys", str(cluster.keys / "peer.keys"),
                          "--out", str(out))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{SERIES}/{SERIES} instances revealed" in result.stdout
        originals = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in series[sender]}
        revealed = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID
                    for p in (out / studies[sender]).glob("*.dcm")}
        assert revealed == originals


def test_one_instance_sent_to_both_receivers_at_once_stays_one(cluster, tmp_path):
    a, b = cluster.receivers
    before = a.query("SELECT COUNT(*) FROM instances")[0][0]
    same = write_series(tmp_path / "same", 10)
    _all_acknowledged([(_sending(a.port, same, "MODA"), 10), (_sending(b.port, same, "MODB"), 10)])
    a.wait_idle(before + 10)
    assert a.query("SELECT COUNT(*) FROM instances") == [(before + 10,)]
    assert a.query("SELECT COUNT(*), SUM(receptions) FROM jobs WHERE receptions > 1") == [(10, 20)]
    assert len(cluster.hosts.names("stored")) == before + 10
    assert cluster.hosts.names("inbox") == []


@pytest.mark.parametrize("storage", STORAGES)
def test_worker_host_killed_mid_job_its_jobs_finish_elsewhere_after_the_lease(storage, request, tmp_path, postgres):
    hosts = Hosts(storage, tmp_path, postgres.database(), _keys(tmp_path / "keys"), request, lease_seconds=3)
    receiver = hosts.host(tmp_path / "r", workers=0).start()
    doomed = hosts.host(tmp_path / "w1", command="worker", workers=1).start()
    survivor = hosts.host(tmp_path / "w2", command="worker", workers=1).start()
    try:
        files = write_series(tmp_path / "series", 20)
        sender = _sending(receiver.port, files, "MODA")
        held: list[tuple] = []
        deadline = time.monotonic() + 120
        while not held and time.monotonic() < deadline:
            # Frozen first, so what it holds cannot change between this query and its death (on
            # a loaded machine it could finish the job it was seen holding before the kill).
            os.killpg(doomed.process.pid, signal.SIGSTOP)
            held = receiver.query("SELECT sop_instance_uid, holder FROM jobs WHERE state = 'processing' "
                                  f"AND holder LIKE '%/{doomed.process.pid}/%'")
            if not held:
                os.killpg(doomed.process.pid, signal.SIGCONT)
                time.sleep(0.02)
        assert held, "the doomed worker host never held a job"
        doomed.kill()
        _all_acknowledged([(sender, 20)])
        counts = receiver.wait_idle(20)
        assert counts["processed"] == 20 and counts["quarantined"] == 0
        retried = dict(receiver.query("SELECT sop_instance_uid, holder FROM jobs WHERE attempts = 1"))
        assert receiver.query("SELECT COUNT(*) FROM jobs WHERE attempts > 1") == [(0,)]
        log = survivor.log.read_text()
        for uid, holder in held:  # taken over after the lease, counted as an attempt, finished
            assert f"job {uid}: attempt 1 failed, will retry: worker pool {holder} stopped renewing its lease" in log
            assert f"/{survivor.process.pid}/" in retried[uid]
        assert receiver.query("SELECT COUNT(*) FROM instances") == [(20,)]
        assert len(hosts.names("stored")) == 20 and hosts.names("inbox") == []
        pools = {pool["pid"]: pool for pool in receiver.status()["worker_pools"]}
        assert pools[survivor.process.pid]["state"] == "alive"
        assert pools[doomed.process.pid]["state"] == "lost"
    finally:
        for process in (receiver, doomed, survivor):
            process.stop()


def test_unreachable_database_or_missing_keys_stop_with_a_reason(tmp_path):
    closed = free_port()  # nothing listens there
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\ndata_dir = "{tmp_path / "data"}"\n'
                      f'database = "postgresql://stegonode:secret@127.0.0.1:{closed}/stegonode"\n')
    result = subprocess.run([STEGONODE, "status", "--config", str(config)], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"stegonode: index postgresql+psycopg://stegonode:***@127.0.0.1:{closed}/stegonode: cannot open" \
        in result.stderr and "secret" not in result.stderr

    config.write_text(f'[node]\ndata_dir = "{tmp_path / "data"}"\n')
    result = subprocess.run([STEGONODE, "worker", "--config", str(config)], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no node.keys at" in result.stderr and "set node.keys to that file" in result.stderr
