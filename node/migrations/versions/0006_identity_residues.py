"""How many identity occurrences the residual-identity check removed from each stored object,
for ``stegonode status`` (a count, never a value).

Objects stored before this revision keep NULL (counted as none removed).

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column("instances", sa.Column("identity_residues", sa.Integer))
