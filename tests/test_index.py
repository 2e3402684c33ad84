"""The job queue's rules on a real index, SQLite and PostgreSQL: no job claimed twice, leases,
take-over, and a repeated instance replacing its queued copy."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from stegonode.node.index import Association, Index

CT = {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "StudyInstanceUID": "2.25.1"}


@pytest.fixture
def database(tmp_path, new_database) -> str:
    return new_database() or f"sqlite:///{tmp_path}/index.sqlite"


@pytest.fixture
def index(database) -> Iterator[Index]:
    index = Index(database)
    yield index
    index.close()


def test_pools_claiming_at_once_never_take_the_same_job(database, index):
    for number in range(120):
        index.enqueue(f"2.25.{number}", f"token{number}", "TEST")
    hosts = [Index(database) for _ in range(4)]  # one index each, as separate hosts have
    claimed: list[list[str]] = [[] for _ in hosts]

    def drain(number: int) -> None:
        while jobs := hosts[number].claim(f"pool{number}", 3, 30):
            claimed[number] += [job.sop_instance_uid for job in jobs]

    threads = [threading.Thread(target=drain, args=(number,)) for number in range(len(hosts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for host in hosts:
        host.close()
    everything = [uid for uids in claimed for uid in uids]
    assert sorted(everything) == sorted(f"2.25.{number}" for number in range(120))


def test_a_lease_not_renewed_is_taken_over_and_counted(index):
    index.enqueue("2.25.7", "first", "TEST")
    (job,) = index.claim("dead", 1, lease_s=1)
    index.heartbeat("dead", [job.sop_instance_uid], lease_s=1)
    assert index.take_expired("live", 30) == []  # renewed: still the dead pool's
    time.sleep(1.2)
    (taken,) = index.take_expired("live", 30)
    assert (taken.token, taken.holder) == ("first", "dead")
    # the late pool's result is not recorded; the holder's failure is, as an attempt
    assert index.finish(job, "dead", CT, "1.2.840.10008.1.2.1", "stored/x.dcm", "pixels+header") == "taken"
    assert index.fail(taken, "live", "worker pool dead stopped renewing its lease", 3) == "failed"
    assert index.counts()["failed"] == 1
    time.sleep(2.1)  # the retry delay of a first failed attempt
    (again,) = index.claim("live", 1, 30)
    assert again.attempts == 1
    assert index.finish(again, "live", {**CT, "SOPInstanceUID": "2.25.7"}, "1.2.840.10008.1.2.1",
                        "stored/2.25.7.dcm", "pixels+header") == "done"
    assert index.counts()["processed"] == 1


def test_a_repeated_instance_replaces_its_queued_copy_and_a_recorded_file_stays_recorded(index):
    assert index.enqueue("2.25.8", "first", "A") is None
    assert index.enqueue("2.25.8", "first", "B") is None  # the same file again: nothing changes
    assert index.enqueue("2.25.8", "second", "B") == "first"  # queued copy replaced
    (job,) = index.claim("pool", 5, 30)
    assert job.token == "second"
    assert index.enqueue("2.25.8", "third", "A") is None  # in progress: it finishes, then this
    assert index.finish(job, "pool", {**CT, "SOPInstanceUID": "2.25.8"}, "1.2.840.10008.1.2.1",
                        "stored/2.25.8.dcm", "pixels+header") == "replaced"
    (job,) = index.claim("pool", 5, 30)
    assert job.token == "third"
    assert index.fail(job, "pool", "disk full", 1) == "quarantined"
    assert index.counts() | {"instances_per_second_last_minute": 0} == {
        "received": 1, "queued": 0, "processed": 0, "failed": 0, "quarantined": 1,
        "instances_per_second_last_minute": 0}


def test_a_stopped_pool_hands_back_its_jobs_and_a_dead_one_loses_its_leases(index):
    for number in range(3):
        index.enqueue(f"2.25.{number}", f"token{number}", "TEST")
    index.register_pool("stopping", "host1", 101, 1, lambda pid: True)
    index.claim("stopping", 2, 30)
    assert index.release("stopping") == 2 and len(index.claim("crashed", 3, 30)) == 3
    index.register_pool("crashed", "host1", 102, 1, lambda pid: True)
    assert index.register_pool("restarted", "host1", 103, 1, lambda pid: pid != 102) == 3
    assert len(index.take_expired("restarted", 30)) == 3
    states = {pool["pid"]: pool["state"] for pool in index.pools(30)}
    assert states == {101: "stopped", 102: "stopped", 103: "alive"}


def test_the_consoles_reads_on_either_backend(index):
    for number, series in ((1, "10"), (2, "9"), (3, "")):  # SeriesNumber in numeric order, "" first
        uid = f"2.25.3.{number}"
        index.enqueue(uid, f"token{number}", "TEST")
        (job,) = index.claim("pool", 1, 30)
        attributes = {**CT, "SOPInstanceUID": uid, "SeriesNumber": series, "InstanceNumber": "1"}
        assert index.finish(job, "pool", attributes, "1.2.840.10008.1.2.1", f"stored/{uid}.dcm", "pixels+header") == "done"
    assert [row["SeriesNumber"] for row in index.stored(10)] == ["", "9", "10"]
    assert index.stored_key("2.25.3.2") == "stored/2.25.3.2.dcm" and index.stored_key("2.25.0") is None
    per_minute = index.processed_per_minute(60)
    assert len(per_minute) == 60 and per_minute[-1] == 3 and sum(per_minute) == 3
    for number in range(3):
        index.record_association(Association(f"AE{number}", "127.0.0.1", time.time(), 0.5, "released", "1 stored"))
    assert [a.calling_ae_title for a in index.recent_associations(2)] == ["AE2", "AE1"]
