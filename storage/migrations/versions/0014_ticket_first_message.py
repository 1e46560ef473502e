"""The message a ticket was opened from, so that a second 🎫 on it finds the ticket once the ticket
lives in a thread that is not that message's own (a Discord private thread).

Revision ID: 0014_ticket_first_message
Revises: 0013_claimed_work
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_ticket_first_message"
down_revision = "0013_claimed_work"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, without a default: PostgreSQL adds it without rewriting the table, and tickets
    # opened before it are found as before (by their thread).
    op.add_column("tickets", sa.Column("first_message_id", sa.String(length=64), nullable=True))
    op.create_index("ix_tickets_first_message", "tickets", ["platform", "channel_id", "first_message_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_first_message", table_name="tickets")
    # Not batch mode, as 0009: on SQLite it rebuilds the table, and dropping the old tickets table
    # under its transcript lines fails (foreign keys are on). SQLite drops a plain column in place.
    op.drop_column("tickets", "first_message_id")
