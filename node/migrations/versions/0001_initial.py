"""The index as the first release made it (SQLite): the job queue and the C-FIND attributes.

An index from before migrations existed has exactly these tables; it is marked as this revision
and upgraded from here.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

ATTRIBUTES = (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
    "StudyDescription", "ReferringPhysicianName",
    "SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription",
    "SOPInstanceUID", "SOPClassUID", "InstanceNumber",
)
# Matching is byte-wise: PostgreSQL compares the C-FIND columns in the "C" collation.
MATCH_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("sop_instance_uid", sa.Text, primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reason", sa.Text),
        sa.Column("calling_ae_title", sa.Text),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("not_before", sa.Float, nullable=False, server_default="0"),
        sa.Column("processed_at", sa.Float),
        sa.Column("receptions", sa.Integer, nullable=False, server_default="1"),
    )
    op.create_index("jobs_state", "jobs", ["state", "not_before"])
    op.create_index("jobs_processed", "jobs", ["processed_at"])
    op.create_table(
        "instances",
        *(sa.Column(keyword, MATCH_TEXT, primary_key=keyword == "SOPInstanceUID")
          for keyword in ATTRIBUTES),
        sa.Column("TransferSyntaxUID", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("stored_at", sa.Float, nullable=False),
    )
    op.create_index("instances_patient", "instances", ["PatientID"])
    op.create_index("instances_study", "instances", ["StudyInstanceUID"])
    op.create_index("instances_series", "instances", ["SeriesInstanceUID"])
