"""Several hosts on one index: jobs held by a worker pool under a lease, the pools' heartbeats,
and stored objects named by storage key (``stored/<uid>.dcm``) instead of one host's path.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("holder", sa.Text))
    op.add_column("jobs", sa.Column("lease_until", sa.Float))
    op.create_index("jobs_holder", "jobs", ["holder", "state"])
    op.create_table(
        "worker_pools",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("processes", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("stopped_at", sa.Float),
    )
    # The release before this one requeued interrupted jobs at start; its node is stopped now.
    op.execute("UPDATE jobs SET state = 'queued' WHERE state = 'processing'")
    # Stored objects were always DATA_DIR/stored/<new SOP Instance UID>.dcm.
    op.execute("""UPDATE instances SET path = 'stored/' || "SOPInstanceUID" || '.dcm'""")
