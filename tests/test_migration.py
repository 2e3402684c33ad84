"""An index made by the release before migrations (0.1.0, SQLite) upgrades in place.

The data directory is laid out as that release left it after a stop mid-work: three instances
protected and indexed (their rows name the stored files by path), one job queued and one
interrupted while processing (their inbox files waiting), a half-written file in tmp/. Its
index is made with that release's own DDL, copied here verbatim.
"""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import time
from pathlib import Path

import pydicom

from stegonode.codecs.keys import load_node_keys
from stegonode.dicom.pseudonyms import Pseudonymizer

from nodes import STEGONODE, NodeProcess, write_series

ATTRIBUTES = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
    "StudyDescription", "ReferringPhysicianName",
    "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
    "SOPInstanceUID", "SOPClassUID", "InstanceNumber",
)
RELEASE_0_1_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    sop_instance_uid TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    calling_ae_title TEXT,
    received_at REAL NOT NULL,
    not_before REAL NOT NULL DEFAULT 0,
    processed_at REAL,
    receptions INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, not_before);
CREATE INDEX IF NOT EXISTS jobs_processed ON jobs (processed_at);
CREATE TABLE IF NOT EXISTS instances (
    {", ".join(f'"{keyword}" TEXT' if keyword != "SOPInstanceUID" else '"SOPInstanceUID" TEXT PRIMARY KEY'
               for keyword in ATTRIBUTES)},
    TransferSyntaxUID TEXT NOT NULL,
    path TEXT NOT NULL,
    stored_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_patient ON instances (PatientID);
CREATE INDEX IF NOT EXISTS instances_study ON instances (StudyInstanceUID);
CREATE INDEX IF NOT EXISTS instances_series ON instances (SeriesInstanceUID);
"""
CLASSICAL = {"handlers.segment": {"segmenter": "classical"}}


def _release_data_dir(data: Path, series: list[Path], work: Path) -> None:
    """What 0.1.0 left: 3 done, 1 queued, 1 processing, a tmp leftover; paths in the index."""
    for area in ("inbox", "stored", "originals", "quarantine", "tmp"):
        (data / area).mkdir(parents=True)
    assert subprocess.run([STEGONODE, "keygen", str(data / "keys")]).returncode == 0
    config = work / "classical.toml"
    config.write_text('[handlers.segment]\nsegmenter = "classical"\n')
    protected = work / "protected"
    result = subprocess.run([STEGONODE, "protect", *map(str, series[:3]), "--out", str(protected),
                             "--keys", str(data / "keys" / "node.keys"), "--config", str(config)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    pseudonyms = Pseudonymizer(load_node_keys(data / "keys" / "node.keys").pseudonym_key)
    now = time.time()
    with sqlite3.connect(data / "index.sqlite") as db:
        db.executescript(RELEASE_0_1_SCHEMA)
        for path in sorted(protected.iterdir()):
            ds = pydicom.dcmread(path)
            stored = data / "stored" / f"{ds.SOPInstanceUID}.dcm"
            path.rename(stored)
            db.execute("INSERT INTO jobs (sop_instance_uid, token, state, calling_ae_title, received_at, "
                       "processed_at) VALUES (?, ?, 'done', 'MODALITY', ?, ?)",
                       (ds.SOPInstanceUID, secrets.token_hex(16), now - 60, now - 50))
            values = [str(ds.get(keyword, "") or "") for keyword in ATTRIBUTES]
            db.execute(f"INSERT INTO instances VALUES ({', '.join('?' * (len(ATTRIBUTES) + 3))})",
                       (*values, str(ds.file_meta.TransferSyntaxUID), str(stored), now - 50))
        for state, path in (("queued", series[3]), ("processing", series[4])):
            token = secrets.token_hex(16)
            (data / "inbox" / f"{token}.dcm").write_bytes(path.read_bytes())
            uid = pseudonyms.uid(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
            db.execute("INSERT INTO jobs (sop_instance_uid, token, state, calling_ae_title, received_at) "
                       "VALUES (?, ?, ?, 'MODALITY', ?)", (uid, token, state, now - 40))
    (data / "tmp" / f"{secrets.token_hex(8)}.part").write_bytes(b"half")


def test_release_0_1_data_directory_upgrades_in_place(tmp_path):
    series = write_series(tmp_path / "series", 5)
    node = NodeProcess(tmp_path / "node", workers=1, tables=CLASSICAL)
    _release_data_dir(node.data, series, tmp_path)
    with sqlite3.connect(node.data / "index.sqlite") as db:  # not node.query: it would upgrade
        before = db.execute("SELECT sop_instance_uid, received_at FROM jobs WHERE state = 'done'").fetchall()

    node.start()
    try:
        counts = node.wait_idle(5)
        assert counts["processed"] == 5 and counts["quarantined"] == 0
        assert node.query("SELECT version_num FROM alembic_version") == [("0007",)]
        assert set(before) <= set(node.query("SELECT sop_instance_uid, received_at FROM jobs"))
        keys = node.query('SELECT "SOPInstanceUID", path FROM instances')
        assert len(keys) == 5 and all(key == f"stored/{uid}.dcm" for uid, key in keys)
        assert not list((node.data / "tmp").iterdir()) and not list((node.data / "inbox").iterdir())
        out = tmp_path / "fetched"
        result = node.fetch_all(out)
        assert result.returncode == 0 and "5/5 instances revealed" in result.stdout, result.stdout
    finally:
        node.stop()
    revealed = {pydicom.dcmread(p).SOPInstanceUID for p in out.rglob("*.dcm")}
    assert revealed == {pydicom.dcmread(p).SOPInstanceUID for p in series}
    assert "index schema 0001 -> 0007" in node.log.read_text()
    # The three objects the old release stored: carriers not recorded; the two protected now: both.
    status = node.status()
    assert status["stored_by_carriers"] == {"not recorded": 3, "pixels+header": 2}
    # ... and the keys that sealed the two (the old three, like segmentations, are not counted)
    assert sorted(status["stored_by_key"].values()) == [2, 2] and "not-recorded" not in status["stored_by_key"]
