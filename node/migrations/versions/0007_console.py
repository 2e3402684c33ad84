"""The console: refusals (C-STORE failures and failed negotiations, with the DICOM status and
the node's one-line reason; no identifying value), the SOP classes of quarantined objects (read
from their files once, so the jobs page filters them by class), and the indexes the studies
search uses (newest first by the shifted study date).

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "refusals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),  # "C-STORE" or "association"
        sa.Column("calling_ae_title", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("sop_class_uid", sa.Text, nullable=False),
        sa.Column("sop_instance_uid", sa.Text, nullable=False),  # the new, pseudonymous UID
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("refusals_at", "refusals", ["at"])
    op.create_table(
        "object_classes",
        sa.Column("sop_instance_uid", sa.Text, primary_key=True),
        sa.Column("sop_class_uid", sa.Text, nullable=False),
    )
    op.create_index("jobs_received", "jobs", ["received_at"])
    op.create_index("instances_study_date", "instances", ["StudyDate", "StudyInstanceUID"])
    op.create_index("instances_modality", "instances", ["Modality"])
