"""Work owed: what an event left for after its commit (a write to learned.yml), kept with its
claim until done, so that a process killed before doing it leaves it to another one.

Revision ID: 0013_claimed_work
Revises: 0012_incident_postmortem
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_claimed_work"
down_revision = "0012_incident_postmortem"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, without a default: PostgreSQL adds it without rewriting the table. A claim owing
    # work also has `owed_until` set, so the sweep finds it through the existing partial index.
    with op.batch_alter_table("processed_events") as table:
        table.add_column(sa.Column("work", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processed_events") as table:
        table.drop_column("work")
