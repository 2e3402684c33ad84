"""Which carriers each stored object has ("pixels+header", "pixels(core)+header", "header",
"pixels"), for ``stegonode status`` and the dashboard.

Objects stored before this revision keep NULL: the index did not record their carriers (their
protection blocks do), and status counts them as "not recorded".

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("instances", sa.Column("carriers", sa.Text))
