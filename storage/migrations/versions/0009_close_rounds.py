"""Tickets count how many times the team asked "Did this solve it?", so that an answer button
carries which question it answers and a click on an earlier one's closes or reopens nothing.

Revision ID: 0009_close_rounds
Revises: 0008_gateway_session_owner
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_close_rounds"
down_revision = "0008_gateway_session_owner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as table:
        table.add_column(sa.Column("close_round", sa.Integer(), nullable=False, server_default="0"))
    # Each question asked so far left this line in the transcript (bot/tickets/workflows.py,
    # request_close). Counting them lets a button posted before this upgrade, which carries the
    # ticket number alone, still answer a ticket asked only once: there it can mean no other question.
    op.execute(
        """
        UPDATE tickets SET close_round = (
            SELECT COUNT(*) FROM ticket_messages
            WHERE ticket_messages.ticket_id = tickets.id
              AND ticket_messages.kind = 'system'
              AND ticket_messages.text LIKE '% asked the customer to confirm it is solved'
        )
        """
    )


def downgrade() -> None:
    # Not batch mode: on SQLite it rebuilds the table, and dropping the old tickets table under its
    # transcript lines fails (foreign keys are on, and cannot be turned off inside the upgrade's one
    # transaction). SQLite drops a plain column in place since 3.35.
    op.drop_column("tickets", "close_round")
