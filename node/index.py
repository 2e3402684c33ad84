"""The node's index: the job queue and the de-identified attributes C-FIND answers from.

One database, SQLite (``sqlite:///PATH``, the embedded default: one host) or PostgreSQL
(``postgresql://USER@HOST:PORT/DB``: receivers and worker hosts of a cluster share it), spoken
to through SQLAlchemy Core. The schema is kept by the Alembic migrations in ``migrations/``,
applied when the index is opened, so an existing index upgrades in place.

One row per SOP Instance UID in each table, keyed by the *new* (pseudonymous) UID the protect
pipeline gives the instance, so the index holds no original identifier. A repeated SOP Instance
UID is idempotent, whichever receiver it reaches: the newest received copy replaces the queued
or stored one, and the row stays one row (its ``receptions`` counts the copies).

Job states: queued -> processing -> done; a failed attempt goes to failed (retried after a
back-off) and, after ``max_attempts``, to quarantined with its reason. A job in processing is
held by one worker pool (``holder``) under a lease that the pool renews while it lives; a job
whose lease ran out (its host died) is taken over and counted as a failed attempt. Every time
is the database's clock, so the hosts' clocks need not agree.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Executable,
    Float,
    Integer,
    MetaData,
    RowMapping,
    Table,
    Text,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from stegonode.errors import ConfigError, DatabaseError

log = logging.getLogger("stegonode.index")

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
ACTIVE = ("queued", "processing", "failed")
MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x53544E58  # PostgreSQL advisory lock: one host upgrades the schema at a time

# DICOM matching is byte-wise and case-sensitive: PostgreSQL compares these columns in the "C"
# collation (SQLite compares bytes anyway).
MatchText = Text().with_variant(Text(collation="C"), "postgresql")

metadata = MetaData()
jobs = Table(
    "jobs", metadata,
    Column("sop_instance_uid", Text, primary_key=True),
    Column("token", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("reason", Text),
    Column("calling_ae_title", Text),
    Column("received_at", Float, nullable=False),
    Column("not_before", Float, nullable=False, default=0),
    Column("processed_at", Float),
    Column("receptions", Integer, nullable=False, default=1),
    Column("holder", Text),  # the worker pool that holds (or finished) the job
    Column("lease_until", Float),
)
instances = Table(
    "instances", metadata,
    *(Column(keyword, MatchText, primary_key=keyword == "SOPInstanceUID") for keyword in ATTRIBUTES),
    Column("TransferSyntaxUID", Text, nullable=False),
    Column("path", Text, nullable=False),  # storage key of the stored object, e.g. stored/<uid>.dcm
    Column("stored_at", Float, nullable=False),
    Column("carriers", Text),  # e.g. "pixels+header" (describe_carriers); NULL: stored before 0004
    Column("key_ids", Text),  # the ids of the keys that sealed it, space-separated; NULL: before 0005
    Column("identity_residues", Integer),  # what the residual-identity check removed; NULL: before 0006
)
worker_pools = Table(
    "worker_pools", metadata,
    Column("id", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("processes", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("stopped_at", Float),
)


class epoch_now(FunctionElement):
    """The database's clock as Unix seconds (float): one clock for every host."""

    type = Float()
    inherit_cache = True


@compiles(epoch_now, "sqlite")
def _epoch_now_sqlite(element: epoch_now, compiler: Any, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(epoch_now, "postgresql")
def _epoch_now_postgresql(element: epoch_now, compiler: Any, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
associations = Table(  # the newest KEPT_ASSOCIATIONS finished associations (the dashboard's list)
    "associations", metadata,
    Column("id", Integer, primary_key=True),
    Column("calling_ae_title", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration", Float, nullable=False),
    Column("ending", Text, nullable=False),
    Column("summary", Text, nullable=False),
)
KEPT_ASSOCIATIONS = 1000
audit_events = Table(  # the newest KEPT_AUDIT_EVENTS audited events (node/audit.py; the console's audit page)
    "audit_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("kind", Text, nullable=False, index=True),
    Column("outcome", Text, nullable=False),
    Column("user", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("objects", Text, nullable=False),  # stored (pseudonymous) UIDs, space-separated
    Column("detail", Text, nullable=False),
)
KEPT_AUDIT_EVENTS = 100000


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
    holder: str | None = None  # for a job taken over: the pool whose lease ran out


# What became of a job's outcome (finish; fail too): recorded; not, because a newer copy was
# received meanwhile (its job stays queued), or another pool took the job after the lease ran out.
Finish = Literal["done", "replaced", "taken"]


def database_url(database: str) -> URL:
    """node.database as an SQLAlchemy URL: postgresql:// means psycopg 3."""
    try:
        url = make_url(database)
    except ArgumentError:
        raise ConfigError(f"node.database {database!r}: not a database URL") from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername not in ("sqlite", "postgresql+psycopg"):
        raise ConfigError(f"node.database: {url.drivername}:// is not supported; use "
                          "sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    if not url.database:
        raise ConfigError("node.database: the URL names no database (sqlite:///PATH, "
                          "postgresql://USER@HOST:PORT/DB)")
    return url


def existing_index(database: str) -> Index:
    """The index of node.database; ConfigError if it is an SQLite file the node has not made yet."""
    url = database_url(database)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        raise ConfigError(f"no index at {url.database}: the node has not run with this config yet")
    return Index(database)


class Index:
    """The job queue and the C-FIND attributes, safe to share between threads, processes and hosts."""

    def __init__(self, database: str) -> None:
        self.url = database_url(database)
        self.name = self.url.render_as_string(hide_password=True)
        self.engine = _engine(self.url)
        self._sql = _Statements(self.engine.dialect.name)
        try:
            _migrate(self.engine)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise DatabaseError(f"index {self.name}: cannot open ({_reason(exc)})") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction (on SQLite: BEGIN IMMEDIATE, so writers queue instead of failing)."""
        with self.engine.connect().execution_options(immediate=True) as db, db.begin():
            yield db

    # -- job queue -------------------------------------------------------------------------

    def enqueue(self, sop_instance_uid: str, token: str, calling_ae_title: str) -> str | None:
        """Record a received instance; return the token of a queued copy it replaces.

        Another receiver may record the same instance at the same moment: the row is locked
        first, so the later of the two replaces the earlier. An inbox file whose job is already
        recorded (one receiver adopting a file another has just queued) changes nothing.
        """
        values = {"uid": sop_instance_uid, "token": token, "ae": calling_ae_title}
        with self._transaction() as db:
            while True:  # a new instance (the usual case) is one statement
                if db.execute(self._sql.insert_job, values).first() is not None:
                    return None
                row = db.execute(self._sql.job_row, values).first()
                if row is not None:
                    break
            if row.token == token and row.state in ACTIVE:
                return None
            db.execute(self._sql.requeue_job, values)
        return row.token if row.state in ("queued", "failed") and row.token != token else None

    def claim(self, holder: str, limit: int, lease_s: float) -> list[Job]:
        """Hold up to ``limit`` due jobs, oldest first, for ``lease_s`` seconds.

        PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so pools claiming at once never take the same
        job and never wait for each other. SQLite: the write lock serializes claims.
        """
        with self._transaction() as db:
            rows = db.execute(self._sql.due_jobs, {"limit": limit}).all()
            if rows:
                db.execute(self._sql.hold_jobs, {"uids": [row[0] for row in rows],
                                                 "holder": holder, "lease": lease_s})
        return [Job(*row) for row in rows]

    def take_expired(self, holder: str, lease_s: float) -> list[Job]:
        """Hold the jobs whose holder stopped renewing its lease; each is to be recorded as a
        failed attempt (:meth:`fail`), so a job that kills every host it runs on ends quarantined."""
        with self._transaction() as db:
            rows = db.execute(
                select(jobs.c.sop_instance_uid, jobs.c.token, jobs.c.attempts, jobs.c.holder)
                .where(jobs.c.state == "processing", jobs.c.lease_until < epoch_now())
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                db.execute(self._sql.hold_jobs, {"uids": [row[0] for row in rows],
                                                 "holder": holder, "lease": lease_s})
        return [Job(*row) for row in rows]

    def add_derived(self, attributes: dict[str, str], transfer_syntax: str, key: str, stored_at: float,
                    replaces: Sequence[str] = ()) -> None:
        """Record an object the node made itself (a segmentation, storage ``key``), in place of
        the instances ``replaces``."""
        values = {keyword: attributes.get(keyword, "") for keyword in ATTRIBUTES}
        with self._transaction() as db:
            if replaces:
                db.execute(instances.delete().where(instances.c.SOPInstanceUID.in_(list(replaces))))
            statement = _dialect_insert(db.dialect.name)(instances).values(
                **values, TransferSyntaxUID=transfer_syntax, path=key, stored_at=stored_at)
            db.execute(statement.on_conflict_do_update(
                index_elements=[instances.c.SOPInstanceUID],
                set_={name: statement.excluded[name] for name in instances.c.keys() if name != "SOPInstanceUID"},
            ))

    def finish(self, job: Job, holder: str, attributes: dict[str, str], transfer_syntax: str,
               key: str | Callable[[], str], carriers: str, key_ids: str = "",
               identity_residues: int = 0) -> Finish:
        """Record the stored object (storage ``key``, with ``carriers``, sealed for ``key_ids``,
        and the number of identity occurrences the residual-identity check removed) of a job
        ``holder`` protected, if that job is still the instance's newest copy and still
        ``holder``'s.

        ``key`` may be a callable that publishes the object and returns its key: it runs inside
        the transaction that holds the job's row, and only when the result is recorded, so an
        older copy finishing after a newer one was acknowledged (or stored) never replaces it:
        one outcome per SOP Instance UID, the newest acknowledged copy's ("replaced" otherwise,
        and "taken" when another pool holds the job now).
        """
        values = {keyword: attributes.get(keyword, "") for keyword in ATTRIBUTES}
        with self._transaction() as db:
            row = db.execute(self._sql.job_row, {"uid": job.sop_instance_uid}).one()
            if row.token != job.token:
                return "replaced"
            if (row.state, row.holder) != ("processing", holder):
                return "taken"
            path = key() if callable(key) else key
            db.execute(self._sql.store_instance,
                       {**values, "TransferSyntaxUID": transfer_syntax, "path": path, "carriers": carriers,
                        "key_ids": key_ids or None, "identity_residues": identity_residues})
            db.execute(self._sql.job_done, {"uid": job.sop_instance_uid})
        return "done"

    def fail(self, job: Job, holder: str, reason: str, max_attempts: int) -> str:
        """Record a failed attempt; return the new state (failed, or quarantined at the limit),
        or, as :meth:`finish`, "replaced" (a newer copy is queued) or "taken" (another pool)."""
        attempts = job.attempts + 1
        state = "quarantined" if attempts >= max_attempts else "failed"
        with self._transaction() as db:
            row = db.execute(self._sql.job_row, {"uid": job.sop_instance_uid}).one()
            if row.token != job.token:
                return "replaced"
            if (row.state, row.holder) != ("processing", holder):
                return "taken"
            db.execute(self._sql.job_failed, {
                "uid": job.sop_instance_uid, "state": state, "attempts": attempts,
                "reason": reason, "delay": RETRY_DELAY_S * attempts,
            })
        return state

    def record_quarantined(self, sop_instance_uid: str, token: str, reason: str, attempts: int,
                           holder: str) -> None:
        """An object quarantined outside this index's job queue (Orthanc's queue mode,
        :mod:`stegonode.node.orthanc_queue`): recorded as a quarantined job, so ``stegonode
        status`` and the console list it with its reason as they list the node's own."""
        values = {"sop_instance_uid": sop_instance_uid, "token": token, "state": "quarantined",
                  "attempts": attempts, "reason": reason, "calling_ae_title": "", "holder": holder}
        statement = _dialect_insert(self.engine.dialect.name)(jobs).values(
            **values, received_at=epoch_now(), processed_at=epoch_now())
        statement = statement.on_conflict_do_update(
            index_elements=[jobs.c.sop_instance_uid],
            set_={**values, "processed_at": epoch_now(), "receptions": jobs.c.receptions + 1},
        )
        with self._transaction() as db:
            db.execute(statement)

    # -- worker pools ----------------------------------------------------------------------

    def register_pool(self, pool: str, host: str, pid: int, processes: int,
                      alive: Callable[[int], bool]) -> int:
        """Record a starting worker pool. Pools of this host whose process is gone (a crash, a
        power cut) are marked stopped and their jobs' leases end now; return how many jobs.
        Pools silent for a week are forgotten."""
        with self._transaction() as db:
            now = db.execute(select(epoch_now())).scalar_one()
            db.execute(worker_pools.delete().where(worker_pools.c.heartbeat_at < now - 7 * 86400))
            db.execute(worker_pools.insert().values(
                id=pool, host=host, pid=pid, processes=processes, started_at=now, heartbeat_at=now,
            ))
            dead = [
                row.id for row in db.execute(
                    select(worker_pools.c.id, worker_pools.c.pid).where(
                        worker_pools.c.host == host, worker_pools.c.stopped_at.is_(None),
                        worker_pools.c.id != pool,
                    )
                ) if not alive(row.pid)
            ]
            if not dead:
                return 0
            db.execute(update(worker_pools).where(worker_pools.c.id.in_(dead)).values(stopped_at=now))
            return db.execute(
                update(jobs).where(jobs.c.holder.in_(dead), jobs.c.state == "processing")
                .values(lease_until=now - 1)
            ).rowcount

    def heartbeat(self, pool: str, held: Sequence[str], lease_s: float) -> None:
        """A live pool renews the lease of the jobs it is protecting (new SOP Instance UIDs)."""
        with self._transaction() as db:
            db.execute(update(worker_pools).where(worker_pools.c.id == pool)
                       .values(heartbeat_at=epoch_now()))
            if held:
                db.execute(update(jobs).where(
                    jobs.c.holder == pool, jobs.c.state == "processing",
                    jobs.c.sop_instance_uid.in_(held),
                ).values(lease_until=epoch_now() + lease_s))

    def release(self, pool: str) -> int:
        """A stopping pool hands its unfinished jobs back to the queue; return how many."""
        with self._transaction() as db:
            db.execute(update(worker_pools).where(worker_pools.c.id == pool)
                       .values(stopped_at=epoch_now()))
            return db.execute(
                update(jobs).where(jobs.c.holder == pool, jobs.c.state == "processing")
                .values(state="queued", holder=None, lease_until=None)
            ).rowcount

    def pools(self, lease_s: float) -> list[dict[str, Any]]:
        """Every worker pool seen in the last day: host, pid, state, jobs, last heartbeat."""
        with self.engine.connect() as db:
            now = db.execute(select(epoch_now())).scalar_one()
            held: dict[str, int] = dict(db.execute(
                select(jobs.c.holder, func.count()).where(jobs.c.state == "processing")
                .group_by(jobs.c.holder)
            ).all())
            done: dict[str, int] = dict(db.execute(
                select(jobs.c.holder, func.count()).where(jobs.c.state == "done")
                .group_by(jobs.c.holder)
            ).all())
            rows = db.execute(
                select(worker_pools).where(worker_pools.c.heartbeat_at >= now - 86400)
                .order_by(worker_pools.c.host, worker_pools.c.started_at)
            ).mappings().all()
        return [
            {
                "host": row["host"], "pid": row["pid"], "processes": row["processes"],
                "state": ("stopped" if row["stopped_at"] is not None
                          else "lost" if now - row["heartbeat_at"] > lease_s else "alive"),
                "processing": held.get(row["id"], 0), "done": done.get(row["id"], 0),
                "last_heartbeat_s_ago": round(now - row["heartbeat_at"], 1),
            }
            for row in rows
        ]

    # -- reading ---------------------------------------------------------------------------

    def tokens(self) -> set[str]:
        """Tokens of every job whose inbox file is still needed."""
        with self.engine.connect() as db:
            return set(db.execute(select(jobs.c.token).where(jobs.c.state.in_(ACTIVE))).scalars())

    def counts(self) -> dict[str, int | float]:
        """received/queued/processed/failed/quarantined and the last minute's throughput."""
        with self.engine.connect() as db:
            by_state: dict[str, int] = dict(db.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all())
            recent = db.execute(
                select(func.count()).select_from(jobs).where(jobs.c.processed_at >= epoch_now() - 60)
            ).scalar_one()
        return {
            "received": sum(by_state.values()),
            "queued": by_state.get("queued", 0) + by_state.get("processing", 0),
            "processed": by_state.get("done", 0),
            "failed": by_state.get("failed", 0),
            "quarantined": by_state.get("quarantined", 0),
            "instances_per_second_last_minute": round(recent / 60, 3),
        }

    def identity_residues(self) -> dict[str, int]:
        """What the residual-identity check removed: occurrences in all, and in how many stored
        objects (counts only: the index never holds the values)."""
        with self.engine.connect() as db:
            total, objects = db.execute(select(
                func.coalesce(func.sum(instances.c.identity_residues), 0),
                func.count().filter(instances.c.identity_residues > 0),
            )).one()
        return {"removed": int(total), "objects": int(objects)}

    def carriers(self) -> dict[str, int]:
        """Stored objects by the carriers they have ("pixels+header", "header", ...); objects
        stored before the index recorded carriers count as "not recorded"."""
        with self.engine.connect() as db:
            rows = db.execute(select(instances.c.carriers, func.count()).group_by(instances.c.carriers))
            return {carriers or "not recorded": count for carriers, count in rows}

    def key_ids(self) -> dict[str, int]:
        """Stored objects per key id (recipient key ids and certificate ids); objects stored
        before the index recorded them count as "not recorded"."""
        counts: Counter[str] = Counter()
        with self.engine.connect() as db:
            rows = db.execute(select(instances.c.key_ids, func.count())
                              .where(instances.c.carriers.is_not(None) | instances.c.key_ids.is_not(None))
                              .group_by(instances.c.key_ids))
            for ids, count in rows:
                for each in (ids or "not-recorded").split():
                    counts[each] += count
        return dict(counts)

    def set_key_ids(self, sop_instance_uid: str, key_ids: str) -> None:
        """Record the keys a stored object is sealed for now (after a re-seal)."""
        with self._transaction() as db:
            db.execute(update(instances).where(instances.c.SOPInstanceUID == sop_instance_uid)
                       .values(key_ids=key_ids or None))

    def quarantined(self) -> list[tuple[str, str]]:
        """(token, reason) of every quarantined job."""
        with self.engine.connect() as db:
            rows = db.execute(select(jobs.c.token, jobs.c.reason)
                              .where(jobs.c.state == "quarantined").order_by(jobs.c.received_at))
            return [tuple(row) for row in rows]

    def quarantined_jobs(self) -> list[dict[str, Any]]:
        """Every quarantined job, oldest first: new UID, token, reason, attempts, holder (for an
        object of Orthanc's queue mode, "orthanc queue DIR": see :func:`quarantine_file`)."""
        with self.engine.connect() as db:
            rows = db.execute(select(jobs.c.sop_instance_uid, jobs.c.token, jobs.c.reason, jobs.c.attempts,
                                     jobs.c.holder, jobs.c.processed_at)
                              .where(jobs.c.state == "quarantined").order_by(jobs.c.received_at))
            return [dict(row._mapping) for row in rows]

    def processed_per_minute(self, minutes: int = 60) -> list[int]:
        """Instances processed in each of the last ``minutes`` minutes, oldest first."""
        with self.engine.connect() as db:
            now = db.execute(select(epoch_now())).scalar_one()
            ago = (now - jobs.c.processed_at) / 60
            whole = func.floor(ago) if db.dialect.name == "postgresql" else cast(ago, Integer)
            rows = db.execute(select(whole, func.count()).where(jobs.c.processed_at > now - 60 * minutes)
                              .group_by(whole)).all()
        counts = [0] * minutes
        for minute, count in rows:
            if 0 <= int(minute) < minutes:
                counts[minutes - 1 - int(minute)] = count
        return counts

    # -- associations ----------------------------------------------------------------------

    def record_association(self, association: Association) -> None:
        """Keep a finished association (only the newest :data:`KEPT_ASSOCIATIONS`)."""
        with self._transaction() as db:
            db.execute(associations.insert().values(**vars(association)))
            newest = select(func.max(associations.c.id)).scalar_subquery()
            db.execute(associations.delete().where(associations.c.id <= newest - KEPT_ASSOCIATIONS))

    def recent_associations(self, limit: int = 20) -> list[Association]:
        """The newest ``limit`` finished associations, newest first."""
        columns = [associations.c[name] for name in Association.__dataclass_fields__]
        with self.engine.connect() as db:
            rows = db.execute(select(*columns).order_by(associations.c.id.desc()).limit(limit))
            return [Association(*row) for row in rows]

    # -- the audit trail -------------------------------------------------------------------

    def record_audit(self, record: dict[str, Any]) -> None:
        """Keep an audited event (node/audit.py :func:`~stegonode.node.audit.index_record`);
        only the newest :data:`KEPT_AUDIT_EVENTS`."""
        with self._transaction() as db:
            db.execute(audit_events.insert().values(**record))
            newest = select(func.max(audit_events.c.id)).scalar_subquery()
            db.execute(audit_events.delete().where(audit_events.c.id <= newest - KEPT_AUDIT_EVENTS))

    def audit_events(self, kind: str = "", outcome: str = "", user: str = "", address: str = "",
                     limit: int = 200) -> list[dict[str, Any]]:
        """The newest ``limit`` audited events, newest first, those matching every filter given."""
        statement = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        for column, value in (("kind", kind), ("outcome", outcome), ("user", user), ("address", address)):
            if value:
                statement = statement.where(audit_events.c[column] == value)
        with self.engine.connect() as db:
            return [dict(row) for row in db.execute(statement).mappings()]

    # -- stored objects --------------------------------------------------------------------

    def stored(self, limit: int) -> list[dict[str, str]]:
        """The first ``limit`` stored instances' indexed (de-identified) attributes, in study,
        series and instance order (numbers in numeric order: shorter first, then by digits)."""
        c = instances.c
        statement = select(*(c[keyword] for keyword in ATTRIBUTES)).order_by(
            c.StudyDate, c.StudyInstanceUID, func.length(c.SeriesNumber), c.SeriesNumber,
            c.SeriesInstanceUID, func.length(c.InstanceNumber), c.InstanceNumber, c.SOPInstanceUID,
        ).limit(limit)
        return [dict(row) for row in self.select(statement)]

    def stored_key(self, sop_instance_uid: str) -> str | None:
        """The storage key of a stored instance, None if there is no such instance."""
        with self.engine.connect() as db:
            return db.execute(select(instances.c.path)
                              .where(instances.c.SOPInstanceUID == sop_instance_uid)).scalar()

    def select(self, statement: Executable) -> Sequence[RowMapping]:
        """Run a read-only query built by :mod:`stegonode.node.query`."""
        with self.engine.connect() as db:
            return db.execute(statement).mappings().all()


QUEUE_HOLDER = "orthanc queue "  # holder of a quarantined job of Orthanc's queue mode, + its directory


def quarantine_file(data_dir: Path, job: dict[str, Any]) -> Path:
    """Where a quarantined job's object is: the node's quarantine/, or that of the Orthanc queue
    directory that quarantined it."""
    holder = job.get("holder") or ""
    root = Path(holder[len(QUEUE_HOLDER):]) if holder.startswith(QUEUE_HOLDER) else Path(data_dir)
    return root / "quarantine" / f"{job['token']}.dcm"


def quarantine_location(storage: Any, job: dict[str, Any]) -> str:
    """Where a quarantined job's object is, for people: in ``storage`` (an ObjectStore: a file of
    the data directory or an object store's URL), or in the Orthanc queue directory that
    quarantined it."""
    if (job.get("holder") or "").startswith(QUEUE_HOLDER):
        return str(quarantine_file(Path("."), job))
    return str(storage.location(storage.key("quarantine", job["token"])))


class _Statements:
    """The statements of the hot paths (every received instance, every job), built once: with
    bound parameters SQLAlchemy compiles each once and reuses it (5x less CPU per C-STORE)."""

    def __init__(self, dialect: str) -> None:
        insert = _dialect_insert(dialect)
        uid = jobs.c.sop_instance_uid
        this_job = uid == bindparam("uid")
        self.job_row = select(jobs.c.token, jobs.c.state, jobs.c.holder).where(this_job).with_for_update()
        self.insert_job = insert(jobs).values(
            sop_instance_uid=bindparam("uid"), token=bindparam("token"), state="queued",
            calling_ae_title=bindparam("ae"), received_at=epoch_now(),
        ).on_conflict_do_nothing().returning(uid)
        self.requeue_job = update(jobs).where(this_job).values(
            token=bindparam("token"), state="queued", attempts=0, reason=None, not_before=0,
            calling_ae_title=bindparam("ae"), received_at=epoch_now(),
            receptions=jobs.c.receptions + 1, holder=None, lease_until=None,
        )
        self.due_jobs = (
            select(uid, jobs.c.token, jobs.c.attempts)
            .where(jobs.c.state.in_(("queued", "failed")), jobs.c.not_before <= epoch_now())
            .order_by(jobs.c.received_at).limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
        self.hold_jobs = update(jobs).where(uid.in_(bindparam("uids", expanding=True))).values(
            state="processing", holder=bindparam("holder"),
            lease_until=epoch_now() + bindparam("lease", type_=Float()),
        )
        statement = insert(instances).values(
            {**{name: bindparam(name) for name in instances.c.keys()}, "stored_at": epoch_now()}
        )
        self.store_instance = statement.on_conflict_do_update(
            index_elements=[instances.c.SOPInstanceUID],
            set_={name: statement.excluded[name] for name in instances.c.keys() if name != "SOPInstanceUID"},
        )
        self.job_done = update(jobs).where(this_job).values(
            state="done", processed_at=epoch_now(), reason=None, lease_until=None,
        )
        self.job_failed = update(jobs).where(this_job).values(
            state=bindparam("state"), attempts=bindparam("attempts"), reason=bindparam("reason"),
            lease_until=None, not_before=epoch_now() + bindparam("delay", type_=Float()),
        )


def _dialect_insert(dialect: str) -> Callable[..., Any]:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's first line, without the statement (which could carry values)."""
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]


def _engine(url: URL) -> Engine:
    if url.get_backend_name() == "postgresql":
        # pre_ping: a connection the server or a network hop dropped is replaced, not used.
        return create_engine(url, pool_size=5, max_overflow=20, pool_pre_ping=True,
                             connect_args={"connect_timeout": 10})
    path = Path(url.database or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_size=5, max_overflow=20, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # transactions are begun below, not by the driver
        connection.execute("PRAGMA journal_mode=WAL")
        # No fsync per commit: the durable record of a received instance is its inbox file
        # (fsync'd and renamed before the commit); a start re-queues any inbox file whose
        # job a power cut took back (Node.adopt_inbox).
        connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _on_begin(db: Connection) -> None:
        immediate = db.get_execution_options().get("immediate")
        db.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; an index made before migrations existed (the
    tables, no alembic_version) is first marked as the first migration, which is its schema."""
    # Imported here: alembic is a fifth of a second, and processes that only protect (the
    # node's spawned workers import this module) never migrate.
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with engine.connect().execution_options(immediate=True) as db, db.begin():
        if db.dialect.name == "postgresql":
            db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = db
        before = MigrationContext.configure(db).get_current_revision()
        tables = set(inspect(db).get_table_names())
        if before is None and "jobs" in tables:
            command.stamp(config, "0001")
            before = "0001"
        command.upgrade(config, "head")
        after = MigrationContext.configure(db).get_current_revision()
    if before != after:
        log.info("index schema %s -> %s", before or "empty", after)

