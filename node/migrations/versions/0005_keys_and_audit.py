"""Keys and accountability. Which keys sealed each stored object: the recipient key ids and header carrier certificate
ids its protection block names (never key material), for ``stegonode status`` and
``stegonode keys objects``.

Objects stored before this revision keep NULL: status counts them as "not recorded" (their
protection blocks name the keys; ``stegonode keys objects --folder`` reads them there).

And the audit trail (``audit_events``): every audited event (node/audit.py), newest kept, for
the console's audit page; no identifying value of an original is in any record.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("instances", sa.Column("key_ids", sa.Text))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("objects", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("audit_events_kind", "audit_events", ["kind"])
