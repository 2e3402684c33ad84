"""The node's SQLite index: the job queue and the de-identified attributes C-FIND answers from.

One row per SOP Instance UID in each table, keyed by the *new* (pseudonymous) UID the protect
pipeline gives the instance, so the index holds no original identifier. A repeated SOP Instance
UID is idempotent: the newest received copy replaces the queued or stored one, and the row stays
one row (its ``receptions`` counts the copies).

Job states: queued -> processing -> done; a failed attempt goes to failed (retried after a
back-off) and, after ``max_attempts``, to quarantined with its reason. A job left in processing
by a crash is queued again on start.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stegonode.codecs.errors import ConfigError

# Instance-level attributes kept for C-FIND, in the order of the table's columns. Each one is
# the DICOM keyword of a de-identified attribute of the stored (protected) object.
ATTRIBUTES = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
    "StudyDescription", "ReferringPhysicianName",
    "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
    "SOPInstanceUID", "SOPClassUID", "InstanceNumber",
)
RETRY_DELAY_S = 2.0

_SCHEMA = f"""
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
CREATE TABLE IF NOT EXISTS associations (
    id INTEGER PRIMARY KEY,
    calling_ae_title TEXT NOT NULL,
    address TEXT NOT NULL,
    started_at REAL NOT NULL,
    duration REAL NOT NULL,
    ending TEXT NOT NULL,
    summary TEXT NOT NULL
);
"""
KEPT_ASSOCIATIONS = 1000  # the newest rows of the associations table (the dashboard's list)


@dataclass(frozen=True)
class Association:
    """One finished association: who called, for how long, what it did (no patient data)."""

    calling_ae_title: str
    address: str
    started_at: float
    duration: float
    ending: str
    summary: str


@dataclass(frozen=True)
class Job:
    """One queued instance: its new SOP Instance UID and the inbox file's token."""

    sop_instance_uid: str
    token: str
    attempts: int


class Index:
    """Thread-safe access to the index database (one connection per thread, WAL journal)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            # No fsync per commit: the durable record of a received instance is its inbox file
            # (fsync'd and renamed before the commit); a start re-queues any inbox file whose
            # job a power cut took back (Node.adopt_inbox).
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- job queue -------------------------------------------------------------------------

    def enqueue(self, sop_instance_uid: str, token: str, calling_ae_title: str) -> str | None:
        """Record a received instance; return the token of a queued copy it replaces."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT token, state FROM jobs WHERE sop_instance_uid = ?", (sop_instance_uid,)
            ).fetchone()
            db.execute(
                """INSERT INTO jobs (sop_instance_uid, token, state, calling_ae_title, received_at)
                   VALUES (?, ?, 'queued', ?, ?)
                   ON CONFLICT (sop_instance_uid) DO UPDATE SET token = excluded.token,
                     state = 'queued', attempts = 0, reason = NULL, not_before = 0,
                     calling_ae_title = excluded.calling_ae_title,
                     received_at = excluded.received_at, receptions = receptions + 1""",
                (sop_instance_uid, token, calling_ae_title, now),
            )
        if row is not None and row[1] in ("queued", "failed"):
            return row[0]
        return None

    def claim(self, limit: int) -> list[Job]:
        """Move up to ``limit`` due jobs to processing and return them, oldest first."""
        with self._transaction() as db:
            rows = db.execute(
                """SELECT sop_instance_uid, token, attempts FROM jobs
                   WHERE state IN ('queued', 'failed') AND not_before <= ?
                   ORDER BY received_at LIMIT ?""",
                (time.time(), limit),
            ).fetchall()
            db.executemany(
                "UPDATE jobs SET state = 'processing' WHERE sop_instance_uid = ? AND token = ?",
                [(uid, token) for uid, token, _ in rows],
            )
        return [Job(*row) for row in rows]

    def finish(self, job: Job, attributes: dict[str, str], transfer_syntax: str, path: Path) -> bool:
        """Record the stored object; False if a newer copy arrived meanwhile (it stays queued)."""
        now = time.time()
        values = [attributes.get(keyword, "") for keyword in ATTRIBUTES]
        with self._transaction() as db:
            db.execute(
                f"""INSERT OR REPLACE INTO instances ({", ".join(f'"{k}"' for k in ATTRIBUTES)},
                    TransferSyntaxUID, path, stored_at)
                    VALUES ({", ".join("?" * (len(ATTRIBUTES) + 3))})""",
                (*values, transfer_syntax, str(path), now),
            )
            current = db.execute(
                """UPDATE jobs SET state = 'done', processed_at = ?, reason = NULL
                   WHERE sop_instance_uid = ? AND token = ? AND state = 'processing'""",
                (now, job.sop_instance_uid, job.token),
            ).rowcount
        return current == 1

    def add_derived(self, attributes: dict[str, str], transfer_syntax: str, path: Path, stored_at: float,
                    replaces: Sequence[str] = ()) -> None:
        """Record an object the node made itself (a segmentation), in place of ``replaces``."""
        values = [attributes.get(keyword, "") for keyword in ATTRIBUTES]
        with self._transaction() as db:
            db.executemany("DELETE FROM instances WHERE SOPInstanceUID = ?", [(uid,) for uid in replaces])
            db.execute(
                f"""INSERT OR REPLACE INTO instances ({", ".join(f'"{k}"' for k in ATTRIBUTES)},
                    TransferSyntaxUID, path, stored_at)
                    VALUES ({", ".join("?" * (len(ATTRIBUTES) + 3))})""",
                (*values, transfer_syntax, str(path), stored_at),
            )

    def fail(self, job: Job, reason: str, max_attempts: int) -> str:
        """Record a failed attempt; return the new state (failed, or quarantined at the limit)."""
        attempts = job.attempts + 1
        state = "quarantined" if attempts >= max_attempts else "failed"
        with self._transaction() as db:
            db.execute(
                """UPDATE jobs SET state = ?, attempts = ?, reason = ?, not_before = ?
                   WHERE sop_instance_uid = ? AND token = ? AND state = 'processing'""",
                (state, attempts, reason, time.time() + RETRY_DELAY_S * attempts,
                 job.sop_instance_uid, job.token),
            )
        return state

    def requeue_interrupted(self) -> int:
        """Jobs a crash left in processing go back to the queue; return how many."""
        with self._transaction() as db:
            return db.execute("UPDATE jobs SET state = 'queued' WHERE state = 'processing'").rowcount

    def tokens(self) -> set[str]:
        """Tokens of every job whose inbox file is still needed."""
        rows = self._connection().execute(
            "SELECT token FROM jobs WHERE state IN ('queued', 'processing', 'failed')"
        )
        return {token for (token,) in rows}

    def counts(self) -> dict[str, int | float]:
        """received/queued/processed/failed/quarantined and the last minute's throughput."""
        db = self._connection()
        by_state = dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        recent = db.execute(
            "SELECT COUNT(*) FROM jobs WHERE processed_at >= ?", (time.time() - 60,)
        ).fetchone()[0]
        return {
            "received": sum(by_state.values()),
            "queued": by_state.get("queued", 0) + by_state.get("processing", 0),
            "processed": by_state.get("done", 0),
            "failed": by_state.get("failed", 0),
            "quarantined": by_state.get("quarantined", 0),
            "instances_per_second_last_minute": round(recent / 60, 3),
        }

    def quarantined(self) -> list[tuple[str, str]]:
        """(token, reason) of every quarantined job."""
        rows = self._connection().execute(
            "SELECT token, reason FROM jobs WHERE state = 'quarantined' ORDER BY received_at"
        )
        return rows.fetchall()

    def processed_per_minute(self, minutes: int = 60) -> list[int]:
        """Instances processed in each of the last ``minutes`` minutes, oldest first."""
        now = time.time()
        rows = self._connection().execute(
            """SELECT CAST((? - processed_at) / 60 AS INTEGER) AS ago, COUNT(*) FROM jobs
               WHERE processed_at > ? GROUP BY ago""",
            (now, now - 60 * minutes),
        )
        counts = [0] * minutes
        for ago, count in rows:
            if 0 <= ago < minutes:
                counts[minutes - 1 - ago] = count
        return counts

    # -- associations ----------------------------------------------------------------------

    def record_association(self, association: Association) -> None:
        """Keep a finished association (only the newest :data:`KEPT_ASSOCIATIONS`)."""
        with self._transaction() as db:
            db.execute(
                """INSERT INTO associations (calling_ae_title, address, started_at, duration, ending, summary)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (association.calling_ae_title, association.address, association.started_at,
                 association.duration, association.ending, association.summary),
            )
            db.execute("DELETE FROM associations WHERE id <= (SELECT MAX(id) FROM associations) - ?",
                       (KEPT_ASSOCIATIONS,))

    def recent_associations(self, limit: int = 20) -> list[Association]:
        """The newest ``limit`` finished associations, newest first."""
        rows = self._connection().execute(
            """SELECT calling_ae_title, address, started_at, duration, ending, summary
               FROM associations ORDER BY id DESC LIMIT ?""",
            (limit,),
        )
        return [Association(*row) for row in rows]

    # -- stored objects --------------------------------------------------------------------

    def stored(self, limit: int) -> list[dict[str, str]]:
        """The first ``limit`` stored instances' indexed (de-identified) attributes, in study,
        series and instance order."""
        rows = self.select(
            f"""SELECT {", ".join(f'"{k}"' for k in ATTRIBUTES)} FROM instances
                ORDER BY StudyDate, StudyInstanceUID, CAST(SeriesNumber AS INTEGER), SeriesInstanceUID,
                         CAST(InstanceNumber AS INTEGER), SOPInstanceUID LIMIT ?""",
            (limit,),
        )
        return [dict(row) for row in rows]

    def stored_path(self, sop_instance_uid: str) -> Path | None:
        """The file of a stored instance, None if there is no such instance."""
        row = self._connection().execute(
            "SELECT path FROM instances WHERE SOPInstanceUID = ?", (sop_instance_uid,)
        ).fetchone()
        return Path(row[0]) if row else None

    # -- query -----------------------------------------------------------------------------

    def select(self, sql: str, parameters: Sequence[object]) -> list[sqlite3.Row]:
        """Run a read-only query built by :mod:`stegonode.node.query`."""
        db = self._connection()
        db.row_factory = sqlite3.Row
        try:
            return db.execute(sql, parameters).fetchall()
        finally:
            db.row_factory = None


def existing_index(database: Path) -> Index:
    """The index at ``database``; ConfigError if the node has not created it yet."""
    if not Path(database).exists():
        raise ConfigError(f"no index at {database}: the node has not run with this config yet")
    return Index(database)
