"""Which keys sealed each stored object: the recipient key ids and header carrier certificate
ids its protection block names (never key material), for ``stegonode status`` and
``stegonode keys objects``.

Objects stored before this revision keep NULL: status counts them as "not recorded" (their
protection blocks name the keys; ``stegonode keys objects --folder`` reads them there).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("instances", sa.Column("key_ids", sa.Text))
