"""When a ticket's staff card was decided on and its thread not noted yet, so that a team member's
reply under a post of the bot's waits for a card only while one is on its way.

Revision ID: 0016_staff_card_queued
Revises: 0015_decision_files
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_staff_card_queued"
down_revision = "0015_decision_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, without a default: PostgreSQL adds it without rewriting the table, and tickets
    # opened before it have no card on its way.
    op.add_column("tickets", sa.Column("staff_card_queued_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tickets_staff_card_queued_at", "tickets", ["staff_card_queued_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_staff_card_queued_at", table_name="tickets")
    # Not batch mode, as 0014: SQLite drops a plain column in place.
    op.drop_column("tickets", "staff_card_queued_at")
