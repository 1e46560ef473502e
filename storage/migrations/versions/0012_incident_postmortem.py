"""An incident's postmortem (`/incident postmortem`), as Statuspage has it: its text and when it
was published, both empty until staff publish one.

Revision ID: 0012_incident_postmortem
Revises: 0011_picked_outcome_whole
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_incident_postmortem"
down_revision = "0011_picked_outcome_whole"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, without a default: PostgreSQL adds them without rewriting the table.
    with op.batch_alter_table("status_incidents") as table:
        table.add_column(sa.Column("postmortem_body", sa.Text(), nullable=True))
        table.add_column(sa.Column("postmortem_published_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("status_incidents") as table:
        table.drop_column("postmortem_published_at")
        table.drop_column("postmortem_body")
