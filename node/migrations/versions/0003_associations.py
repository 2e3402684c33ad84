"""The web console's list of finished associations (the newest 1000).

A node of the release that added the list before migrations existed made this table itself;
it is kept as it is.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    if "associations" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "associations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("calling_ae_title", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("ending", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
