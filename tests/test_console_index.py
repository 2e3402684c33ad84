"""What the console reads from and changes in the index (node/console_index.py), on SQLite and
PostgreSQL: the studies search (filters, orders, pages), refusals and the jobs listing, retry and
discard of a quarantined object, deletion of stored objects."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stegonode.node import console_index
from stegonode.node.console_index import JobFilter, StudyFilter
from stegonode.node.index import Index, Job
from stegonode.node.storage import Storage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from console import fill  # noqa: E402  (the benchmark's index: 10 studies per patient, 5 modalities)


@pytest.fixture
def index(new_database, tmp_path):
    opened = Index(new_database() or f"sqlite:///{tmp_path}/index.sqlite")
    yield opened
    opened.close()


def test_studies_search_filters_orders_and_pages(index):
    fill(index, 60)
    rows, total = console_index.search_studies(index, StudyFilter(), 0, 25)
    assert total == 60 and len(rows) == 25
    dates = [row.date for row in rows]
    assert dates == sorted(dates, reverse=True)
    rest, _ = console_index.search_studies(index, StudyFilter(), 50, 25)
    assert len(rest) == 10 and rest[-1].date <= dates[-1]
    every = {row.uid for page in range(3) for row in console_index.search_studies(index, StudyFilter(), 25 * page, 25)[0]}
    assert len(every) == 60  # the pages neither overlap nor skip

    assert all((row.series, row.instances) == (1, 3) for row in rows)
    rows, total = console_index.search_studies(index, StudyFilter(patient="Pseudo^000002"), 0, 25)
    assert total == 10 and {row.patient_id for row in rows} == {"SN00000002"}
    rows, total = console_index.search_studies(index, StudyFilter(patient="N0000000"), 0, 25)  # part of an ID
    assert total == 60
    rows, total = console_index.search_studies(index, StudyFilter(modality="MR"), 0, 25)
    assert total == 12 and {row.modalities for row in rows} == {"MR"}
    rows, total = console_index.search_studies(index, StudyFilter(date_from="20180101", date_to="20191231"), 0, 100)
    assert rows and all("20180101" <= row.date <= "20191231" for row in rows)
    assert total == len(rows)
    rows, _ = console_index.search_studies(index, StudyFilter(sort="oldest"), 0, 60)
    assert [row.date for row in rows] == sorted(row.date for row in rows)
    rows, _ = console_index.search_studies(index, StudyFilter(sort="patient"), 0, 60)
    assert [row.patient_id for row in rows] == sorted(row.patient_id for row in rows)
    assert console_index.search_studies(index, StudyFilter(patient="100%_"), 0, 25) == ([], 0)  # LIKE escaped


def test_refusals_quarantine_and_the_jobs_listing(index, tmp_path):
    storage = Storage.create(tmp_path / "data")
    console_index.record_refusal(index, "C-STORE", "MODALITY ", "10.0.0.5", "1.2.840.10008.5.1.4.1.1.6.1",
                                 "2.25.7", 0xC000, "BurnedInAnnotation YES: identity may be burned into the pixels")
    console_index.record_refusal(index, "association", "ODD", "10.0.0.6", "", "", 0, "association rejected: x")
    for uid in ("2.25.1", "2.25.2"):
        index.enqueue(uid, f"token{uid[-1]}", "CT1")
    (job, other) = index.claim("pool", 2, 30)
    index.fail(job, "pool", "pixel data does not decode: RuntimeError", 1)
    storage.write("quarantine", job.token, b"not even DICOM")  # a worker moved the inbox file here

    rows, total = console_index.job_rows(index, storage, JobFilter(), 0, 50)
    assert total == 4
    outcomes = {row.outcome: row for row in rows}
    assert set(outcomes) == {"refused", "negotiation failed", "quarantined", "queued"}
    refused = outcomes["refused"]
    assert (refused.caller, refused.status, refused.uid) == ("MODALITY", 0xC000, "2.25.7")
    assert refused.reason.endswith("burned into the pixels")  # whole, not cut to 64 characters
    assert console_index.job_rows(index, storage, JobFilter(caller="ODD"), 0, 50)[1] == 1
    assert console_index.job_rows(index, storage, JobFilter(outcome="quarantined"), 0, 50)[0][0].uid == job.sop_instance_uid
    ultrasound = JobFilter(sop_class="1.2.840.10008.5.1.4.1.1.6.1")
    assert [row.outcome for row in console_index.job_rows(index, storage, ultrasound, 0, 50)[0]] == ["refused"]
    assert console_index.job_rows(index, storage, JobFilter(since=4102444800.0), 0, 50) == ([], 0)  # 2100
    assert console_index.callers(index) == ["CT1", "MODALITY", "ODD"]

    assert console_index.retry(index, storage, job.sop_instance_uid)
    assert storage.path("inbox", job.token).exists() and not storage.path("quarantine", job.token).exists()
    (again,) = [j for j in index.claim("pool", 5, 30) if j.sop_instance_uid == job.sop_instance_uid]
    assert again.attempts == 0
    index.fail(Job(again.sop_instance_uid, again.token, 0), "pool", "still broken", 1)
    storage.move(storage.path("inbox", job.token), "quarantine", job.token)
    assert not console_index.retry(index, storage, other.sop_instance_uid)  # not quarantined
    assert console_index.discard(index, storage, job.sop_instance_uid)
    assert not storage.path("quarantine", job.token).exists()
    assert console_index.job_rows(index, storage, JobFilter(outcome="quarantined"), 0, 50) == ([], 0)
    assert not console_index.discard(index, storage, job.sop_instance_uid)


def test_delete_a_series_then_the_study(index, tmp_path):
    storage = Storage.create(tmp_path / "data")
    fill(index, 2)
    rows = console_index.study_instances(index, "2.25.1000000000000")
    for row in rows:
        storage.write("stored", row["SOPInstanceUID"], b"stored")
    (one,) = console_index.objects_at(index, "instance", rows[0]["SOPInstanceUID"])
    assert console_index.delete_objects(index, storage, [one]) == 1
    assert not storage.local_path(one["path"]).exists()
    assert len(console_index.study_instances(index, "2.25.1000000000000")) == 2
    gone = console_index.objects_at(index, "study", "2.25.1000000000000")
    assert console_index.delete_objects(index, storage, gone) == 2
    assert console_index.study_instances(index, "2.25.1000000000000") == []
    assert console_index.search_studies(index, StudyFilter(), 0, 25)[1] == 1  # the other study stays


def test_a_stored_object_deleted_since_reads_deleted_in_the_jobs_listing(index, tmp_path):
    storage = Storage.create(tmp_path / "data")
    for uid in ("2.25.11", "2.25.12"):
        index.enqueue(uid, f"t{uid[-2:]}", "CT1")
    for job in index.claim("pool", 2, 30):
        attributes = {"SOPInstanceUID": job.sop_instance_uid, "StudyInstanceUID": "2.25.10",
                      "SeriesInstanceUID": "2.25.10.1", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}
        assert index.finish(job, "pool", attributes, "1.2.840.10008.1.2.1", f"stored/{job.sop_instance_uid}.dcm",
                            "pixels+header") == "done"
    console_index.delete_objects(index, storage, console_index.objects_at(index, "instance", "2.25.11"))
    rows, _ = console_index.job_rows(index, storage, JobFilter(), 0, 50)
    assert {row.uid: row.outcome for row in rows} == {"2.25.11": "deleted", "2.25.12": "stored"}
    assert [r.uid for r in console_index.job_rows(index, storage, JobFilter(outcome="deleted"), 0, 50)[0]] == ["2.25.11"]
    assert [r.uid for r in console_index.job_rows(index, storage, JobFilter(outcome="stored"), 0, 50)[0]] == ["2.25.12"]
