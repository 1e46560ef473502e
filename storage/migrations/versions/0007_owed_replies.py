"""Replies owed: an event's replies kept with its claim until they are posted.

Revision ID: 0007_owed_replies
Revises: 0006_inbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_owed_replies"
down_revision = "0006_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processed_events") as table:
        table.add_column(sa.Column("owed", sa.Text(), nullable=True))
        table.add_column(sa.Column("owed_until", sa.DateTime(timezone=True), nullable=True))
    # Partial: only the few rows whose replies are not posted yet are in it, so the sweep that looks
    # for them reads an index of a handful of entries however many claims are kept.
    op.create_index(
        "ix_processed_events_owed",
        "processed_events",
        ["owed_until"],
        postgresql_where=sa.text("owed_until IS NOT NULL"),
        sqlite_where=sa.text("owed_until IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_processed_events_owed", table_name="processed_events")
    with op.batch_alter_table("processed_events") as table:
        table.drop_column("owed_until")
        table.drop_column("owed")
